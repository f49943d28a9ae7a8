-- Saksi schema, version 1.

CREATE TABLE users (
    id                INTEGER PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    role              TEXT NOT NULL CHECK (role IN ('monitor', 'liaison', 'coordinator', 'admin')),
    password_hash     TEXT NOT NULL,
    disabled          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);

-- One row per login: a phone, a browser, a script. The token itself is never stored, only its
-- SHA-256.
CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    name          TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_seen     INTEGER,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX devices_user ON devices(user_id);
CREATE INDEX devices_revoked ON devices(revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE case_members (
    case_id  TEXT NOT NULL REFERENCES cases(id),
    user_id  INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (case_id, user_id)
);
CREATE INDEX case_members_user ON case_members(user_id);

-- The index of stored documents (records and cases). The content is in `chunks`.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    case_id        TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    title          TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'draft',
    has_conflicts  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX documents_case ON documents(case_id);
CREATE INDEX documents_updated ON documents(updated_at);

-- Automerge data: change chunks appended as they arrive, replaced by a snapshot on compaction.
-- Loading a document concatenates its chunks in id order.
CREATE TABLE chunks (
    id       INTEGER PRIMARY KEY,
    doc_id   TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('change', 'snapshot')),
    bytes    BLOB NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id, id);

-- What each device and the server are known to share, per document (automerge sync state).
CREATE TABLE sync_states (
    device_id  TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    state      BLOB NOT NULL,
    PRIMARY KEY (device_id, doc_id)
);

-- Each automerge actor id belongs to the first device that sent a change made with it.
CREATE TABLE actors (
    actor       TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    first_seen  INTEGER NOT NULL
);

-- Append-only audit log. Each entry's hash covers the previous entry's hash, so removing or
-- editing an entry breaks the chain (`saksi admin verify-audit`).
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    username   TEXT,
    device_id  TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    detail     TEXT NOT NULL DEFAULT '',
    hash       BLOB NOT NULL
);
CREATE INDEX audit_action ON audit(action, at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
