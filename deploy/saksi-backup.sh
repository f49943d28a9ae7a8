#!/bin/sh
# Daily encrypted backup of a Saksi server (run by saksi-backup.service, as the saksi user).
#
#   saksi-backup.sh [--config FILE]
#
# 1. `saksi admin backup` writes a consistent snapshot while the server keeps serving.
# 2. The snapshot is encrypted with age to the public keys in /etc/saksi/backup-recipients
#    (one `age1...` key per line; keep the private keys OFF this server, e.g. on the
#    coordinator's laptop and on paper in a safe), and the plain copy is deleted.
# 3. The output of the backup (entry counts and the last audit hash) is appended to
#    backups.log: keep a copy of that log off the server too (it detects the removal of the
#    newest audit entries).
# 4. The destroyed records' tombstones (ids only) are kept next to it, encrypted too: a
#    restore on another machine needs the latest (OPERATIONS.md, "Backup").
# 5. Encrypted backups older than KEEP_DAYS are deleted (a backup made before a purge holds the
#    purged record until then: keep off-site copies no longer either). Copying them off-site is up to you:
#    set OFFSITE to a command that receives the file name (e.g. an rclone or rsync call).
set -eu

CONFIG=/etc/saksi/saksi.toml
if [ "${1:-}" = "--config" ]; then CONFIG=$2; fi
DIR=${BACKUP_DIR:-/var/lib/saksi/backups}
RECIPIENTS=${BACKUP_RECIPIENTS:-/etc/saksi/backup-recipients}
KEEP_DAYS=${KEEP_DAYS:-30}
OFFSITE=${OFFSITE:-}

umask 077
mkdir -p "$DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
plain="$DIR/saksi-$stamp.sqlite3"
trap 'rm -f "$plain"' EXIT

saksi admin --config "$CONFIG" backup "$plain" | tee -a "$DIR/backups.log"
age --encrypt --recipients-file "$RECIPIENTS" --output "$plain.age" "$plain"
rm -f "$plain"
echo "$stamp encrypted: $plain.age" >> "$DIR/backups.log"
saksi admin --config "$CONFIG" tombstones \
    | age --encrypt --recipients-file "$RECIPIENTS" --output "$DIR/tombstones-$stamp.age"

if [ -n "$OFFSITE" ]; then
    $OFFSITE "$plain.age"
    $OFFSITE "$DIR/tombstones-$stamp.age"
fi
find "$DIR" \( -name 'saksi-*.sqlite3.age' -o -name 'tombstones-*.age' \) -mtime +"$KEEP_DAYS" -delete
