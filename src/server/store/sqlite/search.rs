//! Search on the FTS5 index (schema V4): among the channels the user may read, newest first.

use rusqlite::params;

use super::messages::{message_columns, message_row, stored_message};
use super::{Db, internal, name_from};
use crate::net::names::Name;
use crate::net::protocol::ProtocolError;
use crate::server::store::{ChannelId, Found, Search, Sender, UserId, as_sql_seq};

/// Messages indexed per transaction.
pub(super) const INDEX_BATCH: usize = 4096;

impl Db {
    /// Indexes stored messages not indexed yet, channel by channel in seq order, at most
    /// `budget` seqs, in one transaction; how many seqs it covered. Large batches cost the
    /// index a fraction of what one message at a time would.
    pub fn index_pending(&mut self, budget: usize) -> Result<usize, ProtocolError> {
        let tx = self.conn.transaction().map_err(internal)?;
        let behind: Vec<(ChannelId, i64, i64)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT c.id, COALESCE(p.seq, 0), c.last_seq FROM channels c
                     LEFT JOIN search_progress p ON p.channel_id = c.id
                     WHERE c.last_seq > COALESCE(p.seq, 0)",
                )
                .map_err(internal)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(internal)?
                .collect::<Result<_, _>>()
                .map_err(internal)?
        };
        // Seqs covered, stored or purged: what the budget counts, so a batch stays bounded.
        let mut covered = 0usize;
        for (channel, from, last) in behind {
            let left = i64::try_from(budget.saturating_sub(covered)).unwrap_or(i64::MAX);
            if left == 0 {
                break;
            }
            let upto = last.min(from.saturating_add(left));
            tx.prepare_cached(
                "INSERT INTO messages_fts (rowid, body)
                 SELECT (channel_id << 32) | seq, body FROM messages
                 WHERE channel_id = ?1 AND seq > ?2 AND seq <= ?3 AND event IS NULL",
            )
            .and_then(|mut s| s.execute(params![channel, from, upto]))
            .map_err(internal)?;
            tx.execute(
                "INSERT INTO search_progress (channel_id, seq) VALUES (?1, ?2)
                 ON CONFLICT (channel_id) DO UPDATE SET seq = excluded.seq",
                params![channel, upto],
            )
            .map_err(internal)?;
            covered += usize::try_from(upto - from).unwrap_or(0);
        }
        tx.commit().map_err(internal)?;
        Ok(covered)
    }

    /// The hits of `search` for `user` (see `Store::search`), among every stored message:
    /// what waits to be indexed is indexed first.
    pub fn search(&mut self, user: UserId, search: &Search) -> Result<Found, ProtocolError> {
        while self.index_pending(INDEX_BATCH)? > 0 {}
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
        // Channel by channel, each one's newest hits first straight off the index (its keys
        // order a channel's messages), then the newest of them all.
        let before = search
            .before
            .map(|c| (c.ts, c.channel_id, as_sql_seq(c.seq)));
        let query = fts_query(&search.terms);
        let fetch = i64::from(search.limit) + 1;
        let kind = search.kind.map(|k| k.to_string());
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages_fts f
                 JOIN messages m ON m.channel_id = ?2 AND m.seq = (f.rowid & 4294967295)
                 WHERE messages_fts MATCH ?1
                   AND f.rowid BETWEEN (?2 << 32) AND ((?2 << 32) | 4294967295)
                   AND (?3 IS NULL OR m.sender_id = ?3)
                   AND (?4 IS NULL OR m.sender_path = ?4)
                   AND (?5 IS NULL OR m.sender_kind = ?5)
                   AND (?6 IS NULL OR m.ts >= ?6)
                   AND (?7 IS NULL OR m.ts < ?7)
                   AND (?8 IS NULL OR (m.ts, m.channel_id, m.seq) < (?8, ?9, ?10))
                 ORDER BY f.rowid DESC
                 LIMIT ?11"
            ))
            .map_err(internal)?;
        let mut hits = Vec::new();
        for &channel in &channels {
            let rows = stmt
                .query_map(
                    params![
                        query,
                        channel,
                        sender_id,
                        sender_path,
                        kind,
                        search.since,
                        search.until,
                        before.map(|b| b.0),
                        before.map(|b| b.1),
                        before.map(|b| b.2),
                        fetch,
                    ],
                    message_row,
                )
                .map_err(internal)?;
            for row in rows {
                hits.push((channel, row.map_err(internal)?));
            }
        }
        drop(stmt);
        hits.sort_unstable_by(|(c1, m1), (c2, m2)| (m2.ts, c2, m2.seq).cmp(&(m1.ts, c1, m1.seq)));
        hits.truncate(usize::try_from(fetch).unwrap_or(usize::MAX));
        let names = self.channel_names(&channels)?;
        Found::cut(
            search.limit,
            hits.into_iter().map(|(channel, message)| {
                let name = names
                    .get(&channel)
                    .ok_or_else(|| ProtocolError::internal("a hit's channel is gone"))?;
                Ok((channel, stored_message(name, message)?))
            }),
        )
    }

    /// The names of `channels`, by id.
    fn channel_names(
        &mut self,
        channels: &[ChannelId],
    ) -> Result<std::collections::HashMap<ChannelId, Name>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM channels WHERE id = ?1")
            .map_err(internal)?;
        let mut names = std::collections::HashMap::with_capacity(channels.len());
        for &id in channels {
            let name: String = stmt.query_row([id], |r| r.get(0)).map_err(internal)?;
            names.insert(id, name_from(name)?);
        }
        Ok(names)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A database with #general (channel 1) holding `n` messages, none indexed yet.
    fn with_messages(n: i64) -> Db {
        let db = Db::open(None).unwrap();
        db.conn
            .execute_batch(
                "INSERT INTO users (name, created_at) VALUES ('alice', 1);
                 INSERT INTO channels (name, visibility, creator_id, created_at)
                     VALUES ('general', 'public', 1, 1);
                 INSERT INTO memberships (channel_id, user_id, joined_at, role) VALUES (1, 1, 1, 'owner');",
            )
            .unwrap();
        for seq in 1..=n {
            db.conn
                .execute(
                    "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body)
                     VALUES (1, ?1, ?1, 1, 'alice/box/cli', ?1, 'needle ' || ?1)",
                    [seq],
                )
                .unwrap();
        }
        db.conn
            .execute("UPDATE channels SET last_seq = ?1 WHERE id = 1", [n])
            .unwrap();
        db
    }

    fn indexed(db: &Db) -> i64 {
        db.conn
            .query_row("SELECT count(*) FROM messages_fts", [], |r| r.get(0))
            .unwrap()
    }

    fn needle() -> Search {
        Search::terms(vec!["needle".into()], 100)
    }

    #[test]
    fn messages_are_indexed_in_bounded_batches_and_a_search_waits_for_none() {
        let mut db = with_messages(10);
        assert_eq!(indexed(&db), 0);
        assert_eq!(db.index_pending(4).unwrap(), 4);
        assert_eq!(indexed(&db), 4);
        // A search sees every stored message, indexed or not yet.
        assert_eq!(db.search(1, &needle()).unwrap().hits.len(), 10);
        assert_eq!(db.index_pending(4).unwrap(), 0);
    }

    #[test]
    fn what_leaves_the_store_leaves_the_index_even_before_it_was_indexed() {
        let mut db = with_messages(6);
        db.index_pending(3).unwrap();
        db.conn
            .execute("DELETE FROM messages WHERE seq IN (2, 5)", [])
            .unwrap();
        let seqs: Vec<u64> = db
            .search(1, &needle())
            .unwrap()
            .hits
            .iter()
            .map(|(_, m)| m.seq)
            .collect();
        assert_eq!(seqs, [6, 4, 3, 1]);
        // A deleted channel takes its entries along, so a channel that reuses its id starts
        // from nothing.
        db.conn
            .execute("DELETE FROM channels WHERE id = 1", [])
            .unwrap();
        assert_eq!(indexed(&db), 0);
        let progress: i64 = db
            .conn
            .query_row("SELECT count(*) FROM search_progress", [], |r| r.get(0))
            .unwrap();
        assert_eq!(progress, 0);
    }
}
