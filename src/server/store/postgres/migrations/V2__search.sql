-- Search: message bodies as full-text vectors, kept in step by PostgreSQL itself (a stored
-- generated column), with a GIN index. The 'simple' configuration lower-cases words and
-- neither stems them nor drops any, as SQLite's index reads them.
ALTER TABLE messages
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
