//! The database schema as numbered migrations (kept in SQLite's `user_version`), applied in
//! order when the store opens: a server opens yesterday's data on today's schema, and refuses
//! a database written by a newer version instead of guessing. Add a step at the end; never
//! edit one that has shipped.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// The first release. Its tables were made with `IF NOT EXISTS` and no version, so on a
/// database from before versioning this step finds them all in place.
const V1_FIRST_RELEASE: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS machines (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE IF NOT EXISTS channels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    sender_path TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_idempotency ON messages (channel_id, sender_id, client_id);
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
CREATE TABLE IF NOT EXISTS read_positions (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, handle, channel_id)
) WITHOUT ROWID;
";

/// Machine invite codes (enrolling with proof of the key), the per-creator channel index for
/// the channel cap, and human keys (see `net::human_key`).
const V2_INVITES_AND_HUMAN_KEYS: &str = "
CREATE TABLE machine_invites (
    code TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    machine TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX channels_creator ON channels (creator_id);
ALTER TABLE machines ADD COLUMN human_key BLOB;
CREATE UNIQUE INDEX machines_human_key ON machines (human_key);
";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1_FIRST_RELEASE),
        M::up(V2_INVITES_AND_HUMAN_KEYS),
    ])
}

/// Brings `conn` to the newest schema.
pub fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(conn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn a_first_release_database_opens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conclave.db");
        {
            // As the first release left it: its tables, no user_version.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V1_FIRST_RELEASE).unwrap();
            conn.execute(
                "INSERT INTO users (name, created_at) VALUES ('alice', 1)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO machines (user_id, name, public_key, created_at) VALUES (1, 'laptop', x'01', 1)",
                [],
            )
            .unwrap();
        }
        let mut db = super::super::Db::open(Some(dir.path())).unwrap();
        assert!(db.account_by_key(&[1]).unwrap().is_some());
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("conclave.db")).unwrap();
            conn.execute_batch("PRAGMA user_version = 99").unwrap();
        }
        let refused = super::super::Db::open(Some(dir.path())).err().unwrap();
        assert!(refused.to_string().contains("schema"), "{refused}");
    }
}
