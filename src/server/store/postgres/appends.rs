//! The group commit of appends: one transaction per group, in a handful of statements however
//! many messages it holds. The group's channels are locked (in name order, so two instances'
//! groups never wait on each other in a circle) and read with their brakes; the senders'
//! memberships and mutes, and the messages their client ids already name, are read in one
//! query each; every check then runs here, in queue order, exactly as on SQLite; the new
//! messages go in with one insert and the channels' `last_seq` (the locked counter each seq
//! comes from) with one update. Nothing another instance does to these channels can come
//! between, so seqs stay gap-free and in commit order.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use super::messages::{MESSAGE_COLUMNS, stored_message};
use super::{Db, Writer, db_error, narrow, visibility_from};
use crate::net::names::Name;
use crate::net::protocol::{
    Change, ChatMessage, ProtocolError, ReplyMode, SessionKind, Visibility, from_name,
};
use crate::server::rules::Standing;
use crate::server::store::brakes::Settings;
use crate::server::store::changes::{self, Verdict};
use crate::server::store::refusals;
use crate::server::store::{
    Append, Appended, ChannelId, GroupOutcome, UserId, as_sql_seq, finish_group, now_ms,
};

/// A channel of the group as it stands while the group is stored.
struct Posting {
    id: ChannelId,
    visibility: Visibility,
    archived: bool,
    /// The brakes' settings, with the turn count as this group leaves it.
    settings: Settings,
    last_seq: i64,
    /// The group changed it (its row is written back).
    changed: bool,
}

/// The rows a group adds, column by column (how one insert takes them all).
#[derive(Default)]
struct NewRows {
    channel_id: Vec<i64>,
    seq: Vec<i64>,
    sender_id: Vec<i64>,
    sender_path: Vec<String>,
    client_id: Vec<String>,
    body: Vec<String>,
    sender_kind: Vec<String>,
    reply_to: Vec<Option<i64>>,
    event: Vec<Option<&'static str>>,
    target: Vec<Option<i64>>,
}

impl Db<'_> {
    /// The group's channels by name, locked until the commit.
    async fn lock_postings(
        self,
        appends: &[Append],
    ) -> Result<HashMap<Name, Posting>, ProtocolError> {
        let mut names: Vec<&str> = appends.iter().map(|a| a.channel.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let rows = self
            .query(
                "SELECT id, name, visibility, last_seq, archived, agent_turns, agent_run, reply_mode,
                        slow_seconds, floor
                 FROM channels WHERE name = ANY($1) ORDER BY name FOR UPDATE",
                &[&names],
            )
            .await?;
        let mut postings = HashMap::with_capacity(rows.len());
        for row in rows {
            let name = super::name_from(row.get(1))?;
            postings.insert(
                name,
                Posting {
                    id: row.get(0),
                    visibility: visibility_from(row.get(2)),
                    last_seq: row.get(3),
                    archived: row.get(4),
                    settings: Settings {
                        agent_turns: narrow(row.get(5)),
                        agent_run: narrow(row.get(6)),
                        reply_mode: from_name(row.get(7)).unwrap_or(ReplyMode::Open),
                        slow_seconds: narrow(row.get(8)),
                        floor: row.get(9),
                    },
                    changed: false,
                },
            );
        }
        Ok(postings)
    }

    /// For each (channel, sender) of the group that is a membership: until when the sender is
    /// muted there, if at all, and their role.
    async fn standings(
        self,
        pairs: &[(ChannelId, UserId)],
    ) -> Result<HashMap<(ChannelId, UserId), (Option<i64>, String)>, ProtocolError> {
        let (channels, users): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
        let rows = self
            .query(
                "SELECT m.channel_id, m.user_id, t.until, m.role
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS k(channel_id, user_id)
                 JOIN memberships m ON m.channel_id = k.channel_id AND m.user_id = k.user_id
                 LEFT JOIN channel_mutes t ON t.channel_id = k.channel_id AND t.user_id = k.user_id",
                &[&channels, &users],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
            .collect())
    }

    /// The messages already stored under the group's (channel, sender, client id) keys.
    /// The live claim's generation of each claimed sender path of the group.
    async fn claims(self, appends: &[Append]) -> Result<HashMap<String, i64>, ProtocolError> {
        let paths: Vec<String> = appends
            .iter()
            .filter(|a| a.claim.is_some())
            .map(|a| a.from.to_string())
            .collect();
        if paths.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .query(
                "SELECT path, generation FROM session_claims WHERE path = ANY($1)",
                &[&paths],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn earlier(
        self,
        keys: &[(ChannelId, UserId, &str)],
        names: &HashMap<ChannelId, Name>,
    ) -> Result<HashMap<(ChannelId, UserId, String), ChatMessage>, ProtocolError> {
        let channels: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let senders: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let client_ids: Vec<&str> = keys.iter().map(|k| k.2).collect();
        let sql = format!(
            "SELECT m.channel_id, m.sender_id, m.client_id, {MESSAGE_COLUMNS}
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k(channel_id, sender_id, client_id)
             JOIN messages m ON m.channel_id = k.channel_id AND m.sender_id = k.sender_id
                            AND m.client_id = k.client_id"
        );
        let rows = self
            .query(&sql, &[&channels, &senders, &client_ids])
            .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let channel: ChannelId = row.get(0);
            let Some(name) = names.get(&channel) else {
                continue;
            };
            let message = stored_message(name, &row, 3)?;
            found.insert((channel, row.get(1), row.get(2)), message);
        }
        Ok(found)
    }

    /// Writes the rows a group has made so far, and forgets them.
    async fn insert_rows(self, rows: &mut NewRows, now: i64) -> Result<(), ProtocolError> {
        if rows.seq.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(rows);
        let new_rows: [&(dyn ToSql + Sync); 11] = [
            &rows.channel_id,
            &rows.seq,
            &rows.sender_id,
            &rows.sender_path,
            &rows.client_id,
            &rows.body,
            &rows.sender_kind,
            &now,
            &rows.reply_to,
            &rows.event,
            &rows.target,
        ];
        self.execute(
            "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind, reply_to, event, target)
             SELECT channel_id, seq, $8, sender_id, sender_path, client_id, body, sender_kind, reply_to, event, target
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                         $6::TEXT[], $7::TEXT[], $9::BIGINT[], $10::TEXT[], $11::BIGINT[])
                  AS r(channel_id, seq, sender_id, sender_path, client_id, body, sender_kind, reply_to, event, target)",
            &new_rows,
        )
        .await?;
        Ok(())
    }

    /// Writes a group's new rows and its channels' counters (sent together).
    async fn write_group(
        self,
        rows: &mut NewRows,
        now: i64,
        postings: &HashMap<Name, Posting>,
    ) -> Result<(), ProtocolError> {
        let changed: Vec<&Posting> = postings.values().filter(|p| p.changed).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = changed.iter().map(|p| p.id).collect();
        let seqs: Vec<i64> = changed.iter().map(|p| p.last_seq).collect();
        let runs: Vec<i64> = changed
            .iter()
            .map(|p| i64::from(p.settings.agent_run))
            .collect();
        let insert = self.insert_rows(rows, now);
        let new_counters: [&(dyn ToSql + Sync); 3] = [&ids, &seqs, &runs];
        let counters = self.execute(
            "UPDATE channels c SET last_seq = u.last_seq, agent_run = u.agent_run
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS u(id, last_seq, agent_run)
             WHERE c.id = u.id",
            &new_counters,
        );
        tokio::try_join!(insert, counters)?;
        Ok(())
    }
}

