//! Search on the FTS5 index (schema V4): among the channels the user may read, newest first.

use rusqlite::params;

use super::messages::{message_row, stored_message};
use super::{Db, internal, name_from};
use crate::net::protocol::ProtocolError;
use crate::server::store::{ChannelId, Found, Search, Sender, UserId, as_sql_seq};

impl Db {
    /// The hits of `search` for `user` (see `Store::search`).
    pub fn search(&mut self, user: UserId, search: &Search) -> Result<Found, ProtocolError> {
        let channels: Vec<ChannelId> = match &search.channel {
            Some(name) => vec![self.readable_channel(name, user)?.id],
            None => self.member_channels(user)?,
        };
        let (sender_id, sender_path) = match &search.from {
            None => (None, None),
            Some(Sender::Session(path)) => (None, Some(path.to_string())),
            Some(Sender::User(name)) => (Some(self.user_id(name)?), None),
        };
        if channels.is_empty() {
            return Ok(Found::default());
        }
        let before = search
            .before
            .map(|c| (c.ts, c.channel_id, as_sql_seq(c.seq)));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.seq, m.ts, m.sender_path, m.body, m.sender_kind, c.name, m.channel_id
                 FROM messages_fts f
                 JOIN messages m ON m.channel_id = (f.rowid >> 32) AND m.seq = (f.rowid & 4294967295)
                 JOIN channels c ON c.id = m.channel_id
                 WHERE messages_fts MATCH ?1
                   AND m.channel_id IN (SELECT value FROM json_each(?2))
                   AND (?3 IS NULL OR m.sender_id = ?3)
                   AND (?4 IS NULL OR m.sender_path = ?4)
                   AND (?5 IS NULL OR m.sender_kind = ?5)
                   AND (?6 IS NULL OR m.ts >= ?6)
                   AND (?7 IS NULL OR m.ts < ?7)
                   AND (?8 IS NULL OR (m.ts, m.channel_id, m.seq) < (?8, ?9, ?10))
                 ORDER BY m.ts DESC, m.channel_id DESC, m.seq DESC
                 LIMIT ?11",
            )
            .map_err(internal)?;
        let channel_list =
            serde_json::to_string(&channels).map_err(|e| ProtocolError::internal(e.to_string()))?;
        let rows = stmt
            .query_map(
                params![
                    fts_query(&search.terms),
                    channel_list,
                    sender_id,
                    sender_path,
                    search.kind.map(|k| k.to_string()),
                    search.since,
                    search.until,
                    before.map(|b| b.0),
                    before.map(|b| b.1),
                    before.map(|b| b.2),
                    i64::from(search.limit) + 1,
                ],
                |r| Ok((message_row(r)?, r.get::<_, String>(5)?, r.get::<_, i64>(6)?)),
            )
            .map_err(internal)?;
        Found::cut(
            search.limit,
            rows.map(|row| {
                let (message, channel, id) = row.map_err(internal)?;
                Ok((id, stored_message(&name_from(channel)?, message)?))
            }),
        )
    }

    /// The channels `user` is a member of (a ban ends a membership).
    fn member_channels(&mut self, user: UserId) -> Result<Vec<ChannelId>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT channel_id FROM memberships WHERE user_id = ?1")
            .map_err(internal)?;
        let ids = stmt
            .query_map([user], |r| r.get(0))
            .map_err(internal)?
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        Ok(ids)
    }
}

/// The terms as an FTS5 query: each one quoted (so nothing in it is FTS syntax), all
/// required.
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}
