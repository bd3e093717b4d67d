//! Messages: history pages, read positions and retention (appends are `appends.rs`).

use tokio_postgres::Row;

use super::{Db, name_from, narrow};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Change, ChatMessage, MAX_REACTION_USERS, ProtocolError, from_name};
use crate::server::store::changes;
use crate::server::store::changes::reactions_ranked;
use crate::server::store::{
    Bounds, Channel, ChannelId, HistoryRange, Page, Purged, UserId, as_sql_seq,
};

/// The advisory lock the retention purge runs under, so one instance purges at a time.
const PURGE_LOCK: i64 = 0x636f_6e63_6c61_7602;

/// The columns of `messages m` that `stored_message` reads, in its order.
pub(super) const MESSAGE_COLUMNS: &str = "m.seq, m.ts, m.sender_path, m.body, m.sender_kind, m.reply_to, m.event, m.target, m.edited_at, m.deleted";

/// How many columns `MESSAGE_COLUMNS` names (where the columns after them start).
pub(super) const MESSAGE_COLUMN_COUNT: usize = 10;

/// A message of `channel` from a row with `MESSAGE_COLUMNS` from column `at` on.
pub(super) fn stored_message(
    channel: &Name,
    row: &Row,
    at: usize,
) -> Result<ChatMessage, ProtocolError> {
    let from: &str = row.get(at + 2);
    let kind: Option<&str> = row.get(at + 4);
    let seq = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    let event: Option<&str> = row.get(at + 6);
    Ok(ChatMessage {
        channel: channel.clone(),
        seq: u64::try_from(row.get::<_, i64>(at)).unwrap_or(0),
        ts: row.get(at + 1),
        from: SessionPath::parse(from).map_err(|e| ProtocolError::internal(e.to_string()))?,
        from_kind: kind.and_then(from_name),
        text: row.get(at + 3),
        reply_to: seq(row.get(at + 5)),
        change: event
            .zip(seq(row.get(at + 7)))
            .and_then(|(event, target)| Change::from_stored(event, target)),
        edited: row.get(at + 8),
        deleted: row.get(at + 9),
        reactions: Vec::new(),
    })
}

impl Db<'_> {
    /// A page of history of a channel `user` may read (see `Store::history`).
    pub async fn history(
        self,
        name: &Name,
        user: UserId,
        range: HistoryRange,
    ) -> Result<Page, ProtocolError> {
        let found = self.readable_channel(name, user).await?;
        self.page_of(&found, range).await
    }

    /// A page of the channel's history, oldest first, and whether more messages match (see
    /// `Store::history`).
    pub async fn page_of(
        self,
        channel: &Channel,
        range: HistoryRange,
    ) -> Result<Page, ProtocolError> {
        let Bounds {
            forward,
            after,
            before,
            fetch,
            thread,
        } = range.bounds();
        let order = if forward { "ASC" } else { "DESC" };
        let rows = match thread {
            None => {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m
                     WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq < $3
                     ORDER BY m.seq {order} LIMIT $4"
                );
                self.query(&sql, &[&channel.id, &after, &before, &fetch])
                    .await?
            }
            // A thread (its root and the replies to it) comes off the replies' index.
            Some(root) => {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m
                     WHERE m.channel_id = $1 AND (m.seq = $5 OR m.reply_to = $5)
                       AND m.seq > $2 AND m.seq < $3
                     ORDER BY m.seq {order} LIMIT $4"
                );
                self.query(&sql, &[&channel.id, &after, &before, &fetch, &root])
                    .await?
            }
        };
        let mut page = Page::cut(
            range,
            rows.iter().map(|row| stored_message(&channel.name, row, 0)),
        )?;
        self.attach_reactions(channel.id, &mut page.messages)
            .await?;
        Ok(page)
    }

    /// Puts the reactions in force on a page's messages.
    async fn attach_reactions(
        self,
        channel: ChannelId,
        messages: &mut [ChatMessage],
    ) -> Result<(), ProtocolError> {
        let Some((first, last)) = changes::reaction_range(messages) else {
            return Ok(());
        };
        let rows = self
            .query(
                concat!(
                    "SELECT seq, reaction, user_name, made FROM (",
                    reactions_ranked!("$1", "$2", "$3"),
                    ") AS r WHERE rank <= $4 ORDER BY seq, first, rank"
                ),
                &[
                    &channel,
                    &as_sql_seq(first),
                    &as_sql_seq(last),
                    &(MAX_REACTION_USERS as i64),
                ],
            )
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let made = u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX);
            found.push((seq, row.get(1), name_from(row.get(2))?, made));
        }
        changes::attach_reactions(messages, found);
        Ok(())
    }

    /// Messages after `after` up to `upto` (see `Store::catch_up`).
    pub async fn catch_up(
        self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, ProtocolError> {
        let Some(row) = self
            .query_opt("SELECT name FROM channels WHERE id = $1", &[&channel])
            .await?
        else {
            return Ok(Vec::new());
        };
        let name = name_from(row.get(0))?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq ASC LIMIT $4"
        );
        let (after, upto) = (as_sql_seq(after), as_sql_seq(upto));
        let rows = self
            .query(&sql, &[&channel, &after, &upto, &i64::from(limit)])
            .await?;
        rows.iter()
            .map(|row| stored_message(&name, row, 0))
            .collect()
    }

    /// The newest seq of each channel that still exists.
    pub async fn last_seqs(
        self,
        channels: &[ChannelId],
    ) -> Result<Vec<(ChannelId, u64)>, ProtocolError> {
        let rows = self
            .query(
                "SELECT id, last_seq FROM channels WHERE id = ANY($1)",
                &[&channels],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let seq: i64 = row.get(1);
                (row.get(0), u64::try_from(seq).unwrap_or(0))
            })
            .collect())
    }

    /// Moves `handle`'s read position in a channel `user` can see forward to `seq`, never past
    /// its newest message.
    pub async fn mark_read(
        self,
        user: UserId,
        handle: &Name,
        name: &Name,
        seq: u64,
    ) -> Result<(), ProtocolError> {
        let found = self.visible_channel(name, user).await?;
        let seq = i64::try_from(seq.min(found.last_seq)).unwrap_or(i64::MAX);
        self.execute(
            "INSERT INTO read_positions (user_id, handle, channel_id, seq) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, handle, channel_id)
             DO UPDATE SET seq = GREATEST(read_positions.seq, excluded.seq)",
            &[&user, &handle.as_str(), &found.id, &seq],
        )
        .await?;
        Ok(())
    }

    /// Drops messages and audit entries older than `cutoff_ms`, under the purge lock: with
    /// `wait` after whoever holds it, otherwise not at all when another instance is purging.
    pub async fn purge(self, cutoff_ms: i64, wait: bool) -> Result<Purged, ProtocolError> {
        if wait {
            self.execute("SELECT pg_advisory_xact_lock($1)", &[&PURGE_LOCK])
                .await?;
        } else {
            let got: bool = self
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK])
                .await?
                .get(0);
            if !got {
                return Ok(Purged::default());
            }
        }
        let audit = self
            .execute("DELETE FROM audit WHERE ts < $1", &[&cutoff_ms])
            .await?;
        let messages = self
            .execute("DELETE FROM messages WHERE ts < $1", &[&cutoff_ms])
            .await?;
        Ok(Purged {
            messages: narrow(i64::try_from(messages).unwrap_or(i64::MAX)),
            audit: narrow(i64::try_from(audit).unwrap_or(i64::MAX)),
        })
    }
}
