-- Search: a finer sample of the words messages hold. With the default, a rare word or a phrase
-- was estimated to match 0.5% of a channel, so the planner walked the channel newest first
-- through every message (250 ms over a million) instead of asking the index (3 ms).
ALTER TABLE messages ALTER COLUMN search SET STATISTICS 1000;