impl Writer {
    /// Commits a group of appends in one transaction, then runs each continuation in order,
    /// then publishes what was stored. A failed commit (or a database error) fails every
    /// append in the group: none of them is acknowledged.
    pub(super) async fn commit_appends(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        let outcome = self.store_group(&appends).await;
        finish_group(appends, outcome, &self.publish);
    }

    /// A mention made through another instance (or before this one restarted) is in the
    /// database, not in this writer's memory: before an agent is refused in a `mention`
    /// channel, the people's newest messages there since its last post are read for its name.
    async fn recall_mentions(
        &mut self,
        db: Db<'_>,
        appends: &[Append],
        postings: &HashMap<Name, Posting>,
    ) -> Result<(), ProtocolError> {
        for a in appends.iter().filter(|a| a.kind == SessionKind::Agent) {
            let Some(p) = postings.get(&a.channel) else {
                continue;
            };
            if p.settings.reply_mode != ReplyMode::Mention
                || self.brakes.may_answer(p.id, &p.settings, &a.from)
            {
                continue;
            }
            let since = as_sql_seq(self.brakes.posted_seq(p.id, &a.from));
            let rows = db
                .query(
                    "SELECT seq, body FROM messages
                     WHERE channel_id = $1 AND seq > $2 AND sender_kind = 'human'
                       AND strpos(body, '@') > 0
                     ORDER BY seq DESC LIMIT 64",
                    &[&p.id, &since],
                )
                .await?;
            for row in rows.iter().rev() {
                let seq: i64 = row.get(0);
                self.brakes.record_mentions(p.id, narrow(seq), row.get(1));
            }
        }
        Ok(())
    }

