// The app's words in English and Khmer, the language choice (remembered on the phone, also
// before sign-in) and locale-aware dates. Field labels, help, choices and statuses come from
// the catalogue (shared crate, through wasm), in the same two languages.
//
// The Khmer wording is a working translation, to be reviewed by the organisation's
// Khmer-speaking staff before deployment (like the catalogue's).

const STRINGS = {
  en: {
    app_name: "Saksi",
    other_lang: "ខ្មែរ",
    other_lang_label: "ភាសាខ្មែរ (Khmer)",
    login_title: "Sign in",
    login_intro: "Sign in once with the network; afterwards Saksi works offline.",
    username: "Username",
    password: "Password",
    device_name: "Name of this phone",
    device_name_help: "Helps your coordinator recognise this phone. Avoid your full name.",
    device_name_default: "Phone",
    sign_in: "Sign in",
    signing_in: "Signing in…",
    err_invalid_credentials: "Wrong username or password.",
    err_throttled: "Too many attempts. Try again in {s} seconds.",
    err_network: "Cannot reach the server. Signing in needs the network.",
    err_revoked_login: "This phone or account was signed out by your organisation.",
    err_generic: "Something went wrong ({m}).",
    pin_title: "Choose a PIN",
    pin_help:
      "At least {n} digits; a longer PIN is safer. It locks Saksi and encrypts the records on this phone. It cannot be recovered: if you forget it, changes not yet synced are lost.",
    passphrase_help:
      "At least {n} characters: a few words you will remember are best. It locks Saksi and encrypts the records on this phone. It cannot be recovered: if you forget it, changes not yet synced are lost.",
    pin: "PIN",
    pin_repeat: "The same PIN again",
    pin_too_short: "Use at least {n} digits.",
    pin_digits_only: "Use digits only.",
    passphrase_too_short: "Use at least {n} characters.",
    pin_old: "Current PIN",
    pin_old_wrong: "The current PIN is wrong.",
    pin_new_title: "Choose a new PIN",
    pin_policy_help: "Your organisation now asks for a longer PIN: at least {n}. Choose a new one; nothing else on this phone changes.",
    pin_changed: "PIN changed.",
    change_pin: "Change PIN",
    quick_exit: "Exit",
    quick_exit_label: "Lock Saksi at once and show another page",
    pin_mismatch: "The two PINs are not the same.",
    pin_save: "Set PIN",
    pin_saving: "Encrypting…",
    unlock_title: "Saksi is locked",
    unlock_help: "Enter your PIN.",
    unlock: "Unlock",
    unlocking: "Unlocking…",
    pin_wrong: "Wrong PIN. {n} attempts left before the Saksi data on this phone is erased.",
    pin_wrong_one: "Wrong PIN. 1 attempt left before the Saksi data on this phone is erased.",
    pin_wrong_left: "{n} attempts left before the Saksi data on this phone is erased.",
    pin_wrong_left_one: "1 attempt left before the Saksi data on this phone is erased.",
    wiped_notice: "The Saksi data on this phone was erased.",
    revoked_notice: "Your organisation signed this phone out. The Saksi data on it was erased.",
    panic: "Wipe this phone now",
    panic_confirm: "Erase all Saksi data on this phone now? This cannot be undone.",
    panic_unsynced: "{n} record(s) have changes not yet synced: they will be lost.",
    panic_yes: "Erase now",
    cancel: "Cancel",
    lock: "Lock",
    settings: "Settings",
    records: "Records",
    new_record: "New record",
    filter_case: "Case",
    filter_kind: "Kind",
    filter_status: "Status",
    all: "All",
    no_records: "No records yet.",
    no_match: "No record matches these filters.",
    untitled: "(untitled)",
    badge_unsynced: "Not synced",
    badge_conflict: "Conflict",
    badge_refused: "Refused",
    badge_downloading: "Downloading…",
    sync_offline: "Offline",
    sync_connecting: "Connecting…",
    sync_syncing: "Syncing…",
    sync_uptodate: "Up to date {time}",
    // Counts records with changes the server does not have yet, not the changes themselves.
    sync_waiting: "{n} records waiting to sync",
    sync_waiting_one: "1 record waiting to sync",
    sync_locked_out: "Sign in again to sync",
    sync_refused: "{n} record(s) refused by the server",
    request_changes: "Request changes",
    approve: "Approve",
    reopen: "Reopen",
    archive: "Archive",
    unarchive: "Unarchive",
    comment: "Comment",
    choose_case: "Case",
    choose_kind: "Kind of record",
    create: "Create",
    no_cases: "You are not in a case team yet (or the list has not been downloaded). Ask your coordinator.",
    back: "Back",
    required: "required",
    required_hint: "Fields marked * are needed to submit.",
    submit: "Submit",
    resubmit: "Resubmit",
    submitted_ok: "Submitted. It will reach the server when the phone is online.",
    fix_problems: "{n} problem(s) to fix before submitting:",
    add_item: "Add",
    remove_item: "Remove",
    conflict_title: "Different values were recorded at the same time:",
    conflict_shown: "shown",
    use_value: "Use this value",
    review_title: "Review",
    needs_changes_banner: "A coordinator asked for changes to this record.",
    refused_banner:
      "The server refused changes to this record. They are kept on this phone. Tell your coordinator.",
    persist_warning:
      "This browser may delete offline data when the phone is low on space. Add Saksi to the home screen and sync often.",
    session_expired: "Your session has ended. Enter your password to sync again. Your records stay on this phone.",
    auto_lock: "Lock after this many idle minutes",
    saved: "Saved",
    signed_in_as: "{user} on “{device}”",
    update_ready: "A new version of Saksi is ready.",
    restart: "Restart",
    other_tab: "Saksi is open in another tab or window. Close it to use Saksi here.",
    created_by: "by {user}",
    number_invalid: "Enter a whole number.",
    date_invalid: "This is not a date (check day and month).",
    sections: "Sections",
    sign_out: "Sign out",
    sign_out_confirm: "Sign this phone out of Saksi? It stops being one of your devices and its Saksi data is erased from it.",
    sign_out_offline: "Signing out needs the network, so that this phone is also signed out on the server. Try again when it is online.",
    signed_out_notice: "This phone is signed out. Its Saksi data was erased.",
    conflicts_here: "{n} fields were recorded differently on two phones:",
    conflicts_here_one: "1 field was recorded differently on two phones:",
    reply: "Reply",
    reply_label: "Reply to the review",
    time_invalid: "This is not a time.",
    submitted_sent: "Submitted and sent to the server.",
    dismiss: "Dismiss",
    save_failed: "Could not save on this phone: {m}",
    edit_failed: "This change was not accepted: {m}",
    loading: "Opening…",
    on_phone: "{n} record(s) on this phone",
    review_action_comment: "Comment",
    review_action_submit: "Submitted",
    review_action_request_changes: "Changes requested",
    review_action_approve: "Approved",
    review_action_reopen: "Reopened",
    review_action_archive: "Archived",
    review_action_unarchive: "Unarchived",
    review_action_resolve: "Conflict resolved",
    review_action_withdraw_consent: "Consent withdrawn",
    consent_withdraw: "Consent withdrawn",
    consent_withdraw_confirm: "Record that the family withdrew its consent? A coordinator is asked to destroy this statement, its files and every copy.",
    consent_withdrawn_sent: "Recorded: a coordinator will destroy the statement.",
    consent_withdrawn_banner: "Consent withdrawn: a coordinator is asked to destroy this statement.",
    discard_draft: "Discard draft",
    discard_confirm: "Discard this draft? It is destroyed, with its files, and cannot be restored.",
    discarded: "The draft was discarded.",
    discard_failed: "The draft could not be discarded: {m}",
    withdrawn_notice: "A record was withdrawn by a coordinator: it was removed from this phone, with its files and any changes not yet sent.",
    archived_readonly: "This record is archived and can no longer be edited here.",
    approved_readonly: "A coordinator approved this record: it can no longer be edited here. Ask a coordinator to reopen it if something must change.",
    files_take_photo: "Take a photo",
    files_record_audio: "Record audio",
    files_attach: "Attach a file",
    files_keep_metadata: "Keep the location and camera details in photos",
    files_keep_metadata_help: "Off: photos lose where and with what they were taken before they are kept, so a seized phone or file does not show it.",
    files_none: "No files yet.",
    files_state_waiting: "Waiting to upload",
    files_state_uploading: "Uploading {p} %",
    files_state_done: "On the server",
    files_state_failed: "Not uploaded",
    files_state_elsewhere: "On the server (from another phone)",
    files_state_cached: "On this phone",
    file_waits_record: "waiting for the record to reach the server",
    file_offline: "waiting for a connection",
    file_retrying: "the connection broke; it continues by itself",
    file_file_too_large: "too large for the server",
    file_quota_exceeded: "this phone's space on the server is full",
    file_hash_mismatch: "the server found the bytes damaged; try again",
    file_missing_here: "the file is missing on this phone",
    file_too_large: "This file is {size}; the server takes files up to {max}.",
    file_empty: "This file is empty.",
    file_not_uploaded: "The file has not reached the server yet.",
    file_fetch_failed: "The file could not be fetched ({m}).",
    file_hash_hiding: "The file that arrived is not the one recorded (its SHA-256 differs): it was not kept.",
    files_view: "Open",
    files_close: "Close",
    files_download: "Save",
    files_remove: "Remove",
    files_remove_confirm: "Remove this file from the record? The change is recorded in its history.",
    files_retry: "Try again",
    files_caption: "Caption",
    files_sha256: "SHA-256",
    files_metadata_removed: "location and camera details removed",
    files_metadata_kept: "location and camera details kept",
    files_uncleaned: "Photos of this type keep their location and camera details: Saksi cannot remove them.",
    files_saving: "Encrypting the file on this phone…",
    recording_title: "Recording",
    recording_paused: "Paused",
    recording_pause: "Pause",
    recording_resume: "Resume",
    recording_stop: "Stop and attach",
    recording_cancel: "Discard",
    recording_denied: "Saksi may not use the microphone. Allow it in the browser's settings for this site.",
    recording_limit: "The recording reached the largest size the server takes and was stopped.",
    recording_interrupted: "A recording cut short when the app closed was attached to its record.",
    sync_uploading: "Uploading {n} files · {p} %",
    sync_uploading_one: "Uploading 1 file · {p} %",
    sync_files_waiting: "{n} files to upload",
    sync_files_waiting_one: "1 file to upload",
  },
  km: {
    app_name: "សាក្សី",
    other_lang: "English",
    other_lang_label: "English (អង់គ្លេស)",
    login_title: "ចូលប្រើ",
    login_intro: "ចូលប្រើម្ដងដោយមានបណ្ដាញ។ បន្ទាប់មក សាក្សីដំណើរការដោយគ្មានបណ្ដាញ។",
    username: "ឈ្មោះអ្នកប្រើ",
    password: "ពាក្យសម្ងាត់",
    device_name: "ឈ្មោះទូរស័ព្ទនេះ",
    device_name_help: "ជួយអ្នកសម្របសម្រួលស្គាល់ទូរស័ព្ទនេះ។ ជៀសវាងឈ្មោះពេញរបស់អ្នក។",
    device_name_default: "ទូរស័ព្ទ",
    sign_in: "ចូល",
    signing_in: "កំពុងចូល…",
    err_invalid_credentials: "ឈ្មោះអ្នកប្រើ ឬពាក្យសម្ងាត់មិនត្រឹមត្រូវ។",
    err_throttled: "ព្យាយាមច្រើនដងពេក។ សូមព្យាយាមម្ដងទៀតក្នុងរយៈពេល {s} វិនាទី។",
    err_network: "មិនអាចភ្ជាប់ទៅម៉ាស៊ីនមេបានទេ។ ការចូលប្រើត្រូវការបណ្ដាញ។",
    err_revoked_login: "ស្ថាប័នរបស់អ្នកបានបិទការចូលប្រើពីទូរស័ព្ទ ឬគណនីនេះ។",
    err_generic: "មានបញ្ហា ({m})។",
    pin_title: "ជ្រើសរើសលេខសម្ងាត់ PIN",
    pin_help:
      "យ៉ាងហោចណាស់ {n} ខ្ទង់ ហើយ PIN វែងជាងមានសុវត្ថិភាពជាង។ វាចាក់សោសាក្សី និងអ៊ិនគ្រីបកំណត់ត្រានៅលើទូរស័ព្ទនេះ។ មិនអាចយកមកវិញបានទេ៖ បើភ្លេច ការកែប្រែដែលមិនទាន់ធ្វើសមកាលកម្មនឹងបាត់។",
    passphrase_help:
      "យ៉ាងហោចណាស់ {n} តួអក្សរ៖ ពាក្យពីរបីដែលអ្នកចាំបានគឺល្អបំផុត។ វាចាក់សោសាក្សី និងអ៊ិនគ្រីបកំណត់ត្រានៅលើទូរស័ព្ទនេះ។ មិនអាចយកមកវិញបានទេ៖ បើភ្លេច ការកែប្រែដែលមិនទាន់ធ្វើសមកាលកម្មនឹងបាត់។",
    pin: "PIN",
    pin_repeat: "PIN ដដែលម្ដងទៀត",
    pin_too_short: "ប្រើលេខយ៉ាងហោចណាស់ {n} ខ្ទង់។",
    pin_digits_only: "ប្រើតែលេខប៉ុណ្ណោះ។",
    passphrase_too_short: "ប្រើយ៉ាងហោចណាស់ {n} តួអក្សរ។",
    pin_old: "PIN បច្ចុប្បន្ន",
    pin_old_wrong: "PIN បច្ចុប្បន្នមិនត្រឹមត្រូវ។",
    pin_new_title: "ជ្រើសរើស PIN ថ្មី",
    pin_policy_help: "ស្ថាប័នរបស់អ្នកតម្រូវឲ្យប្រើ PIN វែងជាងមុន៖ យ៉ាងហោចណាស់ {n}។ សូមជ្រើសរើស PIN ថ្មី។ គ្មានអ្វីផ្សេងទៀតនៅលើទូរស័ព្ទនេះផ្លាស់ប្ដូរទេ។",
    pin_changed: "បានប្ដូរ PIN។",
    change_pin: "ប្ដូរ PIN",
    quick_exit: "ចាកចេញ",
    quick_exit_label: "ចាក់សោសាក្សីភ្លាម ហើយបង្ហាញទំព័រផ្សេង",
    pin_mismatch: "PIN ទាំងពីរមិនដូចគ្នាទេ។",
    pin_save: "កំណត់ PIN",
    pin_saving: "កំពុងអ៊ិនគ្រីប…",
    unlock_title: "សាក្សីត្រូវបានចាក់សោ",
    unlock_help: "បញ្ចូល PIN របស់អ្នក។",
    unlock: "ដោះសោ",
    unlocking: "កំពុងដោះសោ…",
    pin_wrong: "PIN មិនត្រឹមត្រូវ។ នៅសល់ {n} ដងទៀត មុនពេលទិន្នន័យសាក្សីនៅលើទូរស័ព្ទនេះត្រូវលុប។",
    pin_wrong_left: "នៅសល់ {n} ដងទៀត មុនពេលទិន្នន័យសាក្សីនៅលើទូរស័ព្ទនេះត្រូវលុប។",
    wiped_notice: "ទិន្នន័យសាក្សីនៅលើទូរស័ព្ទនេះត្រូវបានលុបហើយ។",
    revoked_notice: "ស្ថាប័នរបស់អ្នកបានបិទការចូលប្រើពីទូរស័ព្ទនេះ។ ទិន្នន័យសាក្សីនៅលើវាត្រូវបានលុបហើយ។",
    panic: "លុបទិន្នន័យលើទូរស័ព្ទនេះឥឡូវ",
    panic_confirm: "លុបទិន្នន័យសាក្សីទាំងអស់នៅលើទូរស័ព្ទនេះឥឡូវ? មិនអាចត្រឡប់វិញបានទេ។",
    panic_unsynced: "កំណត់ត្រា {n} មានការកែប្រែមិនទាន់ធ្វើសមកាលកម្ម៖ វានឹងបាត់។",
    panic_yes: "លុបឥឡូវ",
    cancel: "បោះបង់",
    lock: "ចាក់សោ",
    settings: "ការកំណត់",
    records: "កំណត់ត្រា",
    new_record: "កំណត់ត្រាថ្មី",
    filter_case: "សំណុំរឿង",
    filter_kind: "ប្រភេទ",
    filter_status: "ស្ថានភាព",
    all: "ទាំងអស់",
    no_records: "មិនទាន់មានកំណត់ត្រានៅឡើយទេ។",
    no_match: "គ្មានកំណត់ត្រាត្រូវនឹងតម្រងទាំងនេះទេ។",
    untitled: "(គ្មានចំណងជើង)",
    badge_unsynced: "មិនទាន់សមកាលកម្ម",
    badge_conflict: "ទិន្នន័យផ្ទុយគ្នា",
    badge_refused: "ត្រូវបានបដិសេធ",
    badge_downloading: "កំពុងទាញយក…",
    sync_offline: "គ្មានបណ្ដាញ",
    sync_connecting: "កំពុងភ្ជាប់…",
    sync_syncing: "កំពុងធ្វើសមកាលកម្ម…",
    sync_uptodate: "ទាន់សម័យ {time}",
    sync_waiting: "កំណត់ត្រា {n} កំពុងរង់ចាំធ្វើសមកាលកម្ម",
    sync_locked_out: "ចូលម្ដងទៀតដើម្បីធ្វើសមកាលកម្ម",
    sync_refused: "កំណត់ត្រា {n} ត្រូវបានម៉ាស៊ីនមេបដិសេធ",
    request_changes: "ស្នើឱ្យកែប្រែ",
    approve: "អនុម័ត",
    reopen: "បើកឡើងវិញ",
    archive: "រក្សាទុកក្នុងបណ្ណសារ",
    unarchive: "ដកចេញពីបណ្ណសារ",
    comment: "ផ្ដល់មតិ",
    choose_case: "សំណុំរឿង",
    choose_kind: "ប្រភេទកំណត់ត្រា",
    create: "បង្កើត",
    no_cases: "អ្នកមិនទាន់នៅក្នុងក្រុមសំណុំរឿងណាមួយទេ (ឬបញ្ជីមិនទាន់បានទាញយក)។ សូមសួរអ្នកសម្របសម្រួល។",
    back: "ត្រឡប់",
    required: "ចាំបាច់",
    required_hint: "វាលដែលមានសញ្ញា * ត្រូវការជាចាំបាច់ដើម្បីដាក់ស្នើ។",
    submit: "ដាក់ស្នើ",
    resubmit: "ដាក់ស្នើម្ដងទៀត",
    submitted_ok: "បានដាក់ស្នើ។ វានឹងទៅដល់ម៉ាស៊ីនមេនៅពេលទូរស័ព្ទមានបណ្ដាញ។",
    fix_problems: "មានបញ្ហា {n} ត្រូវកែមុនពេលដាក់ស្នើ៖",
    add_item: "បន្ថែម",
    remove_item: "ដកចេញ",
    conflict_title: "តម្លៃខុសៗគ្នាត្រូវបានកត់ត្រាក្នុងពេលតែមួយ៖",
    conflict_shown: "កំពុងបង្ហាញ",
    use_value: "ប្រើតម្លៃនេះ",
    review_title: "ការពិនិត្យ",
    needs_changes_banner: "អ្នកសម្របសម្រួលបានស្នើឱ្យកែប្រែកំណត់ត្រានេះ។",
    refused_banner:
      "ម៉ាស៊ីនមេបានបដិសេធការកែប្រែកំណត់ត្រានេះ។ វានៅតែរក្សាទុកលើទូរស័ព្ទនេះ។ សូមប្រាប់អ្នកសម្របសម្រួល។",
    persist_warning:
      "កម្មវិធីរុករកនេះអាចលុបទិន្នន័យគ្មានបណ្ដាញ នៅពេលទូរស័ព្ទខ្វះទំហំផ្ទុក។ សូមបន្ថែមសាក្សីទៅអេក្រង់ដើម ហើយធ្វើសមកាលកម្មឱ្យបានញឹកញាប់។",
    session_expired:
      "វគ្គរបស់អ្នកបានបញ្ចប់។ បញ្ចូលពាក្យសម្ងាត់ដើម្បីធ្វើសមកាលកម្មម្ដងទៀត។ កំណត់ត្រារបស់អ្នកនៅតែលើទូរស័ព្ទនេះ។",
    auto_lock: "ចាក់សោបន្ទាប់ពីមិនប្រើប៉ុន្មាននាទី",
    saved: "បានរក្សាទុក",
    signed_in_as: "{user} លើ “{device}”",
    update_ready: "កំណែថ្មីរបស់សាក្សីរួចរាល់ហើយ។",
    restart: "ចាប់ផ្ដើមឡើងវិញ",
    other_tab: "សាក្សីកំពុងបើកនៅផ្ទាំង ឬបង្អួចផ្សេង។ សូមបិទវាដើម្បីប្រើសាក្សីនៅទីនេះ។",
    created_by: "ដោយ {user}",
    number_invalid: "បញ្ចូលចំនួនគត់។",
    date_invalid: "នេះមិនមែនជាកាលបរិច្ឆេទទេ (ពិនិត្យថ្ងៃ និងខែ)។",
    sections: "ផ្នែក",
    sign_out: "ចាកចេញពីគណនី",
    sign_out_confirm: "ចាកចេញពីសាក្សីលើទូរស័ព្ទនេះ? វានឹងលែងជាឧបករណ៍មួយរបស់អ្នក ហើយទិន្នន័យសាក្សីនៅលើវានឹងត្រូវលុប។",
    sign_out_offline: "ការចាកចេញត្រូវការបណ្ដាញ ដើម្បីឲ្យទូរស័ព្ទនេះចាកចេញនៅលើម៉ាស៊ីនមេដែរ។ សូមព្យាយាមម្ដងទៀតពេលមានបណ្ដាញ។",
    signed_out_notice: "ទូរស័ព្ទនេះបានចាកចេញហើយ។ ទិន្នន័យសាក្សីនៅលើវាត្រូវបានលុប។",
    conflicts_here: "វាល {n} ត្រូវបានកត់ត្រាខុសគ្នាលើទូរស័ព្ទពីរ៖",
    conflicts_here_one: "វាល 1 ត្រូវបានកត់ត្រាខុសគ្នាលើទូរស័ព្ទពីរ៖",
    reply: "ឆ្លើយតប",
    reply_label: "ឆ្លើយតបទៅការពិនិត្យ",
    time_invalid: "នេះមិនមែនជាម៉ោងទេ។",
    submitted_sent: "បានដាក់ស្នើ ហើយបានផ្ញើទៅម៉ាស៊ីនមេ។",
    dismiss: "បិទ",
    save_failed: "មិនអាចរក្សាទុកលើទូរស័ព្ទនេះបានទេ៖ {m}",
    edit_failed: "ការកែប្រែនេះមិនត្រូវបានទទួលយកទេ៖ {m}",
    loading: "កំពុងបើក…",
    on_phone: "កំណត់ត្រា {n} នៅលើទូរស័ព្ទនេះ",
    review_action_comment: "មតិ",
    review_action_submit: "បានដាក់ស្នើ",
    review_action_request_changes: "បានស្នើឱ្យកែប្រែ",
    review_action_approve: "បានអនុម័ត",
    review_action_reopen: "បានបើកឡើងវិញ",
    review_action_archive: "បានរក្សាទុកក្នុងបណ្ណសារ",
    review_action_unarchive: "បានដកចេញពីបណ្ណសារ",
    review_action_resolve: "បានដោះស្រាយទិន្នន័យផ្ទុយគ្នា",
    review_action_withdraw_consent: "បានដកការយល់ព្រម",
    consent_withdraw: "បានដកការយល់ព្រម",
    consent_withdraw_confirm: "កត់ត្រាថាក្រុមគ្រួសារបានដកការយល់ព្រមរបស់ខ្លួនវិញ? អ្នកសម្របសម្រួលនឹងត្រូវបានស្នើឱ្យបំផ្លាញសក្ខីកម្មនេះ ឯកសាររបស់វា និងច្បាប់ចម្លងទាំងអស់។",
    consent_withdrawn_sent: "បានកត់ត្រា៖ អ្នកសម្របសម្រួលនឹងបំផ្លាញសក្ខីកម្មនេះ។",
    consent_withdrawn_banner: "បានដកការយល់ព្រម៖ អ្នកសម្របសម្រួលត្រូវបានស្នើឱ្យបំផ្លាញសក្ខីកម្មនេះ។",
    discard_draft: "បោះចោលសេចក្តីព្រាង",
    discard_confirm: "បោះចោលសេចក្តីព្រាងនេះ? វានឹងត្រូវបំផ្លាញ រួមទាំងឯកសាររបស់វា ហើយមិនអាចស្តារវិញបានទេ។",
    discarded: "សេចក្តីព្រាងត្រូវបានបោះចោល។",
    discard_failed: "មិនអាចបោះចោលសេចក្តីព្រាងបានទេ៖ {m}",
    withdrawn_notice: "កំណត់ត្រាមួយត្រូវបានដកចេញដោយអ្នកសម្របសម្រួល៖ វាត្រូវបានលុបចេញពីទូរស័ព្ទនេះ រួមទាំងឯកសារ និងការផ្លាស់ប្តូរដែលមិនទាន់បានផ្ញើ។",
    archived_readonly: "កំណត់ត្រានេះត្រូវបានរក្សាទុកក្នុងបណ្ណសារ ហើយមិនអាចកែនៅទីនេះបានទៀតទេ។",
    approved_readonly: "អ្នកសម្របសម្រួលបានអនុម័តកំណត់ត្រានេះ៖ មិនអាចកែនៅទីនេះបានទៀតទេ។ សូមស្នើអ្នកសម្របសម្រួលឱ្យបើកវាឡើងវិញ ប្រសិនបើត្រូវកែអ្វីមួយ។",
    files_take_photo: "ថតរូប",
    files_record_audio: "ថតសំឡេង",
    files_attach: "ភ្ជាប់ឯកសារ",
    files_keep_metadata: "រក្សាទុកទីតាំង និងព័ត៌មានកាមេរ៉ាក្នុងរូបថត",
    files_keep_metadata_help: "បិទ៖ រូបថតបាត់ព័ត៌មានថាថតនៅទីណា និងដោយឧបករណ៍អ្វី មុនពេលរក្សាទុក ដូច្នេះទូរស័ព្ទ ឬឯកសារដែលត្រូវរឹបអូស មិនបង្ហាញវាទេ។",
    files_none: "មិនទាន់មានឯកសារ។",
    files_state_waiting: "កំពុងរង់ចាំផ្ទុកឡើង",
    files_state_uploading: "កំពុងផ្ទុកឡើង {p} %",
    files_state_done: "នៅលើម៉ាស៊ីនមេ",
    files_state_failed: "មិនបានផ្ទុកឡើង",
    files_state_elsewhere: "នៅលើម៉ាស៊ីនមេ (ពីទូរស័ព្ទផ្សេង)",
    files_state_cached: "នៅលើទូរស័ព្ទនេះ",
    file_waits_record: "កំពុងរង់ចាំកំណត់ត្រាទៅដល់ម៉ាស៊ីនមេ",
    file_offline: "កំពុងរង់ចាំការតភ្ជាប់",
    file_retrying: "ការតភ្ជាប់បានដាច់ វានឹងបន្តដោយខ្លួនឯង",
    file_file_too_large: "ធំពេកសម្រាប់ម៉ាស៊ីនមេ",
    file_quota_exceeded: "កន្លែងរបស់ទូរស័ព្ទនេះនៅលើម៉ាស៊ីនមេពេញហើយ",
    file_hash_mismatch: "ម៉ាស៊ីនមេរកឃើញថាទិន្នន័យខូច សូមព្យាយាមម្តងទៀត",
    file_missing_here: "ឯកសារបាត់នៅលើទូរស័ព្ទនេះ",
    file_too_large: "ឯកសារនេះមានទំហំ {size} ម៉ាស៊ីនមេទទួលឯកសាររហូតដល់ {max}។",
    file_empty: "ឯកសារនេះទទេ។",
    file_not_uploaded: "ឯកសារមិនទាន់ទៅដល់ម៉ាស៊ីនមេទេ។",
    file_fetch_failed: "មិនអាចទាញយកឯកសារបានទេ ({m})។",
    file_hash_hiding: "ឯកសារដែលមកដល់ មិនមែនជាឯកសារដែលបានកត់ត្រាទេ (SHA-256 ខុសគ្នា)៖ វាមិនត្រូវបានរក្សាទុកទេ។",
    files_view: "បើក",
    files_close: "បិទ",
    files_download: "រក្សាទុក",
    files_remove: "ដកចេញ",
    files_remove_confirm: "ដកឯកសារនេះចេញពីកំណត់ត្រា? ការផ្លាស់ប្តូរត្រូវបានកត់ត្រាក្នុងប្រវត្តិរបស់វា។",
    files_retry: "ព្យាយាមម្តងទៀត",
    files_caption: "ចំណងជើង",
    files_sha256: "SHA-256",
    files_metadata_removed: "ទីតាំង និងព័ត៌មានកាមេរ៉ាត្រូវបានលុប",
    files_metadata_kept: "ទីតាំង និងព័ត៌មានកាមេរ៉ាត្រូវបានរក្សាទុក",
    files_uncleaned: "រូបថតប្រភេទនេះរក្សាទីតាំង និងព័ត៌មានកាមេរ៉ា៖ សាក្សីមិនអាចលុបវាបានទេ។",
    files_saving: "កំពុងអ៊ិនគ្រីបឯកសារនៅលើទូរស័ព្ទនេះ…",
    recording_title: "កំពុងថត",
    recording_paused: "បានផ្អាក",
    recording_pause: "ផ្អាក",
    recording_resume: "បន្ត",
    recording_stop: "បញ្ឈប់ ហើយភ្ជាប់",
    recording_cancel: "បោះចោល",
    recording_denied: "សាក្សីមិនអាចប្រើមីក្រូហ្វូនបានទេ។ សូមអនុញ្ញាតវានៅក្នុងការកំណត់កម្មវិធីរុករកសម្រាប់គេហទំព័រនេះ។",
    recording_limit: "ការថតបានដល់ទំហំធំបំផុតដែលម៉ាស៊ីនមេទទួល ហើយត្រូវបានបញ្ឈប់។",
    recording_interrupted: "ការថតដែលដាច់នៅពេលកម្មវិធីបិទ ត្រូវបានភ្ជាប់ទៅកំណត់ត្រារបស់វា។",
    sync_uploading: "កំពុងផ្ទុកឯកសារ {n} ឡើង · {p} %",
    sync_files_waiting: "ឯកសារ {n} ត្រូវផ្ទុកឡើង",
  },
};

