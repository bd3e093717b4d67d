-- The schema of SQLite's migrations 1 to 3 in one step: accounts and machines (with human
-- keys and invite codes), channels with their governance and brakes, memberships with roles,
-- messages, read positions, bans, mutes, channel invites and the audit log.
--
-- Names compare and sort bytewise (COLLATE "C"), as in SQLite, so pages by name come in the
-- same order on either backend. Times are milliseconds since the Unix epoch. A channel's
-- `last_seq` is the counter its messages are numbered from, raised under the row's lock in
-- the transaction that inserts them.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    banned_until BIGINT,
    ban_reason TEXT
);

CREATE TABLE machines (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    public_key BYTEA NOT NULL UNIQUE,
    human_key BYTEA UNIQUE,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE machine_invites (
    code TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    machine TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX machine_invites_user ON machine_invites (user_id);

CREATE TABLE channels (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    visibility TEXT NOT NULL,
    creator_id BIGINT NOT NULL REFERENCES users(id),
    last_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    agent_turns BIGINT NOT NULL DEFAULT 20,
    agent_run BIGINT NOT NULL DEFAULT 0,
    reply_mode TEXT NOT NULL DEFAULT 'open',
    slow_seconds BIGINT NOT NULL DEFAULT 0,
    floor TEXT
);
CREATE INDEX channels_creator ON channels (creator_id);

CREATE TABLE memberships (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at BIGINT NOT NULL,
    role TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    sender_path TEXT NOT NULL,
    client_id TEXT NOT NULL,
    body TEXT NOT NULL,
    sender_kind TEXT,
    PRIMARY KEY (channel_id, seq)
);
-- A resend after a lost acknowledgement finds its message here instead of storing a copy.
CREATE UNIQUE INDEX messages_idempotency ON messages (channel_id, sender_id, client_id);
CREATE INDEX messages_ts ON messages (ts);

CREATE TABLE read_positions (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, handle, channel_id)
);

-- Bans and mutes are kept apart from memberships, so leaving and joining again lifts neither.
CREATE TABLE channel_bans (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until BIGINT NOT NULL,
    reason TEXT,
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE channel_mutes (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE channel_invites (
    token TEXT PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    creator_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    uses_left BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX channel_invites_creator ON channel_invites (creator_id);

-- The audit keeps the channel's id and name as they were, without a reference, so entries
-- outlive the channel.
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    ts BIGINT NOT NULL,
    actor_id BIGINT NOT NULL,
    actor_path TEXT NOT NULL,
    action TEXT NOT NULL,
    channel_id BIGINT,
    channel_name TEXT,
    target TEXT,
    detail TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX audit_channel ON audit (channel_id, id);
CREATE INDEX audit_actor ON audit (actor_id, id);
CREATE INDEX audit_ts ON audit (ts);
