//! Search on the full-text column (migration V2): among the channels the user may read,
//! newest first.

use tokio_postgres::types::ToSql;

use super::messages::{MESSAGE_COLUMN_COUNT, MESSAGE_COLUMNS, stored_message};
use super::{Db, name_from};
use crate::net::protocol::ProtocolError;
use crate::server::store::{ChannelId, Found, Search, Sender, UserId, as_sql_seq};

impl Db<'_> {
    /// The hits of `search` for `user` (see `Store::search`).
    pub async fn search(self, user: UserId, search: &Search) -> Result<Found, ProtocolError> {
        let channels: Vec<ChannelId> = match &search.channel {
            Some(name) => vec![self.readable_channel(name, user).await?.id],
            None => {
                let rows = self
                    .query(
                        "SELECT channel_id FROM memberships WHERE user_id = $1",
                        &[&user],
                    )
                    .await?;
                rows.iter().map(|r| r.get(0)).collect()
            }
        };
        if channels.is_empty() {
            return Ok(Found::default());
        }
        let (mut sender_id, mut sender_path): (Option<i64>, Option<String>) = (None, None);
        match &search.from {
            None => {}
            Some(Sender::Session(path)) => sender_path = Some(path.to_string()),
            Some(Sender::User(name)) => {
                let row = self
                    .query_opt("SELECT id FROM users WHERE name = $1", &[&name.as_str()])
                    .await?;
                let row = row.ok_or_else(|| {
                    ProtocolError::not_found(format!("there is no user `{name}`"))
                })?;
                sender_id = Some(row.get(0));
            }
        }
        let kind = search.kind.map(|k| k.to_string());
        let before = search
            .before
            .map(|c| (c.ts, c.channel_id, as_sql_seq(c.seq)));
        let (before_ts, before_channel, before_seq) = (
            before.map(|b| b.0),
            before.map(|b| b.1),
            before.map(|b| b.2),
        );
        let fetch = i64::from(search.limit) + 1;
        // Channel by channel, each one's newest hits by seq (its index, newest first, for
        // words many messages hold; the full-text index for rare ones: the planner picks),
        // then the newest of them all.
        let channel_slot: i64 = 0;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &channel_slot,
            &sender_id,
            &sender_path,
            &kind,
            &search.since,
            &search.until,
            &before_ts,
            &before_channel,
            &before_seq,
            &fetch,
        ];
        // Each term a phrase query (a word is a phrase of one), all required.
        let mut query = Vec::with_capacity(search.terms.len());
        for term in &search.terms {
            params.push(term);
            query.push(format!("phraseto_tsquery('simple', ${})", params.len()));
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, c.name, m.channel_id
             FROM messages m JOIN channels c ON c.id = m.channel_id
             WHERE m.channel_id = $1
               AND m.event IS NULL
               AND m.search @@ ({})
               AND ($2::BIGINT IS NULL OR m.sender_id = $2)
               AND ($3::TEXT IS NULL OR m.sender_path = $3)
               AND ($4::TEXT IS NULL OR m.sender_kind = $4)
               AND ($5::BIGINT IS NULL OR m.ts >= $5)
               AND ($6::BIGINT IS NULL OR m.ts < $6)
               AND ($7::BIGINT IS NULL OR (m.ts, m.channel_id, m.seq) < ($7, $8, $9))
             ORDER BY m.seq DESC
             LIMIT $10",
            query.join(" && ")
        );
        let mut rows = Vec::new();
        for channel in &channels {
            params[0] = channel;
            rows.extend(self.query(&sql, &params).await?);
        }
        // After the message's columns: its channel's name, then its id.
        let (name_at, id_at) = (MESSAGE_COLUMN_COUNT, MESSAGE_COLUMN_COUNT + 1);
        let key = |row: &tokio_postgres::Row| -> (i64, i64, i64) {
            (row.get(1), row.get(id_at), row.get(0))
        };
        rows.sort_unstable_by_key(|row| std::cmp::Reverse(key(row)));
        rows.truncate(usize::try_from(fetch).unwrap_or(usize::MAX));
        Found::cut(
            search.limit,
            rows.iter().map(|row| {
                let channel = name_from(row.get(name_at))?;
                Ok((row.get(id_at), stored_message(&channel, row, 0)?))
            }),
        )
    }
}
