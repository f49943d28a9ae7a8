//! The console's own words, in English and Khmer: navigation, filters, table headers, buttons,
//! the review box and the history. Field, kind and status labels come from the catalogue in
//! `saksi-shared`. Templates say `{{ chrome.t("key") }}`; a test checks that every key a
//! template uses is here, in both languages.
//!
//! The Khmer wording is a working translation, to be reviewed by the organisation's
//! Khmer-speaking staff before deployment (like the PWA's and the catalogue's).

use saksi_shared::Lang;

macro_rules! words {
    ($($key:ident: $en:expr, $km:expr;)*) => {
        /// The word for `key` in `lang` (an unknown key shows as itself, and fails the test).
        pub fn word(lang: Lang, key: &str) -> &'static str {
            match key {
                $(stringify!($key) => match lang {
                    Lang::En => $en,
                    Lang::Km => $km,
                },)*
                _ => "?",
            }
        }

        /// Every key, for the tests.
        #[cfg(test)]
        pub const KEYS: &[&str] = &[$(stringify!($key)),*];
    };
}

words! {
    // Frame
    console: "console", "ផ្ទាំងគ្រប់គ្រង";
    nav_label: "Console", "ផ្ទាំងគ្រប់គ្រង";
    nav_records: "Records", "កំណត់ត្រា";
    nav_audit: "Audit log", "កំណត់ហេតុសវនកម្ម";
    nav_certificate: "Certificate", "វិញ្ញាបនបត្រ";
    nav_users: "Users", "អ្នកប្រើ";
    nav_devices: "Devices", "ឧបករណ៍";
    nav_cases: "Cases", "សំណុំរឿង";
    sign_out: "Sign out", "ចាកចេញ";
    show_in_english: "Show labels in English", "បង្ហាញជាភាសាអង់គ្លេស";
    show_in_khmer: "Show labels in Khmer", "បង្ហាញជាភាសាខ្មែរ";
    // Records table
    records: "Records", "កំណត់ត្រា";
    f_case: "Case", "សំណុំរឿង";
    f_kind: "Kind", "ប្រភេទ";
    f_status: "Status", "ស្ថានភាព";
    f_author: "Author", "អ្នកសរសេរ";
    f_conflicts: "Conflicts", "ទិន្នន័យផ្ទុយគ្នា";
    f_from: "Updated from", "ធ្វើបច្ចុប្បន្នភាពពី";
    f_to: "to", "ដល់";
    f_sort: "Sort", "តម្រៀប";
    filter: "Filter", "ត្រង";
    clear: "Clear", "សម្អាត";
    counts: "Counts", "ចំនួន";
    records_match: "record(s) match", "កំណត់ត្រាត្រូវនឹងតម្រង";
    with_conflicts_to_resolve: "with conflicts to resolve", "មានទិន្នន័យផ្ទុយគ្នាត្រូវដោះស្រាយ";
    export_these: "Export these records:", "នាំចេញកំណត់ត្រាទាំងនេះ៖";
    no_records: "No records match this filter.", "គ្មានកំណត់ត្រាណាត្រូវនឹងតម្រងនេះទេ។";
    col_title: "Title", "ចំណងជើង";
    col_updated: "Updated", "ធ្វើបច្ចុប្បន្នភាព";
    flag_conflict: "conflict", "ផ្ទុយគ្នា";
    pages: "Pages", "ទំព័រ";
    newer_page: "← Newer page", "← ទំព័រថ្មីជាង";
    next_page: "Next page →", "ទំព័របន្ទាប់ →";
    of: "of", "នៃ";
    page: "page", "ទំព័រ";
    any_case: "Any case", "គ្រប់សំណុំរឿង";
    any_kind: "Any kind", "គ្រប់ប្រភេទ";
    any_status: "Any status", "គ្រប់ស្ថានភាព";
    anyone: "Anyone", "គ្រប់គ្នា";
    with_or_without: "With or without", "មាន ឬគ្មាន";
    with_conflicts: "With conflicts", "មានទិន្នន័យផ្ទុយគ្នា";
    without_conflicts: "Without conflicts", "គ្មានទិន្នន័យផ្ទុយគ្នា";
    sort_updated_desc: "Updated, newest first", "ធ្វើបច្ចុប្បន្នភាព ថ្មីបំផុតមុន";
    sort_updated_asc: "Updated, oldest first", "ធ្វើបច្ចុប្បន្នភាព ចាស់បំផុតមុន";
    sort_created_desc: "Created, newest first", "បង្កើត ថ្មីបំផុតមុន";
    sort_created_asc: "Created, oldest first", "បង្កើត ចាស់បំផុតមុន";
    sort_title: "Title", "ចំណងជើង";
    sort_status: "Status", "ស្ថានភាព";
    sort_author: "Author", "អ្នកសរសេរ";
    sort_kind: "Kind", "ប្រភេទ";
    csv_observations: "CSV: court observations", "CSV៖ ការសង្កេតតុលាការ";
    csv_statements: "CSV: family statements", "CSV៖ សេចក្តីថ្លែងការណ៍គ្រួសារ";
    json: "JSON", "JSON";
    printable_report: "Printable report", "របាយការណ៍សម្រាប់បោះពុម្ព";
    untitled: "(untitled)", "(គ្មានចំណងជើង)";
    // Record page
    by: "by", "ដោយ";
    created: "created", "បានបង្កើត";
    updated: "updated", "បានធ្វើបច្ចុប្បន្នភាព";
    history: "History", "ប្រវត្តិ";
    changes: "changes", "ការផ្លាស់ប្ដូរ";
    case_report: "Case report", "របាយការណ៍សំណុំរឿង";
    last_change_by: "Last change by", "ការផ្លាស់ប្ដូរចុងក្រោយដោយ";
    on: "on", "លើ";
    unconfirmed: "unconfirmed", "មិនទាន់បញ្ជាក់";
    confirmed_title: "The server bound this change to this device, and the change names the same user and device.", "ម៉ាស៊ីនមេបានភ្ជាប់ការផ្លាស់ប្ដូរនេះទៅឧបករណ៍នេះ ហើយការផ្លាស់ប្ដូរនេះបញ្ជាក់ឈ្មោះអ្នកប្រើ និងឧបករណ៍ដូចគ្នា។";
    conflicts_to_resolve: "Conflicts to resolve", "ទិន្នន័យផ្ទុយគ្នាត្រូវដោះស្រាយ";
    conflicts_hint: "These fields were written differently on different devices while offline. Choose the right value: it is saved as an ordinary change and reaches every phone.", "វាលទាំងនេះត្រូវបានសរសេរខុសគ្នាលើឧបករណ៍ផ្សេងៗ ពេលគ្មានបណ្ដាញ។ សូមជ្រើសរើសតម្លៃត្រឹមត្រូវ៖ វានឹងត្រូវរក្សាទុកជាការផ្លាស់ប្ដូរធម្មតា ហើយទៅដល់ទូរស័ព្ទទាំងអស់។";
    shown_now: "shown now", "កំពុងបង្ហាញ";
    use_value: "Use this value", "ប្រើតម្លៃនេះ";
    settle_status: "Settle the status with a review action below.", "សូមកំណត់ស្ថានភាពដោយសកម្មភាពពិនិត្យខាងក្រោម។";
    field_history: "History of this field", "ប្រវត្តិនៃវាលនេះ";
    history_link: "history", "ប្រវត្តិ";
    review: "Review", "ការពិនិត្យ";
    comment_to_author: "Comment to the author", "មតិទៅអ្នកសរសេរ";
    comment_needed: "(needed to request changes)", "(ត្រូវការ ដើម្បីស្នើឲ្យកែប្រែ)";
    comment_only: "Comment only", "ផ្ដល់មតិតែប៉ុណ្ណោះ";
    review_trail: "Review trail", "ដំណើរការពិនិត្យ";
    // Files
    no_files: "No files are attached.", "មិនមានឯកសារភ្ជាប់ទេ។";
    file_verified: "On the server, verified: the bytes have this SHA-256", "នៅលើម៉ាស៊ីនមេ បានផ្ទៀងផ្ទាត់៖ ទិន្នន័យមាន SHA-256 នេះ";
    file_verified_at: "received", "បានទទួល";
    file_not_uploaded: "Not uploaded yet: the phone sends it when it can", "មិនទាន់ផ្ទុកឡើង៖ ទូរស័ព្ទនឹងផ្ញើវានៅពេលអាច";
    file_open: "Open", "បើក";
    file_download: "Download", "ទាញយក";
    file_captured: "captured", "ថតនៅ";
    file_metadata_removed: "location and camera details removed on the phone", "ទីតាំង និងព័ត៌មានកាមេរ៉ាត្រូវបានលុបនៅលើទូរស័ព្ទ";
    file_metadata_kept: "location and camera details kept", "ទីតាំង និងព័ត៌មានកាមេរ៉ាត្រូវបានរក្សាទុក";
    case_archive: "Case archive (ZIP, with files)", "បណ្ណសារសំណុំរឿង (ZIP មានឯកសារ)";
    // Destroying a record
    destroy_title: "Destroy this record", "បំផ្លាញកំណត់ត្រានេះ";
    purge_explain: "Purging destroys the record, its files and its copies on every phone, and refuses its id for ever. It waits", "ការលុបជាស្ថាពរបំផ្លាញកំណត់ត្រា ឯកសាររបស់វា និងច្បាប់ចម្លងនៅលើទូរស័ព្ទទាំងអស់ ហើយបដិសេធលេខសម្គាល់របស់វាជារៀងរហូត។ វារង់ចាំ";
    purge_explain_days: "day(s) first: meanwhile only coordinators and admins see it, and it can be undone.", "ថ្ងៃជាមុន៖ ក្នុងអំឡុងពេលនោះ មានតែអ្នកសម្របសម្រួល និងអ្នកគ្រប់គ្រងប៉ុណ្ណោះដែលឃើញវា ហើយអាចបោះបង់បាន។";
    purge_reason: "Why", "មូលហេតុ";
    reason_consent_withdrawn: "Consent withdrawn", "បានដកការយល់ព្រម";
    reason_recorded_in_error: "Recorded in error", "បានកត់ត្រាដោយច្រឡំ";
    reason_safety: "Safety", "សុវត្ថិភាព";
    reason_discarded: "Draft discarded", "សេចក្តីព្រាងត្រូវបានបោះចោល";
    purge_confirm: "I understand: once destroyed, the record cannot be restored.", "ខ្ញុំយល់៖ នៅពេលបំផ្លាញហើយ កំណត់ត្រាមិនអាចស្តារវិញបានទេ។";
    purge_now: "Now, without the grace period (admins only)", "ឥឡូវនេះ ដោយគ្មានរយៈពេលរង់ចាំ (សម្រាប់អ្នកគ្រប់គ្រងតែប៉ុណ្ណោះ)";
    purge_button: "Purge", "លុបជាស្ថាពរ";
    purge_pending_title: "To be destroyed", "នឹងត្រូវបំផ្លាញ";
    purge_pending_on: "on", "នៅ";
    purge_pending_hidden: "Field staff no longer see it.", "បុគ្គលិកនៅទីវាលលែងឃើញវាហើយ។";
    purge_pending_badge: "to be destroyed", "នឹងត្រូវបំផ្លាញ";
    purge_undo: "Undo the purge", "បោះបង់ការលុបជាស្ថាពរ";
    discard_explain: "A draft recorded by mistake can be discarded at once: it is destroyed like a purged record.", "សេចក្តីព្រាងដែលកត់ត្រាដោយច្រឡំ អាចបោះចោលភ្លាមៗ៖ វាត្រូវបានបំផ្លាញដូចកំណត់ត្រាដែលបានលុបជាស្ថាពរ។";
    discard_confirm: "I understand: the discarded draft cannot be restored.", "ខ្ញុំយល់៖ សេចក្តីព្រាងដែលបានបោះចោល មិនអាចស្តារវិញបានទេ។";
    discard_button: "Discard the draft", "បោះចោលសេចក្តីព្រាង";
    consent_withdrawn_title: "Consent withdrawn:", "បានដកការយល់ព្រម៖";
    consent_withdrawn_by: "recorded by", "កត់ត្រាដោយ";
    consent_withdrawn_purge: "Purge this record (below).", "សូមលុបកំណត់ត្រានេះជាស្ថាពរ (ខាងក្រោម)។";
    done_purge_scheduled: "The purge is scheduled.", "ការលុបជាស្ថាពរត្រូវបានកំណត់ពេល។";
    consent_withdrawn_badge: "consent withdrawn", "បានដកការយល់ព្រម";
    consent_withdrawn_to_purge: "with consent withdrawn, to purge", "បានដកការយល់ព្រម ត្រូវលុបជាស្ថាពរ";
    done_purged: "The record was destroyed, with its files; phones delete their copies at their next contact.", "កំណត់ត្រាត្រូវបានបំផ្លាញ រួមទាំងឯកសាររបស់វា។ ទូរស័ព្ទនឹងលុបច្បាប់ចម្លងរបស់ខ្លួននៅពេលភ្ជាប់លើកក្រោយ។";
    done_discarded: "The draft was discarded.", "សេចក្តីព្រាងត្រូវបានបោះចោល។";
    done_purge_cancelled: "The purge was undone.", "ការលុបជាស្ថាពរត្រូវបានបោះបង់។";
    no_review: "No review entries yet.", "មិនទាន់មានការពិនិត្យនៅឡើយទេ។";
    do_request_changes: "Request changes", "ស្នើឲ្យកែប្រែ";
    do_approve: "Approve", "អនុម័ត";
    do_reopen: "Reopen (needs changes)", "បើកម្ដងទៀត (ត្រូវកែប្រែ)";
    do_archive: "Archive", "ដាក់បណ្ណសារ";
    do_unarchive: "Unarchive", "ដកចេញពីបណ្ណសារ";
    do_apply: "Apply", "អនុវត្ត";
    did_comment: "commented", "បានផ្ដល់មតិ";
    did_submit: "submitted", "បានដាក់ស្នើ";
    did_request_changes: "requested changes", "បានស្នើឲ្យកែប្រែ";
    did_approve: "approved", "បានអនុម័ត";
    did_reopen: "reopened", "បានបើកម្ដងទៀត";
    did_archive: "archived", "បានដាក់បណ្ណសារ";
    did_unarchive: "unarchived", "បានដកចេញពីបណ្ណសារ";
    did_resolve: "resolved a conflict", "បានដោះស្រាយទិន្នន័យផ្ទុយគ្នា";
    done_resolved: "The chosen value is saved. It reaches the phones when they next sync.", "តម្លៃដែលបានជ្រើសរើសត្រូវបានរក្សាទុក។ វានឹងទៅដល់ទូរស័ព្ទ នៅពេលវាធ្វើសមកាលកម្មលើកក្រោយ។";
    done_request_changes: "Changes requested. The author sees your comment on their phone.", "បានស្នើឲ្យកែប្រែ។ អ្នកសរសេរឃើញមតិរបស់អ្នកនៅលើទូរស័ព្ទរបស់គេ។";
    done_approve: "Approved.", "បានអនុម័ត។";
    done_archive: "Archived.", "បានដាក់បណ្ណសារ។";
    done_unarchive: "Unarchived: the record is approved again.", "បានដកចេញពីបណ្ណសារ៖ កំណត់ត្រាត្រូវបានអនុម័តម្ដងទៀត។";
    done_reopen: "Reopened: the record is back with its author, who can change and submit it.", "បានបើកម្ដងទៀត៖ កំណត់ត្រាត្រឡប់ទៅអ្នកសរសេរវិញ ដែលអាចកែប្រែ និងដាក់ស្នើវាបាន។";
    done_comment: "Comment added.", "បានបន្ថែមមតិ។";
    // Audit log
    audit_log: "Audit log", "កំណត់ហេតុសវនកម្ម";
    f_action: "Action", "សកម្មភាព";
    f_user: "User", "អ្នកប្រើ";
    f_from_date: "From", "ពី";
    audit_hint: "Newest first. Entries are chained by hash; saksi admin verify-audit checks that none was removed or altered.", "ថ្មីបំផុតមុន។ ធាតុទាំងអស់ភ្ជាប់គ្នាដោយ hash៖ saksi admin verify-audit ពិនិត្យថាគ្មានធាតុណាត្រូវបានលុប ឬកែប្រែ។";
    no_entries: "No entries match this filter.", "គ្មានធាតុណាត្រូវនឹងតម្រងនេះទេ។";
    col_target: "Target", "គោលដៅ";
    col_detail: "Detail", "ព័ត៌មានលម្អិត";
    newest: "← Newest", "← ថ្មីបំផុត";
    older_entries: "Older entries →", "ធាតុចាស់ជាង →";
    any_action: "Any action", "គ្រប់សកម្មភាព";
    act_login: "Signed in", "បានចូល";
    act_login_failed: "Sign-in failed", "ការចូលបរាជ័យ";
    act_logout: "Signed out", "បានចាកចេញ";
    act_user_created: "Account created", "បានបង្កើតគណនី";
    act_password_reset: "Password reset", "បានកំណត់ពាក្យសម្ងាត់ឡើងវិញ";
    act_role_changed: "Role changed", "បានប្ដូរតួនាទី";
    act_disable: "Account disabled", "បានបិទគណនី";
    act_enable: "Account enabled", "បានបើកគណនី";
    act_device_revoked: "Device revoked", "បានដកសិទ្ធិឧបករណ៍";
    act_sessions_ended: "Sessions ended", "បានបញ្ចប់វគ្គ";
    act_case_created: "Case created", "បានបង្កើតសំណុំរឿង";
    act_add_member: "Added to a team", "បានបន្ថែមទៅក្រុម";
    act_remove_member: "Removed from a team", "បានដកចេញពីក្រុម";
    act_change_refused: "Changes refused", "ការផ្លាស់ប្ដូរត្រូវបានបដិសេធ";
    act_export: "Export", "ការនាំចេញ";
    act_certificate_renewed: "Certificate renewed", "បានបន្តវិញ្ញាបនបត្រ";
    act_record_purged: "Record destroyed (purged)", "កំណត់ត្រាត្រូវបានបំផ្លាញ (លុបជាស្ថាពរ)";
    act_record_discarded: "Draft discarded", "សេចក្តីព្រាងត្រូវបានបោះចោល";
    act_purge_scheduled: "Purge scheduled", "បានកំណត់ពេលលុបជាស្ថាពរ";
    act_purge_cancelled: "Purge undone", "បានបោះបង់ការលុបជាស្ថាពរ";
    // Users
    users: "Users", "អ្នកប្រើ";
    col_role: "Role", "តួនាទី";
    col_active_devices: "Active devices", "ឧបករណ៍សកម្ម";
    col_created: "Created", "បានបង្កើត";
    col_password: "Password", "ពាក្យសម្ងាត់";
    you: "(you)", "(អ្នក)";
    change: "Change", "ប្ដូរ";
    disabled: "disabled", "បានបិទ";
    active: "active", "សកម្ម";
    new_password: "new password", "ពាក្យសម្ងាត់ថ្មី";
    reset: "Reset", "កំណត់ឡើងវិញ";
    enable: "Enable", "បើក";
    disable: "Disable", "បិទ";
    new_account: "New account", "គណនីថ្មី";
    f_username: "Username", "ឈ្មោះអ្នកប្រើ";
    create: "Create", "បង្កើត";
    password_hint: "At least 10 characters. Give the password to the person in person, never by message.", "យ៉ាងហោចណាស់ ១០ តួអក្សរ។ សូមប្រគល់ពាក្យសម្ងាត់ដោយផ្ទាល់ មិនមែនតាមសារទេ។";
    done_created: "Account created.", "បានបង្កើតគណនី។";
    done_role: "Role changed.", "បានប្ដូរតួនាទី។";
    done_password: "Password reset. Existing devices stay signed in; revoke them if needed.", "បានកំណត់ពាក្យសម្ងាត់ឡើងវិញ។ ឧបករណ៍ដែលមានស្រាប់នៅតែចូលប្រើ៖ ដកសិទ្ធិវាប្រសិនបើចាំបាច់។";
    done_disable: "Account disabled; its devices are revoked.", "បានបិទគណនី៖ ឧបករណ៍របស់វាត្រូវបានដកសិទ្ធិ។";
    done_enable: "Account enabled. The user signs in again on each device.", "បានបើកគណនី។ អ្នកប្រើត្រូវចូលម្ដងទៀតលើឧបករណ៍នីមួយៗ។";
    done_revoked: "Device revoked: it can no longer sync or sign in.", "បានដកសិទ្ធិឧបករណ៍៖ វាមិនអាចធ្វើសមកាលកម្ម ឬចូលប្រើបានទៀតទេ។";
    done_case: "Case created.", "បានបង្កើតសំណុំរឿង។";
    done_added: "Added to the team.", "បានបន្ថែមទៅក្រុម។";
    done_removed: "Removed from the team.", "បានដកចេញពីក្រុម។";
    // Devices
    devices: "Devices", "ឧបករណ៍";
    everyone: "Everyone", "គ្រប់គ្នា";
    devices_count: "device(s)", "ឧបករណ៍";
    active_count: "active", "សកម្ម";
    revoke_hint: "Revoke a lost or seized phone at once: it can no longer sync or sign in, and its open connections are closed.", "ដកសិទ្ធិទូរស័ព្ទដែលបាត់ ឬត្រូវរឹបអូសភ្លាម៖ វាមិនអាចធ្វើសមកាលកម្ម ឬចូលប្រើបានទៀតទេ ហើយការតភ្ជាប់របស់វាត្រូវបានបិទ។";
    col_id: "Id", "លេខសម្គាល់";
    col_signed_in: "Signed in", "បានចូល";
    col_last_seen: "Last seen", "ឃើញចុងក្រោយ";
    col_expires: "Expires", "ផុតកំណត់";
    this_browser: "(this browser)", "(កម្មវិធីរុករកនេះ)";
    revoke_confirm: "wipe it: the device loses what it has not synced", "លុបវា៖ ឧបករណ៍នឹងបាត់អ្វីដែលមិនទាន់ធ្វើសមកាលកម្ម";
    revoke: "Revoke", "ដកសិទ្ធិ";
    // Cases
    cases_and_teams: "Cases and teams", "សំណុំរឿង និងក្រុម";
    cases_hint: "Members of a case's team sync its records to their phones. Coordinators and admins see every case.", "សមាជិកក្រុមនៃសំណុំរឿងធ្វើសមកាលកម្មកំណត់ត្រារបស់វាទៅទូរស័ព្ទរបស់ពួកគេ។ អ្នកសម្របសម្រួល និងអ្នកគ្រប់គ្រងឃើញគ្រប់សំណុំរឿង។";
    records_count: "record(s)", "កំណត់ត្រា";
    report: "Report", "របាយការណ៍";
    team: "Team", "ក្រុម";
    nobody_yet: "Nobody yet.", "មិនទាន់មាននរណាម្នាក់ទេ។";
    remove: "remove", "ដកចេញ";
    add: "Add", "បន្ថែម";
    add_to_team: "Add to the team", "បន្ថែមទៅក្រុម";
    no_cases: "No cases yet.", "មិនទាន់មានសំណុំរឿងទេ។";
    new_case: "New case", "សំណុំរឿងថ្មី";
    f_name: "Name", "ឈ្មោះ";
    case_name_hint: "A short name the team uses; avoid full names of people at risk.", "ឈ្មោះខ្លីដែលក្រុមប្រើ៖ ជៀសវាងឈ្មោះពេញរបស់អ្នកដែលប្រឈមនឹងហានិភ័យ។";
    // Certificate page (menu names stay in English: phones show them in their own language)
    cert_title: "Certificate phones trust", "វិញ្ញាបនបត្រដែលទូរស័ព្ទទុកចិត្ត";
    cert_intro_1: "This server has its own certificate authority (CA), made on its first start. It may sign only for", "ម៉ាស៊ីនមេនេះមានអាជ្ញាធរវិញ្ញាបនបត្រ (CA) ផ្ទាល់ខ្លួន ដែលបានបង្កើតនៅពេលចាប់ផ្ដើមលើកដំបូង។ វាអាចចុះហត្ថលេខាបានតែសម្រាប់";
    cert_intro_2: ": a phone that trusts it trusts nothing else with it. Install it once on every phone and computer that uses Saksi; then the app installs and opens without signal, and no certificate warning appears.", "៖ ទូរស័ព្ទដែលទុកចិត្តវា មិនទុកចិត្តអ្វីផ្សេងទៀតដោយសារវាទេ។ សូមដំឡើងវាម្ដងលើគ្រប់ទូរស័ព្ទ និងកុំព្យូទ័រដែលប្រើសាក្សី៖ បន្ទាប់មកកម្មវិធីដំឡើង និងបើកបានដោយគ្មានបណ្ដាញ ហើយគ្មានការព្រមានអំពីវិញ្ញាបនបត្រទៀតទេ។";
    cert_step_get: "1. Get the CA certificate onto the device", "១. ដាក់វិញ្ញាបនបត្រ CA ទៅលើឧបករណ៍";
    cert_get_help: "Scan the code with the phone's camera, or open the address in its browser. The first time the browser warns that the connection is not private: continue, it is this download that ends the warning.", "ស្កេនកូដនេះដោយកាមេរ៉ាទូរស័ព្ទ ឬបើកអាសយដ្ឋាននេះក្នុងកម្មវិធីរុករក។ លើកដំបូង កម្មវិធីរុករកនឹងព្រមានថាការតភ្ជាប់មិនឯកជន៖ សូមបន្ត ព្រោះការទាញយកនេះហើយដែលបញ្ចប់ការព្រមាន។";
    cert_files: "Files:", "ឯកសារ៖";
    cert_step_compare: "2. Compare the fingerprint", "២. ប្រៀបធៀបស្នាមម្រាមដៃ (fingerprint)";
    cert_compare_help: "Before trusting it, check that the device shows this SHA-256 fingerprint for the certificate (read it out over the phone, or compare it with the one the server printed when it started). A different one means someone between the phone and this server: do not install it.", "មុននឹងទុកចិត្តវា សូមពិនិត្យថាឧបករណ៍បង្ហាញស្នាមម្រាមដៃ SHA-256 នេះសម្រាប់វិញ្ញាបនបត្រ (អានឲ្យគ្នាស្ដាប់តាមទូរស័ព្ទ ឬប្រៀបធៀបជាមួយស្នាមដែលម៉ាស៊ីនមេបានបោះពុម្ពនៅពេលចាប់ផ្ដើម)។ បើខុសគ្នា មានន័យថាមាននរណាម្នាក់នៅចន្លោះទូរស័ព្ទ និងម៉ាស៊ីនមេនេះ៖ កុំដំឡើងវា។";
    cert_step_install: "3. Install it", "៣. ដំឡើងវា";
    cert_menus_hint: "The menus are named here in English; the device shows them in its own language.", "ម៉ឺនុយត្រូវបានដាក់ឈ្មោះនៅទីនេះជាភាសាអង់គ្លេស៖ ឧបករណ៍បង្ហាញវាជាភាសារបស់វា។";
    cert_android_2: "Choose, from Downloads:", "ជ្រើសរើសពីថត Downloads៖";
    cert_android_3: "Check it under Trusted credentials → User (the fingerprint is shown there), then open the server's address in Chrome and install the app from the menu.", "ពិនិត្យវានៅក្រោម Trusted credentials → User (ស្នាមម្រាមដៃបង្ហាញនៅទីនោះ) បន្ទាប់មកបើកអាសយដ្ឋានម៉ាស៊ីនមេក្នុង Chrome ហើយដំឡើងកម្មវិធីពីម៉ឺនុយ។";
    cert_ios_1: "Open the address above in Safari and allow the download of the configuration profile.", "បើកអាសយដ្ឋានខាងលើក្នុង Safari ហើយអនុញ្ញាតការទាញយក configuration profile។";
    cert_desktop_trust: "open it and add it to the trusted root authorities", "បើកវា ហើយបន្ថែមវាទៅក្នុងអាជ្ញាធរឫសដែលទុកចិត្ត";
    cert_restart_browser: "Restart the browser.", "ចាប់ផ្ដើមកម្មវិធីរុករកឡើងវិញ។";
    cert_server: "This server's certificate", "វិញ្ញាបនបត្ររបស់ម៉ាស៊ីនមេនេះ";
    cert_issued_for: "Issued from the CA for", "ចេញពី CA សម្រាប់";
    cert_server_fp: "Server certificate SHA-256", "SHA-256 នៃវិញ្ញាបនបត្រម៉ាស៊ីនមេ";
    cert_expires: "Server certificate expires", "វិញ្ញាបនបត្រម៉ាស៊ីនមេផុតកំណត់";
    cert_uncovered: "The server certificate does not cover these names the configuration lists; an admin must renew it and restart the server:", "វិញ្ញាបនបត្រម៉ាស៊ីនមេមិនគ្របដណ្ដប់ឈ្មោះទាំងនេះដែលការកំណត់រាយ៖ អ្នកគ្រប់គ្រងត្រូវបន្តវា ហើយចាប់ផ្ដើមម៉ាស៊ីនមេឡើងវិញ៖";
    cert_none: "This server does not run its own certificate authority: phones trust its certificate the way the operator set it up.", "ម៉ាស៊ីនមេនេះមិនមានអាជ្ញាធរវិញ្ញាបនបត្រផ្ទាល់ខ្លួនទេ៖ ទូរស័ព្ទទុកចិត្តវិញ្ញាបនបត្ររបស់វាតាមរបៀបដែលប្រតិបត្តិករបានរៀបចំ។";
    // Sign-in
    sign_in_title: "Saksi console", "ផ្ទាំងគ្រប់គ្រងសាក្សី";
    sign_in_page: "Sign in", "ចូល";
    sign_in_lead: "For coordinators and admins: review records, resolve conflicts, export reports.", "សម្រាប់អ្នកសម្របសម្រួល និងអ្នកគ្រប់គ្រង៖ ពិនិត្យកំណត់ត្រា ដោះស្រាយទិន្នន័យផ្ទុយគ្នា នាំចេញរបាយការណ៍។";
    f_password: "Password", "ពាក្យសម្ងាត់";
    sign_in: "Sign in", "ចូល";
    sign_in_hint: "Signing in registers this browser as a device named “console (browser)”. An admin can revoke it at any time.", "ការចូលនឹងចុះឈ្មោះកម្មវិធីរុករកនេះជាឧបករណ៍មួយឈ្មោះ «console (browser)»។ អ្នកគ្រប់គ្រងអាចដកសិទ្ធិវាបានគ្រប់ពេល។";
    err_wrong_login: "Wrong username or password.", "ឈ្មោះអ្នកប្រើ ឬពាក្យសម្ងាត់មិនត្រឹមត្រូវ។";
    err_throttled_login: "Too many attempts. Try again in {s} seconds.", "ព្យាយាមច្រើនដងពេក។ សូមព្យាយាមម្ដងទៀតក្នុងរយៈពេល {s} វិនាទី។";
    err_enter_login: "Enter your username and password.", "សូមបញ្ចូលឈ្មោះអ្នកប្រើ និងពាក្យសម្ងាត់។";
    err_console_role: "The console is for coordinators and admins. Use the Saksi app on your phone.", "ផ្ទាំងគ្រប់គ្រងនេះសម្រាប់អ្នកសម្របសម្រួល និងអ្នកគ្រប់គ្រង។ សូមប្រើកម្មវិធីសាក្សីនៅលើទូរស័ព្ទរបស់អ្នក។";
    // Printable report
    saksi_report: "Saksi report", "របាយការណ៍សាក្សី";
    back_to_records: "← Back to the records", "← ត្រឡប់ទៅកំណត់ត្រា";
    print_hint: "Use your browser's Print command (Ctrl+P or ⌘P) and choose “Save as PDF”.", "ប្រើពាក្យបញ្ជាបោះពុម្ពរបស់កម្មវិធីរុករក (Ctrl+P ឬ ⌘P) ហើយជ្រើសរើស «Save as PDF»។";
    filter_word: "filter", "តម្រង";
    generated: "generated", "បានបង្កើតនៅ";
    skipped_note: "record(s) could not be read and are not in this report:", "កំណត់ត្រាមិនអាចអានបាន ហើយមិនមាននៅក្នុងរបាយការណ៍នេះទេ៖";
    confidential: "Confidential: contains information about people at risk. Share only as agreed.", "សម្ងាត់៖ មានព័ត៌មានអំពីមនុស្សដែលប្រឈមនឹងហានិភ័យ។ ចែករំលែកតែតាមការព្រមព្រៀងប៉ុណ្ណោះ។";
    unresolved_conflicts: "Unresolved conflicts", "ទិន្នន័យផ្ទុយគ្នាដែលមិនទាន់ដោះស្រាយ";
    edit_history: "Edit history", "ប្រវត្តិនៃការកែប្រែ";
    case_word: "case", "សំណុំរឿង";
    id_word: "id", "លេខសម្គាល់";
    // History page
    history_of: "History of", "ប្រវត្តិនៃ";
    f_field: "Field", "វាល";
    show: "Show", "បង្ហាញ";
    every_field: "Every field", "គ្រប់វាល";
    history_hint: "Newest first. Times are the authors' device clocks, in the organisation's time zone. The device is the one the server bound the change to; ✓ means the change's own note names the same user and device; “unconfirmed” means it names someone else, or no device is on record.", "ថ្មីបំផុតមុន។ ម៉ោងគឺតាមនាឡិកាឧបករណ៍របស់អ្នកសរសេរ តាមល្វែងម៉ោងរបស់ស្ថាប័ន។ ឧបករណ៍គឺជាឧបករណ៍ដែលម៉ាស៊ីនមេបានភ្ជាប់ការផ្លាស់ប្ដូរទៅ; ✓ មានន័យថាកំណត់ចំណាំរបស់ការផ្លាស់ប្ដូរបញ្ជាក់ឈ្មោះអ្នកប្រើ និងឧបករណ៍ដូចគ្នា; «មិនទាន់បញ្ជាក់» មានន័យថាវាបញ្ជាក់អ្នកផ្សេង ឬគ្មានឧបករណ៍ក្នុងកំណត់ត្រា។";
    no_changes: "No changes", "គ្មានការផ្លាស់ប្ដូរ";
    to_this_field: "to this field", "ចំពោះវាលនេះ";
    col_when: "When", "ពេលណា";
    col_who: "Who", "អ្នកណា";
    col_device: "Device", "ឧបករណ៍";
    col_what: "What", "អ្វី";
}

