-- Threads: the replies to a message, found without reading the channel.
CREATE INDEX messages_reply_to ON messages (channel_id, reply_to) WHERE reply_to IS NOT NULL;
