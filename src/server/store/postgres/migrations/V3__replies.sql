-- Replies: the seq of the message (in the same channel) a message answers.
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
