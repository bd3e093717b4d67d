//! Messages: history pages, read positions, retention, and the group commit of appends (seq
//! assignment, idempotent client ids, acknowledgements, then the publish hook).

use rusqlite::{OptionalExtension, params};

use super::{Db, internal, name_from, visibility_from};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Change, ChatMessage, MAX_REACTION_USERS, ProtocolError, ReplyMode, SessionKind, Visibility,
    from_name,
};
use crate::server::rules::Standing;
use crate::server::store::brakes::{Brakes, Settings};
use crate::server::store::changes::{self, Verdict, reactions_ranked};
use crate::server::store::refusals;
use crate::server::store::{
    Append, Appended, Bounds, Channel, ChannelId, HistoryRange, Page, Purged, UserId, as_sql_seq,
    finish_group, now_ms,
};

impl Db {
    /// A page of history of a channel `user` may read (see `Store::history`).
    pub fn history(
        &mut self,
        name: &Name,
        user: UserId,
        range: HistoryRange,
    ) -> Result<Page, ProtocolError> {
        let found = self.readable_channel(name, user)?;
        self.page_of(&found, range)
    }

    /// A page of the channel's history, oldest first, and whether more messages match. With
    /// `after` the page starts right after it; otherwise it ends right before `before` (or at
    /// the newest). Pages stop at `limit` messages or at `MAX_HISTORY_PAGE_BYTES` of text,
    /// whichever comes first (always at least one message).
    pub fn page_of(
        &mut self,
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
        // A thread (its root and the replies to it) comes off the replies' index.
        let sql = match (forward, thread.is_some()) {
            (true, false) => concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4"
            ),
            (false, false) => concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq DESC LIMIT ?4"
            ),
            (true, true) => concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND (m.seq = ?5 OR m.reply_to = ?5)
                   AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4"
            ),
            (false, true) => concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND (m.seq = ?5 OR m.reply_to = ?5)
                   AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq DESC LIMIT ?4"
            ),
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(internal)?;
        let rows = match thread {
            None => stmt.query_map(params![channel.id, after, before, fetch], message_row),
            Some(root) => {
                stmt.query_map(params![channel.id, after, before, fetch, root], message_row)
            }
        }
        .map_err(internal)?;
        let mut page = Page::cut(
            range,
            rows.map(|row| stored_message(&channel.name, row.map_err(internal)?)),
        )?;
        drop(stmt);
        self.attach_reactions(channel.id, &mut page.messages)?;
        Ok(page)
    }

    /// Puts the reactions in force on a page's messages.
    fn attach_reactions(
        &mut self,
        channel: ChannelId,
        messages: &mut [ChatMessage],
    ) -> Result<(), ProtocolError> {
        let Some((first, last)) = changes::reaction_range(messages) else {
            return Ok(());
        };
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT seq, reaction, user_name, made FROM (",
                reactions_ranked!("?1", "?2", "?3"),
                ") WHERE rank <= ?4 ORDER BY seq, first, rank"
            ))
            .map_err(internal)?;
        let rows = stmt
            .query_map(
                params![
                    channel,
                    as_sql_seq(first),
                    as_sql_seq(last),
                    MAX_REACTION_USERS as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(internal)?;
        let mut found = Vec::new();
        for row in rows {
            let (seq, reaction, user, made) = row.map_err(internal)?;
            let seq = u64::try_from(seq).unwrap_or(0);
            let made = u32::try_from(made).unwrap_or(u32::MAX);
            found.push((seq, reaction, name_from(user)?, made));
        }
        changes::attach_reactions(messages, found);
        Ok(())
    }

    /// Messages after `after` up to `upto` (see `Store::catch_up`).
    pub fn catch_up(
        &mut self,
        channel: ChannelId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, ProtocolError> {
        let name: Option<String> = self
            .conn
            .query_row("SELECT name FROM channels WHERE id = ?1", [channel], |r| {
                r.get(0)
            })
            .optional()
            .map_err(internal)?;
        let Some(name) = name else {
            return Ok(Vec::new());
        };
        let name = name_from(name)?;
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND m.seq > ?2 AND m.seq <= ?3 ORDER BY m.seq ASC LIMIT ?4"
            ))
            .map_err(internal)?;
        let (after, upto) = (as_sql_seq(after), as_sql_seq(upto));
        let rows = stmt
            .query_map(params![channel, after, upto, limit], message_row)
            .map_err(internal)?;
        rows.map(|row| stored_message(&name, row.map_err(internal)?))
            .collect()
    }

    /// The newest seq of each channel that still exists.
    pub fn last_seqs(
        &mut self,
        channels: &[ChannelId],
    ) -> Result<Vec<(ChannelId, u64)>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT last_seq FROM channels WHERE id = ?1")
            .map_err(internal)?;
        let mut found = Vec::with_capacity(channels.len());
        for &id in channels {
            let seq: Option<i64> = stmt
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            if let Some(seq) = seq {
                found.push((id, u64::try_from(seq).unwrap_or(0)));
            }
        }
        Ok(found)
    }

    /// Moves `handle`'s read position in a channel `user` can see forward to `seq`, never past
    /// its newest message.
    pub fn mark_read(
        &mut self,
        user: UserId,
        handle: &Name,
        name: &Name,
        seq: u64,
    ) -> Result<(), ProtocolError> {
        let found = self.visible_channel(name, user)?;
        self.advance_read(user, handle, found.id, seq.min(found.last_seq))
    }

    /// Moves a read position forward (never back).
    pub fn advance_read(
        &mut self,
        user: UserId,
        handle: &Name,
        channel: ChannelId,
        seq: u64,
    ) -> Result<(), ProtocolError> {
        self.conn
            .prepare_cached(
                "INSERT INTO read_positions (user_id, handle, channel_id, seq) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, handle, channel_id) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut s| s.execute(params![user, handle.as_str(), channel, seq as i64]))
            .map_err(internal)?;
        Ok(())
    }

    /// Drops messages and audit entries older than `cutoff_ms`.
    pub fn purge(&mut self, cutoff_ms: i64) -> Result<Purged, ProtocolError> {
        let audit = self.purge_audit_older_than(cutoff_ms)?;
        let messages = self
            .conn
            .execute("DELETE FROM messages WHERE ts < ?1", [cutoff_ms])
            .map_err(internal)?;
        Ok(Purged { messages, audit })
    }

    /// Stores one message inside the caller's transaction, all of it or (on an error) none
    /// of it: a savepoint keeps a failure from leaving a row without its `last_seq`.
    fn append_one(
        tx: &mut rusqlite::Transaction<'_>,
        brakes: &mut Brakes,
        a: &Append,
        now: i64,
    ) -> Result<Appended, ProtocolError> {
        let savepoint = tx.savepoint().map_err(internal)?;
        let appended = Self::store_one(&savepoint, brakes, a, now)?;
        savepoint.commit().map_err(internal)?;
        Ok(appended)
    }

    /// The checks a send passes, in order: the channel exists and the sender is a member; a
    /// resend of a stored message is answered with it; the channel is not archived and the
    /// sender not muted; an agent is within the brakes.
    fn store_one(
        tx: &rusqlite::Connection,
        brakes: &mut Brakes,
        a: &Append,
        now: i64,
    ) -> Result<Appended, ProtocolError> {
        let Some(row) = tx
            .prepare_cached(
                "SELECT id, visibility, last_seq, archived, agent_turns, agent_run, reply_mode,
                        slow_seconds, floor
                 FROM channels WHERE name = ?1",
            )
            .and_then(|mut s| {
                s.query_row([a.channel.as_str()], |r| {
                    Ok(ChannelRow {
                        id: r.get(0)?,
                        visibility: visibility_from(&r.get::<_, String>(1)?),
                        last_seq: r.get(2)?,
                        archived: r.get(3)?,
                        brakes: Settings {
                            agent_turns: r.get(4)?,
                            agent_run: r.get(5)?,
                            reply_mode: from_name(&r.get::<_, String>(6)?)
                                .unwrap_or(ReplyMode::Open),
                            slow_seconds: r.get(7)?,
                            floor: r.get(8)?,
                        },
                    })
                })
                .optional()
            })
            .map_err(internal)?
        else {
            return Err(ProtocolError::not_found(format!(
                "there is no channel #{}",
                a.channel
            )));
        };
        let channel_id = row.id;
        // Whether the sender is a member, until when they are muted, and their role.
        let standing: Option<(Option<i64>, String)> = tx
            .prepare_cached(
                "SELECT (SELECT until FROM channel_mutes t WHERE t.channel_id = m.channel_id AND t.user_id = m.user_id),
                        m.role
                 FROM memberships m WHERE m.channel_id = ?1 AND m.user_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![channel_id, a.sender_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(internal)?;
        let Some((muted_until, role)) = standing else {
            return Err(refusals::not_a_member(&a.channel, row.visibility));
        };
        let earlier: Option<MessageRow> = tx
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m
                 WHERE m.channel_id = ?1 AND m.sender_id = ?2 AND m.client_id = ?3"
            ))
            .and_then(|mut s| {
                s.query_row(params![channel_id, a.sender_id, a.client_id], message_row)
                    .optional()
            })
            .map_err(internal)?;
        if let Some(row) = earlier {
            return Ok(Appended {
                channel_id,
                message: stored_message(&a.channel, row)?,
                duplicate: true,
            });
        }
        refusals::may_post(&a.channel, row.archived, muted_until, now)?;
        refusals::may_reply_to(&a.channel, a.reply_to, row.last_seq)?;
        let target = match &a.change {
            Some(change) => {
                let standing = Standing {
                    role: from_name(&role),
                    admin: a.admin,
                };
                let (target, verdict) = Self::check_change(tx, channel_id, a, change, standing)?;
                if let Verdict::AlreadyReacted(seq) = verdict {
                    return Ok(Appended {
                        channel_id,
                        message: Self::message_at(tx, &a.channel, channel_id, seq)?,
                        duplicate: true,
                    });
                }
                Some(target)
            }
            None => None,
        };
        // Deletes and reactions are no turns: they neither spend the agents' budget nor wait
        // for slow mode. Edits are, as posts are.
        let turn = changes::is_turn(a.change.as_ref());
        if turn && a.kind == SessionKind::Agent {
            brakes.check((channel_id, &a.channel), &row.brakes, &a.from, now)?;
        }
        let seq = row.last_seq + 1;
        tx.prepare_cached(
            "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind, reply_to, event, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .and_then(|mut s| {
            s.execute(params![
                channel_id,
                seq,
                now,
                a.sender_id,
                a.from.to_string(),
                a.client_id,
                a.text,
                a.kind.to_string(),
                a.reply_to.map(as_sql_seq),
                a.change.as_ref().map(Change::name),
                a.change.as_ref().map(|c| as_sql_seq(c.target()))
            ])
        })
        .map_err(internal)?;
        if let (Some(change), Some(target)) = (&a.change, &target) {
            Self::apply_change(tx, (channel_id, &a.channel), a, change, target, (seq, now))?;
        }
        // The turn count: agents add one, a person's message starts it again.
        let agent_run = match (turn, a.kind) {
            (false, _) => row.brakes.agent_run,
            (true, SessionKind::Agent) => row.brakes.agent_run.saturating_add(1),
            (true, SessionKind::Human) => 0,
        };
        tx.prepare_cached("UPDATE channels SET last_seq = ?1, agent_run = ?2 WHERE id = ?3")
            .and_then(|mut s| s.execute(params![seq, agent_run, channel_id]))
            .map_err(internal)?;
        if turn {
            brakes.record(
                channel_id,
                &row.brakes,
                (&a.from, a.kind),
                (seq as u64, &a.text),
                now,
            );
        }
        Ok(Appended {
            channel_id,
            message: ChatMessage {
                channel: a.channel.clone(),
                seq: seq as u64,
                ts: now,
                from: a.from.clone(),
                from_kind: Some(a.kind),
                text: a.text.clone(),
                reply_to: a.reply_to,
                change: a.change.clone(),
                edited: None,
                deleted: false,
                reactions: Vec::new(),
            },
            duplicate: false,
        })
    }

    /// Commits a group of appends in one transaction, then runs each continuation in order.
    /// A failed commit fails every append in the group: none of them is acknowledged.
    pub(super) fn commit_appends(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        let now = now_ms();
        let Self { conn, brakes, .. } = self;
        let outcome = (|| {
            let mut tx = conn.transaction().map_err(internal)?;
            let results: Vec<_> = appends
                .iter()
                .map(|a| Self::append_one(&mut tx, brakes, a, now))
                .collect();
            tx.commit().map_err(internal)?;
            Ok::<_, ProtocolError>(results)
        })();
        finish_group(appends, outcome, &self.publish);
    }
}