    /// Stores a group in one transaction: each append's outcome, once the commit is done. The
    /// checks a send passes, in order: the channel exists and the sender is a member; a resend
    /// of a stored message is answered with it; the channel is not archived and the sender
    /// not muted; an agent is within the brakes.
    async fn store_group(&mut self, appends: &[Append]) -> GroupOutcome {
        let now = now_ms();
        let mut conn = self.connect().await?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let db = Db::in_tx(&tx);
        let mut postings = db.lock_postings(appends).await?;
        let names: HashMap<ChannelId, Name> = postings
            .iter()
            .map(|(name, p)| (p.id, name.clone()))
            .collect();
        let mut pairs = Vec::new();
        let mut keys = Vec::new();
        for a in appends {
            if let Some(p) = postings.get(&a.channel) {
                pairs.push((p.id, a.sender_id));
                keys.push((p.id, a.sender_id, a.client_id.as_str()));
            }
        }
        // Independent reads: sent together, answered in one round trip.
        let (standings, mut earlier, claims) = tokio::try_join!(
            db.standings(&pairs),
            db.earlier(&keys, &names),
            db.claims(appends)
        )?;
        self.recall_mentions(db, appends, &postings).await?;
        let mut rows = NewRows::default();
        let mut results = Vec::with_capacity(appends.len());
        for a in appends {
            let result = async {
                let Some(p) = postings.get_mut(&a.channel) else {
                    return Err(ProtocolError::not_found(format!(
                        "there is no channel #{}",
                        a.channel
                    )));
                };
                let Some((muted_until, role)) = standings.get(&(p.id, a.sender_id)) else {
                    return Err(refusals::not_a_member(&a.channel, p.visibility));
                };
                let key = (p.id, a.sender_id, a.client_id.clone());
                if let Some(message) = earlier.get(&key) {
                    return Ok(Appended {
                        channel_id: p.id,
                        message: ChatMessage {
                            channel: a.channel.clone(),
                            ..message.clone()
                        },
                        duplicate: true,
                    });
                }
                if a.claim.is_some() && claims.get(&a.from.to_string()) != a.claim.as_ref() {
                    return Err(refusals::taken_over(&a.from));
                }
                refusals::may_post(&a.channel, p.archived, *muted_until, now)?;
                refusals::may_reply_to(&a.channel, a.reply_to, p.last_seq)?;
                let target = match &a.change {
                    Some(change) => {
                        // The target may be among this group's rows: they go in first.
                        db.insert_rows(&mut rows, now).await?;
                        let standing = Standing {
                            role: from_name(role),
                            admin: a.admin,
                        };
                        let (target, verdict) = db.check_change(p.id, a, change, standing).await?;
                        if let Verdict::AlreadyReacted(seq) = verdict {
                            return Ok(Appended {
                                channel_id: p.id,
                                message: db.message_at(&a.channel, p.id, seq).await?,
                                duplicate: true,
                            });
                        }
                        Some(target)
                    }
                    None => None,
                };
                // Deletes and reactions are no turns: they neither spend the agents' budget
                // nor wait for slow mode. Edits are, as posts are.
                let turn = changes::is_turn(a.change.as_ref());
                if turn && a.kind == SessionKind::Agent {
                    self.brakes
                        .check((p.id, &a.channel), &p.settings, &a.from, now)?;
                }
                p.last_seq += 1;
                p.changed = true;
                let seq = u64::try_from(p.last_seq).unwrap_or(0);
                if turn {
                    // The turn count: agents add one, a person's message starts it again.
                    p.settings.agent_run = match a.kind {
                        SessionKind::Agent => p.settings.agent_run.saturating_add(1),
                        SessionKind::Human => 0,
                    };
                    self.brakes
                        .record(p.id, &p.settings, (&a.from, a.kind), (seq, &a.text), now);
                }
                let message = ChatMessage {
                    channel: a.channel.clone(),
                    seq,
                    ts: now,
                    from: a.from.clone(),
                    from_kind: Some(a.kind),
                    text: a.text.clone(),
                    reply_to: a.reply_to,
                    change: a.change.clone(),
                    edited: None,
                    deleted: false,
                    reactions: Vec::new(),
                };
                rows.channel_id.push(p.id);
                rows.seq.push(p.last_seq);
                rows.sender_id.push(a.sender_id);
                rows.sender_path.push(a.from.to_string());
                rows.client_id.push(a.client_id.clone());
                rows.body.push(a.text.clone());
                rows.sender_kind.push(a.kind.to_string());
                rows.reply_to.push(a.reply_to.map(as_sql_seq));
                rows.event.push(a.change.as_ref().map(Change::name));
                rows.target
                    .push(a.change.as_ref().map(|c| as_sql_seq(c.target())));
                if let (Some(change), Some(target)) = (&a.change, &target) {
                    db.insert_rows(&mut rows, now).await?;
                    let channel = (p.id, &a.channel);
                    db.apply_change(channel, a, change, target, (p.last_seq, now))
                        .await?;
                }
                earlier.insert(key, message.clone());
                Ok(Appended {
                    channel_id: p.id,
                    message,
                    duplicate: false,
                })
            }
            .await;
            results.push(result);
        }
        db.write_group(&mut rows, now, &postings).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }
}
