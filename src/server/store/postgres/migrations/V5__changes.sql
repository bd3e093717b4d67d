-- Edits, deletes and reactions: each is an event row of `messages` (its `event` and `target`,
-- the seq it changes), so it takes its place in the channel's order; the target row is changed
-- in place (`edited_at`, `deleted`). Reactions in force are rows of their own, gone with their
-- message.
ALTER TABLE messages ADD COLUMN event TEXT;
ALTER TABLE messages ADD COLUMN target BIGINT;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX messages_target ON messages (channel_id, target) WHERE target IS NOT NULL;
CREATE TABLE reactions (
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    reaction TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    PRIMARY KEY (channel_id, seq, reaction, user_id),
    FOREIGN KEY (channel_id, seq) REFERENCES messages (channel_id, seq) ON DELETE CASCADE
);