/// The words of a page without the console's frame (sign-in, the printable report), in the
/// language the browser chose (the language cookie).
#[derive(Debug, Clone, Copy)]
pub struct Words(pub Lang);

impl Words {
    pub fn t(&self, key: &str) -> &'static str {
        word(self.0, key)
    }

    pub fn of(req: &actix_web::HttpRequest) -> Words {
        Words(
            req.cookie(super::LANG_COOKIE)
                .and_then(|c| Lang::parse(c.value()))
                .unwrap_or_default(),
        )
    }

    /// `en` or `km`, for `<html lang>`.
    pub fn code(&self) -> &'static str {
        match self.0 {
            Lang::En => "en",
            Lang::Km => "km",
        }
    }
}

/// The word for a review action as done ("approved"), for the trail and the history.
pub fn did(lang: Lang, action: &str) -> String {
    let key = format!("did_{action}");
    match word(lang, &key) {
        "?" => action.to_owned(),
        w => w.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &[(&str, &str)] = &[
        ("base", include_str!("../../templates/console/base.html")),
        (
            "records",
            include_str!("../../templates/console/records.html"),
        ),
        (
            "record",
            include_str!("../../templates/console/record.html"),
        ),
        (
            "history",
            include_str!("../../templates/console/history.html"),
        ),
        ("audit", include_str!("../../templates/console/audit.html")),
        ("users", include_str!("../../templates/console/users.html")),
        (
            "devices",
            include_str!("../../templates/console/devices.html"),
        ),
        ("cases", include_str!("../../templates/console/cases.html")),
        ("login", include_str!("../../templates/console/login.html")),
        (
            "certificate",
            include_str!("../../templates/console/certificate.html"),
        ),
        (
            "report",
            include_str!("../../templates/console/report.html"),
        ),
    ];

    #[test]
    fn every_key_a_template_uses_has_both_languages() {
        let mut used = 0;
        for (name, text) in TEMPLATES {
            let framed = text.split("chrome.t(\"").skip(1);
            let plain = text.split(" w.t(\"").skip(1);
            for part in framed.chain(plain) {
                let key = part.split('"').next().expect("a key");
                used += 1;
                assert!(
                    KEYS.contains(&key),
                    "{name}.html uses `{key}`, which has no words"
                );
            }
        }
        assert!(used > 50, "the templates use the catalogue ({used} uses)");
        for key in KEYS {
            let (en, km) = (word(Lang::En, key), word(Lang::Km, key));
            assert!(!en.is_empty() && !km.is_empty(), "{key}");
            // Khmer is Khmer (a few words are the same in both: JSON, CSV).
            if !matches!(*key, "json") {
                assert!(
                    km.chars().any(|c| ('\u{1780}'..='\u{17FF}').contains(&c)),
                    "{key}: {km}"
                );
            }
        }
    }
}
