//! Edits, deletes and reactions inside the group commit (see `messages.rs`): reading a
//! target for the rules in `store::changes`, and applying a stored event to it.

use rusqlite::{OptionalExtension, params};

use super::audit::insert_audit;
use super::messages::{message_columns, message_row, stored_message};
use super::{Db, internal};
use crate::net::names::Name;
use crate::net::protocol::{Change, ChatMessage, ProtocolError};
use crate::server::rules::Standing;
use crate::server::store::changes::{self, Changer, Reactions, Target, Verdict};
use crate::server::store::{Append, ChannelId, as_sql_seq};

impl Db {
    /// Reads what an edit, delete or reaction needs of its target and asks the rules.
    pub(super) fn check_change(
        tx: &rusqlite::Connection,
        channel_id: ChannelId,
        a: &Append,
        change: &Change,
        standing: Standing,
    ) -> Result<(Target, Verdict), ProtocolError> {
        let at = as_sql_seq(change.target());
        let target = tx
            .prepare_cached(
                "SELECT sender_id, event IS NOT NULL, deleted, body FROM messages
                 WHERE channel_id = ?1 AND seq = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![channel_id, at], |r| {
                    Ok(Target {
                        sender_id: r.get(0)?,
                        is_event: r.get(1)?,
                        deleted: r.get(2)?,
                        text: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(internal)?;
        let reactions = match change {
            Change::React { .. } => tx
                .prepare_cached(
                    "SELECT (SELECT event_seq FROM reactions
                             WHERE channel_id = ?1 AND seq = ?2 AND reaction = ?3 AND user_id = ?4),
                            (SELECT count(DISTINCT reaction) FROM reactions WHERE channel_id = ?1 AND seq = ?2),
                            EXISTS (SELECT 1 FROM reactions WHERE channel_id = ?1 AND seq = ?2 AND reaction = ?3)",
                )
                .and_then(|mut s| {
                    s.query_row(params![channel_id, at, a.text, a.sender_id], |r| {
                        Ok(Reactions {
                            mine: r.get::<_, Option<i64>>(0)?.and_then(|s| u64::try_from(s).ok()),
                            kinds: usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                            present: r.get(2)?,
                        })
                    })
                })
                .map_err(internal)?,
            _ => Reactions::default(),
        };
        let verdict = changes::check(
            &a.channel,
            change,
            &a.text,
            target.as_ref(),
            Changer {
                user: a.sender_id,
                standing,
                kind: a.kind,
            },
            reactions,
        )?;
        let target = target.ok_or_else(|| ProtocolError::internal("a checked target is gone"))?;
        Ok((target, verdict))
    }

    /// Applies a stored edit, delete or reaction (event `seq`) to its target, and writes the
    /// audit entry an edit or delete leaves.
    pub(super) fn apply_change(
        tx: &rusqlite::Connection,
        (channel_id, channel): (ChannelId, &Name),
        a: &Append,
        change: &Change,
        target: &Target,
        (seq, now): (i64, i64),
    ) -> Result<(), ProtocolError> {
        let at = as_sql_seq(change.target());
        let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(values))
                .map_err(internal)
        };
        match change {
            Change::Edit { .. } => {
                run(
                    "UPDATE messages SET body = ?3, edited_at = ?4 WHERE channel_id = ?1 AND seq = ?2",
                    &[&channel_id, &at, &a.text, &now],
                )?;
            }
            Change::Delete { .. } => {
                run(
                    "UPDATE messages SET body = '', deleted = 1 WHERE channel_id = ?1 AND seq = ?2",
                    &[&channel_id, &at],
                )?;
                // The edits' texts go too; its reactions and pin go with the message.
                run(
                    "UPDATE messages SET body = '' WHERE channel_id = ?1 AND target = ?2 AND event = 'edit'",
                    &[&channel_id, &at],
                )?;
                run(
                    "DELETE FROM reactions WHERE channel_id = ?1 AND seq = ?2",
                    &[&channel_id, &at],
                )?;
                run(
                    "DELETE FROM pins WHERE channel_id = ?1 AND seq = ?2",
                    &[&channel_id, &at],
                )?;
                // The texts its edits replaced leave the audit log with it.
                run(
                    "UPDATE audit SET detail = ?3
                     WHERE channel_id = ?1 AND action = 'edit' AND target = ?2",
                    &[
                        &channel_id,
                        &changes::audit_target(change.target()),
                        &changes::FORGOTTEN,
                    ],
                )?;
            }
            Change::React { removed: false, .. } => {
                run(
                    "INSERT INTO reactions (channel_id, seq, reaction, user_id, user_name, event_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &[&channel_id, &at, &a.text, &a.sender_id, &a.from.user.as_str(), &seq],
                )?;
            }
            Change::React { removed: true, .. } => {
                run(
                    "DELETE FROM reactions
                     WHERE channel_id = ?1 AND seq = ?2 AND reaction = ?3 AND user_id = ?4",
                    &[&channel_id, &at, &a.text, &a.sender_id],
                )?;
            }
        }
        if let Some(record) = changes::audit(
            (channel_id, channel),
            change,
            target,
            (&a.from, a.sender_id),
            now,
        ) {
            insert_audit(tx, &record)?;
        }
        Ok(())
    }

    /// The stored message (or event) `seq` of a channel.
    pub(super) fn message_at(
        tx: &rusqlite::Connection,
        channel: &Name,
        channel_id: ChannelId,
        seq: u64,
    ) -> Result<ChatMessage, ProtocolError> {
        let row = tx
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages m WHERE m.channel_id = ?1 AND m.seq = ?2"
            ))
            .and_then(|mut s| s.query_row(params![channel_id, as_sql_seq(seq)], message_row))
            .map_err(internal)?;
        stored_message(channel, row)
    }
}
