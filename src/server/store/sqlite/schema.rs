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

/// Governing the room: roles on memberships (creators become owners), channel topics,
/// archiving and the brakes on agents, bans and mutes per channel (kept apart from
/// memberships, so leaving and joining again lifts neither), server-wide bans, channel invite
/// tokens, the sender's kind on messages, and the audit log. The audit keeps the
/// channel's id and name as they were, without a reference, so entries outlive the channel.
const V3_GOVERNANCE: &str = "
ALTER TABLE memberships ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
UPDATE memberships SET role = 'owner' WHERE EXISTS
    (SELECT 1 FROM channels c WHERE c.id = memberships.channel_id AND c.creator_id = memberships.user_id);
ALTER TABLE channels ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN agent_turns INTEGER NOT NULL DEFAULT 20;
ALTER TABLE channels ADD COLUMN agent_run INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN reply_mode TEXT NOT NULL DEFAULT 'open';
ALTER TABLE channels ADD COLUMN slow_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN floor TEXT;
ALTER TABLE messages ADD COLUMN sender_kind TEXT;
ALTER TABLE users ADD COLUMN banned_until INTEGER;
ALTER TABLE users ADD COLUMN ban_reason TEXT;
CREATE TABLE channel_bans (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE TABLE channel_mutes (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE TABLE channel_invites (
    token TEXT PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    creator_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    uses_left INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX channel_invites_creator ON channel_invites (creator_id);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    actor_id INTEGER NOT NULL,
    actor_path TEXT NOT NULL,
    action TEXT NOT NULL,
    channel_id INTEGER,
    channel_name TEXT,
    target TEXT,
    detail TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX audit_channel ON audit (channel_id, id);
CREATE INDEX audit_actor ON audit (actor_id, id);
CREATE INDEX audit_ts ON audit (ts);
";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1_FIRST_RELEASE),
        M::up(V2_INVITES_AND_HUMAN_KEYS),
        M::up(V3_GOVERNANCE),
        M::up(V4_SEARCH),
        M::up(V5_REPLIES),
        M::up(V6_CHANGES),
        M::up(V7_PINS),
        M::up(V8_THREADS),
    ])
}

/// Search: a full-text index (FTS5) of message bodies. Contentless: it holds the index only,
/// keyed by `channel_id << 32 | seq` (a channel's seqs stay below 2^32), so a channel's hits
/// come newest first by key, and searches join back to `messages` for the rest. Stored
/// messages are indexed in large batches off the path of acknowledgements (see
/// `search.rs`), each channel up to its `search_progress`; removals (retention, deletes,
/// deleted channels) and edits reach the index at once through triggers. Words are runs of
/// letters and digits, compared without case and with their accents, as
/// `net::protocol::words` reads them.
const V4_SEARCH: &str = "
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TABLE search_progress (channel_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = (old.channel_id << 32) | old.seq;
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.seq <= (SELECT seq FROM search_progress WHERE channel_id = old.channel_id)
BEGIN
    DELETE FROM messages_fts WHERE rowid = (old.channel_id << 32) | old.seq;
    INSERT INTO messages_fts (rowid, body) VALUES ((new.channel_id << 32) | new.seq, new.body);
END;
CREATE TRIGGER channels_fts_delete AFTER DELETE ON channels BEGIN
    DELETE FROM messages_fts WHERE rowid BETWEEN old.id << 32 AND (old.id << 32) | 4294967295;
    DELETE FROM search_progress WHERE channel_id = old.id;
END;
";

/// Replies: the seq of the message (in the same channel) a message answers.
const V5_REPLIES: &str = "ALTER TABLE messages ADD COLUMN reply_to INTEGER;";

/// Edits, deletes and reactions: each is an event row of `messages` (its `event` and
/// `target`, the seq it changes), so it takes its place in the channel's order; the target row
/// is changed in place (`edited_at`, `deleted`). Reactions in force are rows of their own,
/// gone with their message.
const V6_CHANGES: &str = "
ALTER TABLE messages ADD COLUMN event TEXT;
ALTER TABLE messages ADD COLUMN target INTEGER;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_target ON messages (channel_id, target) WHERE target IS NOT NULL;
CREATE TABLE reactions (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    reaction TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    PRIMARY KEY (channel_id, seq, reaction, user_id)
) WITHOUT ROWID;
CREATE TRIGGER reactions_of_removed_messages AFTER DELETE ON messages BEGIN
    DELETE FROM reactions WHERE channel_id = old.channel_id AND seq = old.seq;
END;
";

/// Pinned messages: pinned and unpinned by a channel's moderators, gone with their message.
const V7_PINS: &str = "
CREATE TABLE pins (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    pinned_by TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER pins_of_removed_messages AFTER DELETE ON messages BEGIN
    DELETE FROM pins WHERE channel_id = old.channel_id AND seq = old.seq;
END;
";

/// Threads: the replies to a message, found without reading the channel.
const V8_THREADS: &str =
    "CREATE INDEX messages_reply_to ON messages (channel_id, reply_to) WHERE reply_to IS NOT NULL;";

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
        assert_eq!(version, 8);
    }

    #[test]
    fn yesterdays_database_opens_with_creators_as_owners_and_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As the release before governance left it: schema 2, a channel and a message.
            let conn = Connection::open(dir.path().join("conclave.db")).unwrap();
            conn.execute_batch(V1_FIRST_RELEASE).unwrap();
            conn.execute_batch(V2_INVITES_AND_HUMAN_KEYS).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO users (name, created_at) VALUES ('alice', 1), ('bob', 1);
                 INSERT INTO channels (name, visibility, creator_id, last_seq, created_at)
                     VALUES ('ops', 'public', 1, 1, 1);
                 INSERT INTO memberships (channel_id, user_id, joined_at) VALUES (1, 1, 1), (1, 2, 1);
                 INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body)
                     VALUES (1, 1, 1, 1, 'alice/laptop/tui', 'c1', 'kept');",
            )
            .unwrap();
        }
        let mut db = super::super::Db::open(Some(dir.path())).unwrap();
        let ops = db
            .channel(&crate::net::names::Name::channel("ops").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            db.role(ops.id, 1).unwrap(),
            Some(crate::net::protocol::Role::Owner)
        );
        assert_eq!(
            db.role(ops.id, 2).unwrap(),
            Some(crate::net::protocol::Role::Member)
        );
        let range = crate::server::store::HistoryRange {
            after: None,
            before: None,
            limit: 10,
            thread: None,
        };
        let page = db.page_of(&ops, range).unwrap();
        assert_eq!(page.messages[0].text, "kept");
        assert_eq!(page.messages[0].from_kind, None);
        let details = db.channel_details(&ops, 2).unwrap();
        assert_eq!(
            details.agent_turns,
            crate::net::protocol::DEFAULT_AGENT_TURNS
        );
        assert_eq!(details.owner.unwrap().as_str(), "alice");
        // What was stored before search existed is found.
        let search = crate::server::store::Search::terms(vec!["kept".into()], 10);
        assert_eq!(db.search(2, &search).unwrap().hits.len(), 1);
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