export const LANGS = ["en", "km"];
const KEY = "saksi.lang";
const listeners = new Set();

function initialLang() {
  const saved = localStorage.getItem(KEY);
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || "").toLowerCase().startsWith("km") ? "km" : "en";
}

let current = initialLang();

export function lang() {
  return current;
}

/** Switches language, remembers it, sets `<html lang>` and tells the listeners. */
export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  localStorage.setItem(KEY, next);
  applyLang();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export function applyLang() {
  // en-GB, not en: date fields then read day/month/year, as dates are written in Cambodia
  // (with plain "en" Chromium shows month first, and 31/02 typed as day and month went wrong).
  document.documentElement.lang = current === "en" ? "en-GB" : current;
  document.title = STRINGS[current].app_name;
}

/** A UI string with `{name}` placeholders filled in (numbers in the language's digits). */
export function t(key, params = {}) {
  const table = STRINGS[current];
  let s = table[key] ?? STRINGS.en[key] ?? key;
  for (const [name, value] of Object.entries(params)) {
    const shown = typeof value === "number" ? number(value) : String(value);
    s = s.replaceAll(`{${name}}`, shown);
  }
  return s;
}

/**
 * A message about `n` things: the `<key>_one` form for one, where the current language has one
 * (Khmer has no plural), else `<key>`.
 */
