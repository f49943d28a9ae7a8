-- Records destroyed for good (consent withdrawn, recorded in error, safety; or a draft
-- discarded). A tombstone holds ids only, never content or a title: the id is refused forever,
-- and phones that still hold the record learn to delete it. The same lines are kept outside the
-- database too (data_dir/tombstones), so that restoring an older backup cannot bring a record
-- back.
-- A liaison recorded that the family withdrew consent: the coordinators are asked to purge.
ALTER TABLE documents ADD COLUMN consent_withdrawn INTEGER NOT NULL DEFAULT 0;

-- Every file a record ever named (document_files holds only what it names now): a purge takes
-- the files a record dropped before too. Filled from what records name today.
CREATE TABLE document_files_ever (
    doc_id  TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (doc_id, sha256)
);
INSERT OR IGNORE INTO document_files_ever (doc_id, sha256) SELECT doc_id, sha256 FROM document_files;

CREATE TABLE tombstones (
    doc_id      TEXT PRIMARY KEY,
    purged_at   INTEGER NOT NULL,
    username    TEXT NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('consent_withdrawn', 'recorded_in_error', 'safety', 'discarded')),
    -- Who could read it (to tell their phones): its case and author.
    case_id     TEXT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX tombstones_case ON tombstones (case_id);

-- Purges waiting out their grace period (purge_grace_days): the record is hidden from all but
-- coordinators and admins, and a coordinator may still undo it.
CREATE TABLE purges (
    doc_id        TEXT PRIMARY KEY,
    requested_at  INTEGER NOT NULL,
    username      TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('consent_withdrawn', 'recorded_in_error', 'safety', 'discarded')),
    due_at        INTEGER NOT NULL
);
CREATE INDEX purges_due ON purges (due_at);
