//! Edits, deletes and reactions inside a group commit (see `appends.rs`): reading a target
//! for the rules in `store::changes`, and applying a stored event to it.

use super::Db;
use super::messages::{MESSAGE_COLUMNS, stored_message};
use crate::net::names::Name;
use crate::net::protocol::{Change, ChatMessage, ProtocolError};
use crate::server::rules::Standing;
use crate::server::store::changes::{self, Changer, Reactions, Target, Verdict};
use crate::server::store::{Append, ChannelId, as_sql_seq};

impl Db<'_> {
    /// Reads what an edit, delete or reaction needs of its target and asks the rules.
    pub(super) async fn check_change(
        self,
        channel_id: ChannelId,
        a: &Append,
        change: &Change,
        standing: Standing,
    ) -> Result<(Target, Verdict), ProtocolError> {
        let at = as_sql_seq(change.target());
        let target = self
            .query_opt(
                "SELECT sender_id, event IS NOT NULL, deleted, body FROM messages
                 WHERE channel_id = $1 AND seq = $2",
                &[&channel_id, &at],
            )
            .await?
            .map(|r| Target {
                sender_id: r.get(0),
                is_event: r.get(1),
                deleted: r.get(2),
                text: r.get(3),
            });
        let reactions = match change {
            Change::React { .. } => {
                let r = self
                    .query_one(
                        "SELECT (SELECT event_seq FROM reactions
                                 WHERE channel_id = $1 AND seq = $2 AND reaction = $3 AND user_id = $4),
                                (SELECT count(DISTINCT reaction) FROM reactions
                                 WHERE channel_id = $1 AND seq = $2),
                                EXISTS (SELECT 1 FROM reactions
                                        WHERE channel_id = $1 AND seq = $2 AND reaction = $3)",
                        &[&channel_id, &at, &a.text, &a.sender_id],
                    )
                    .await?;
                Reactions {
                    mine: r
                        .get::<_, Option<i64>>(0)
                        .and_then(|s| u64::try_from(s).ok()),
                    kinds: usize::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    present: r.get(2),
                }
            }
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
    pub(super) async fn apply_change(
        self,
        (channel_id, channel): (ChannelId, &Name),
        a: &Append,
        change: &Change,
        target: &Target,
        (seq, now): (i64, i64),
    ) -> Result<(), ProtocolError> {
        let at = as_sql_seq(change.target());
        match change {
            Change::Edit { .. } => {
                self.execute(
                    "UPDATE messages SET body = $3, edited_at = $4 WHERE channel_id = $1 AND seq = $2",
                    &[&channel_id, &at, &a.text, &now],
                )
                .await?;
            }
            Change::Delete { .. } => {
                self.execute(
                    "UPDATE messages SET body = '', deleted = TRUE WHERE channel_id = $1 AND seq = $2",
                    &[&channel_id, &at],
                )
                .await?;
                // The edits' texts go too; its reactions and pin go with the message.
                self.execute(
                    "UPDATE messages SET body = '' WHERE channel_id = $1 AND target = $2 AND event = 'edit'",
                    &[&channel_id, &at],
                )
                .await?;
                self.execute(
                    "DELETE FROM reactions WHERE channel_id = $1 AND seq = $2",
                    &[&channel_id, &at],
                )
                .await?;
                self.execute(
                    "DELETE FROM pins WHERE channel_id = $1 AND seq = $2",
                    &[&channel_id, &at],
                )
                .await?;
                // The texts its edits replaced leave the audit log with it.
                self.execute(
                    "UPDATE audit SET detail = $3
                     WHERE channel_id = $1 AND action = 'edit' AND target = $2",
                    &[
                        &channel_id,
                        &changes::audit_target(change.target()),
                        &changes::FORGOTTEN,
                    ],
                )
                .await?;
            }
            Change::React { removed: false, .. } => {
                self.execute(
                    "INSERT INTO reactions (channel_id, seq, reaction, user_id, user_name, event_seq)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&channel_id, &at, &a.text, &a.sender_id, &a.from.user.as_str(), &seq],
                )
                .await?;
            }
            Change::React { removed: true, .. } => {
                self.execute(
                    "DELETE FROM reactions
                     WHERE channel_id = $1 AND seq = $2 AND reaction = $3 AND user_id = $4",
                    &[&channel_id, &at, &a.text, &a.sender_id],
                )
                .await?;
            }
        }
        let by = (&a.from, a.sender_id);
        if let Some(record) = changes::audit((channel_id, channel), change, target, by, now) {
            self.record_audit(&record).await?;
        }
        Ok(())
    }

    /// The stored message (or event) `seq` of a channel.
    pub(super) async fn message_at(
        self,
        channel: &Name,
        channel_id: ChannelId,
        seq: u64,
    ) -> Result<ChatMessage, ProtocolError> {
        let row = self
            .query_one(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.channel_id = $1 AND m.seq = $2"),
                &[&channel_id, &as_sql_seq(seq)],
            )
            .await?;
        stored_message(channel, &row, 0)
    }
}
