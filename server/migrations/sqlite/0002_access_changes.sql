-- Changes to what a user may read (team membership, role, disabled), in order, so that a
-- running server closes the documents a connected phone may no longer read, whichever process
-- (the server's console or the admin command line) made the change. Holds ids only.
CREATE TABLE access_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL
);
