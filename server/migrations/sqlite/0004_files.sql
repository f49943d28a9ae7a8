-- Files attached to records (photos, recordings, documents). Their bytes are in the blob store
-- (data_dir/files/, content-addressed by SHA-256); these tables hold ids, hashes and sizes.

-- The files each stored record names, rebuilt from the record whenever it is stored: who may
-- upload or read a file follows from the records that name it.
CREATE TABLE document_files (
    doc_id         TEXT NOT NULL,
    attachment_id  TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    size           INTEGER NOT NULL,
    media_type     TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    PRIMARY KEY (doc_id, attachment_id)
);
CREATE INDEX document_files_sha ON document_files (sha256);

-- The files the server holds, each verified against its SHA-256 when its upload finished.
-- `unreferenced_since`: when the last record naming it stopped naming it (NULL while one does);
-- it is deleted once that is older than unreferenced_file_days.
CREATE TABLE blobs (
    sha256              TEXT PRIMARY KEY,
    size                INTEGER NOT NULL,
    uploaded_by         TEXT NOT NULL,
    stored_at           INTEGER NOT NULL,
    unreferenced_since  INTEGER
);
CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since) WHERE unreferenced_since IS NOT NULL;
CREATE INDEX blobs_uploaded_by ON blobs (uploaded_by);

-- Uploads in progress (the tus protocol): one per device and file. `received` is the number of
-- bytes on disk and synced; a restart resumes from it.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    length      INTEGER NOT NULL,
    received    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (device_id, sha256)
);
