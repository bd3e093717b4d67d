-- Which claim on a session path is the live one, for instances sharing this database: each
-- sign-in on a path raises its generation, and a message from a session whose generation is
-- no longer the path's (taken over on another instance, say behind a partition) is refused.
CREATE TABLE session_claims (
    path TEXT COLLATE "C" PRIMARY KEY,
    generation BIGINT NOT NULL
);
