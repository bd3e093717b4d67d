//! Messages: history pages, read positions, retention, and the group commit of appends (seq
//! assignment under the channel row's lock, idempotent client ids, acknowledgements, then the
//! publish hook).

use tokio_postgres::Row;

use super::{Db, Writer, db_error, is_failure, narrow, visibility_from};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{ChatMessage, ProtocolError, ReplyMode, SessionKind, from_name};
use crate::server::store::brakes::{Brakes, Settings};
use crate::server::store::refusals;
use crate::server::store::{
    Append, Appended, Bounds, Channel, ChannelId, GroupOutcome, HistoryRange, Page, Purged, UserId,
    finish_group, now_ms,
};

/// The advisory lock the retention purge runs under, so one instance purges at a time.
const PURGE_LOCK: i64 = 0x636f_6e63_6c61_7602;

/// The columns `stored_message` reads, in its order.
const MESSAGE_COLUMNS: &str = "seq, ts, sender_path, body, sender_kind";

/// A message of `channel` from a row of `MESSAGE_COLUMNS`.
fn stored_message(channel: &Name, row: &Row) -> Result<ChatMessage, ProtocolError> {
    let from: &str = row.get(2);
    let kind: Option<&str> = row.get(4);
    Ok(ChatMessage {
        channel: channel.clone(),
        seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        ts: row.get(1),
        from: SessionPath::parse(from).map_err(|e| ProtocolError::internal(e.to_string()))?,
        from_kind: kind.and_then(from_name),
        text: row.get(3),
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
        } = range.bounds();
        let order = if forward { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE channel_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq {order} LIMIT $4"
        );
        let rows = self
            .query(&sql, &[&channel.id, &after, &before, &fetch])
            .await?;
        Page::cut(
            range,
            rows.iter().map(|row| stored_message(&channel.name, row)),
        )
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

    /// Locks the rows of the channels a group posts to, in name order: two instances' groups
    /// then never wait on each other in a circle.
    async fn lock_channels(self, posts: &[Append]) -> Result<(), ProtocolError> {
        let mut names: Vec<&str> = posts.iter().map(|p| p.channel.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        self.query(
            "SELECT id FROM channels WHERE name = ANY($1) ORDER BY name FOR UPDATE",
            &[&names],
        )
        .await?;
        Ok(())
    }

    /// The checks a send passes, in order: the channel exists and the sender is a member; a
    /// resend of a stored message is answered with it; the channel is not archived and the
    /// sender not muted; an agent is within the brakes. Then the message takes the channel's
    /// next seq (its row is locked by `lock_channels`).
    async fn store_one(
        self,
        brakes: &mut Brakes,
        a: &Append,
        now: i64,
    ) -> Result<Appended, ProtocolError> {
        let row = self
            .query_opt(
                "SELECT c.id, c.visibility, c.archived, c.agent_turns, c.agent_run, c.reply_mode,
                        c.slow_seconds, c.floor,
                        EXISTS(SELECT 1 FROM memberships m WHERE m.channel_id = c.id AND m.user_id = $2),
                        (SELECT until FROM channel_mutes t WHERE t.channel_id = c.id AND t.user_id = $2)
                 FROM channels c WHERE c.name = $1",
                &[&a.channel.as_str(), &a.sender_id],
            )
            .await?;
        let Some(row) = row else {
            return Err(ProtocolError::not_found(format!(
                "there is no channel #{}",
                a.channel
            )));
        };
        let channel_id: ChannelId = row.get(0);
        let visibility = visibility_from(row.get(1));
        let archived: bool = row.get(2);
        let settings = Settings {
            agent_turns: narrow(row.get(3)),
            agent_run: narrow(row.get(4)),
            reply_mode: from_name(row.get(5)).unwrap_or(ReplyMode::Open),
            slow_seconds: narrow(row.get(6)),
            floor: row.get(7),
        };
        let member: bool = row.get(8);
        let muted_until: Option<i64> = row.get(9);
        if !member {
            return Err(refusals::not_a_member(&a.channel, visibility));
        }
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE channel_id = $1 AND sender_id = $2 AND client_id = $3"
        );
        let earlier = self
            .query_opt(&sql, &[&channel_id, &a.sender_id, &a.client_id])
            .await?;
        if let Some(row) = earlier {
            return Ok(Appended {
                channel_id,
                message: stored_message(&a.channel, &row)?,
                duplicate: true,
            });
        }
        refusals::may_post(&a.channel, archived, muted_until, now)?;
        if a.kind == SessionKind::Agent {
            brakes.check((channel_id, &a.channel), &settings, &a.from, now)?;
        }
        // The turn count: agents add one, a person's message starts it again.
        let agent_run = match a.kind {
            SessionKind::Agent => settings.agent_run.saturating_add(1),
            SessionKind::Human => 0,
        };
        let stored = self
            .query_one(
                "WITH next AS (
                     UPDATE channels SET last_seq = last_seq + 1, agent_run = $2
                     WHERE id = $1 RETURNING last_seq
                 )
                 INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind)
                 SELECT $1, next.last_seq, $3, $4, $5, $6, $7, $8 FROM next
                 RETURNING seq",
                &[
                    &channel_id,
                    &i64::from(agent_run),
                    &now,
                    &a.sender_id,
                    &a.from.to_string(),
                    &a.client_id,
                    &a.text,
                    &a.kind.to_string(),
                ],
            )
            .await?;
        let seq = u64::try_from(stored.get::<_, i64>(0)).unwrap_or(0);
        brakes.record(
            channel_id,
            &settings,
            (&a.from, a.kind),
            (seq, &a.text),
            now,
        );
        Ok(Appended {
            channel_id,
            message: ChatMessage {
                channel: a.channel.clone(),
                seq,
                ts: now,
                from: a.from.clone(),
                from_kind: Some(a.kind),
                text: a.text.clone(),
            },
            duplicate: false,
        })
    }
}

impl Writer {
    /// Commits a group of appends in one transaction, then runs each continuation in order,
    /// then publishes what was stored. A failed commit (or a database error in any append)
    /// fails every append in the group: none of them is acknowledged.
    pub(super) async fn commit_appends(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        let outcome = self.store_group(&appends).await;
        finish_group(appends, outcome, &self.publish);
    }

    /// Stores a group in one transaction: each post's outcome, once the commit is done.
    async fn store_group(&mut self, posts: &[Append]) -> GroupOutcome {
        let now = now_ms();
        let mut conn = self.connect().await?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let db = Db::in_tx(&tx);
        db.lock_channels(posts).await?;
        let mut results = Vec::with_capacity(posts.len());
        for post in posts {
            let result = db.store_one(&mut self.brakes, post, now).await;
            if let Err(e) = &result {
                if is_failure(e) {
                    // The transaction is broken: nothing of the group may be acknowledged.
                    return Err(e.clone());
                }
            }
            results.push(result);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }
}