export function tn(key, n, params = {}) {
  const one = `${key}_one`;
  return t(n === 1 && STRINGS[current][one] !== undefined ? one : key, { ...params, n });
}

/** A catalogue label (`{en, km}`) in the current language. */
export function label(l) {
  if (!l) return "";
  return l[current] || l.en || "";
}

const LOCALES = { en: "en-GB", km: "km-KH" };
const formats = new Map();

/** Some browsers (Debian's Chromium among them) ship no Khmer locale data in Intl. */
const INTL_HAS_KHMER = Intl.DateTimeFormat.supportedLocalesOf(["km"]).length > 0;
/** CLDR's Khmer month names, for when Intl lacks them. */
const KM_MONTHS = [
  "មករា", "កុម្ភៈ", "មីនា", "មេសា", "ឧសភា", "មិថុនា",
  "កក្កដា", "សីហា", "កញ្ញា", "តុលា", "វិច្ឆិកា", "ធ្នូ",
];

function format(kind, options) {
  const key = `${current}:${kind}`;
  if (!formats.has(key)) {
    if (current === "km" && !INTL_HAS_KHMER) {
      // The parts in numbers, put together the way CLDR's Khmer patterns do ("4 មីនា 2025 14:05").
      const numeric = new Intl.DateTimeFormat("en-GB", {
        ...(options.dateStyle ? { day: "numeric", month: "numeric", year: "numeric" } : {}),
        ...(options.timeStyle ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" } : {}),
        timeZone: options.timeZone,
      });
      formats.set(key, {
        format(d) {
          const p = Object.fromEntries(numeric.formatToParts(d).map((x) => [x.type, x.value]));
          const day = p.day ? `${Number(p.day)} ${KM_MONTHS[Number(p.month) - 1]} ${p.year}` : "";
          const time = p.hour ? `${p.hour}:${p.minute}` : "";
          return [day, time].filter(Boolean).join(" ");
        },
      });
    } else {
      formats.set(key, new Intl.DateTimeFormat(LOCALES[current], options));
    }
  }
  return formats.get(key);
}

/** A time in ms since the epoch, as a date and time for the current language. */
export function dateTime(ms) {
  return format("dt", { dateStyle: "medium", timeStyle: "short" }).format(new Date(ms));
}

/** Only the clock time, for "up to date 14:05". */
export function clock(ms) {
  return format("t", { timeStyle: "short" }).format(new Date(ms));
}

/** A `YYYY-MM-DD` value, shown as a date in the current language. */
export function date(ymd) {
  const [y, m, d] = ymd.split("-").map(Number);
  if (!y || !m || !d) return ymd;
  return format("d", { dateStyle: "medium", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
}

export function number(n) {
  return new Intl.NumberFormat(LOCALES[current]).format(n);
}

/** A file size for people: kB and MB are 1,000 and 1,000,000 bytes. */
export function fileSize(bytes) {
  if (bytes < 1_000) return `${number(bytes)} B`;
  const [value, unit] = bytes < 1_000_000 ? [bytes / 1_000, "kB"] : [bytes / 1_000_000, "MB"];
  return `${new Intl.NumberFormat(LOCALES[current], { maximumFractionDigits: 1 }).format(value)} ${unit}`;
}