/// The columns of `messages m` that `message_row` reads, in its order.
macro_rules! message_columns {
    () => {
        "m.seq, m.ts, m.sender_path, m.body, m.sender_kind, m.reply_to, m.event, m.target, m.edited_at, m.deleted"
    };
}
pub(super) use message_columns;

/// A stored message's columns (see `message_columns`).
pub(super) struct MessageRow {
    pub seq: i64,
    pub ts: i64,
    from: String,
    text: String,
    kind: Option<String>,
    reply_to: Option<i64>,
    event: Option<String>,
    target: Option<i64>,
    edited_at: Option<i64>,
    deleted: bool,
}

/// Reads `MessageRow`'s columns, in its order.
pub(super) fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        seq: r.get(0)?,
        ts: r.get(1)?,
        from: r.get(2)?,
        text: r.get(3)?,
        kind: r.get(4)?,
        reply_to: r.get(5)?,
        event: r.get(6)?,
        target: r.get(7)?,
        edited_at: r.get(8)?,
        deleted: r.get(9)?,
    })
}

/// A message of `channel` as it was stored.
pub(super) fn stored_message(
    channel: &Name,
    row: MessageRow,
) -> Result<ChatMessage, ProtocolError> {
    let seq = |n: i64| u64::try_from(n).ok();
    Ok(ChatMessage {
        channel: channel.clone(),
        seq: seq(row.seq).unwrap_or(0),
        ts: row.ts,
        from: SessionPath::parse(&row.from).map_err(|e| ProtocolError::internal(e.to_string()))?,
        from_kind: row.kind.as_deref().and_then(from_name),
        text: row.text,
        reply_to: row.reply_to.and_then(seq),
        change: row
            .event
            .as_deref()
            .zip(row.target.and_then(seq))
            .and_then(|(event, target)| Change::from_stored(event, target)),
        edited: row.edited_at,
        deleted: row.deleted,
        reactions: Vec::new(),
    })
}

/// What a send needs to know of its channel.
struct ChannelRow {
    id: ChannelId,
    visibility: Visibility,
    last_seq: i64,
    archived: bool,
    brakes: Settings,
}
