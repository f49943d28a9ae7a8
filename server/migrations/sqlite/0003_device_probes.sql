-- A phone's probe: a random id it registers at sign-in and keeps in the clear, so that while it
-- is locked (and holds no usable credential) it can still ask whether its device was revoked,
-- and tell the server that it wiped itself. The server keeps only the SHA-256 of each probe.
-- A probe proves nothing and opens nothing: it answers one yes/no question about one device,
-- and can only revoke that device.
CREATE TABLE device_probes (
    probe_hash BLOB PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices (id)
);
