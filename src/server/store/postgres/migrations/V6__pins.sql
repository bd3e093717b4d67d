-- Pinned messages: pinned and unpinned by a channel's moderators, gone with their message.
CREATE TABLE pins (
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    pinned_by TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (channel_id, seq),
    FOREIGN KEY (channel_id, seq) REFERENCES messages (channel_id, seq) ON DELETE CASCADE
);
