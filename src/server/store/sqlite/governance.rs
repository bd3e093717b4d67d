//! Governing a channel, as data: roles, bans and mutes, topic, name, archiving, deletion, the
//! brakes' settings and invite tokens. Who may do each is decided before any of these runs
//! (`moderation.rs` asks `server::rules`); here is only what each does to the rows.

use rusqlite::{OptionalExtension, params};

use super::{Db, internal, name_from};
use crate::net::names::Name;
use crate::net::protocol::{
    ChannelDetails, ChannelSetting, MAX_LISTED_MODERATORS, ProtocolError, ReplyMode, Role,
    from_name,
};
use crate::server::store::refusals;
use crate::server::store::{Ban, Channel, ChannelId, UserId, now_ms};

fn role_from(text: &str) -> Role {
    from_name(text).unwrap_or(Role::Member)
}

impl Db {
    /// Runs `f` as one unit: all of its writes or (on an error) none of them.
    pub fn atomically<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, ProtocolError>,
    ) -> Result<R, ProtocolError> {
        self.conn
            .execute_batch("SAVEPOINT atomically")
            .map_err(internal)?;
        match f(self) {
            Ok(value) => {
                self.conn
                    .execute_batch("RELEASE atomically")
                    .map_err(internal)?;
                Ok(value)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO atomically; RELEASE atomically");
                Err(e)
            }
        }
    }

    /// The user's role in the channel; `None` when not a member.
    pub fn role(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<Option<Role>, ProtocolError> {
        self.conn
            .prepare_cached("SELECT role FROM memberships WHERE channel_id = ?1 AND user_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![channel, user], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map(|role| role.as_deref().map(role_from))
            .map_err(internal)
    }

    /// The user's ban from the channel, if one is in force at `now`.
    pub fn ban_of(
        &mut self,
        channel: ChannelId,
        user: UserId,
        now: i64,
    ) -> Result<Option<Ban>, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT until, reason FROM channel_bans
                 WHERE channel_id = ?1 AND user_id = ?2 AND until > ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![channel, user, now], |r| {
                    Ok(Ban {
                        until: r.get(0)?,
                        reason: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(internal)
    }

    /// The channel, if `user` may read it: visible to them and not banned from it.
    pub fn readable_channel(
        &mut self,
        name: &Name,
        user: UserId,
    ) -> Result<Channel, ProtocolError> {
        let channel = self.visible_channel(name, user)?;
        if let Some(ban) = self.ban_of(channel.id, user, now_ms())? {
            return Err(ban.refusal(&channel));
        }
        Ok(channel)
    }

    /// Gives a member a role. Making someone owner hands the channel over: the owner before
    /// becomes a moderator.
    pub fn set_role(
        &mut self,
        channel: &Channel,
        user: UserId,
        role: Role,
    ) -> Result<(), ProtocolError> {
        if role == Role::Owner {
            self.conn
                .execute(
                    "UPDATE memberships SET role = 'moderator' WHERE channel_id = ?1 AND role = 'owner'",
                    [channel.id],
                )
                .map_err(internal)?;
        }
        let changed = self
            .conn
            .execute(
                "UPDATE memberships SET role = ?1 WHERE channel_id = ?2 AND user_id = ?3",
                params![role.to_string(), channel.id, user],
            )
            .map_err(internal)?;
        if changed == 0 {
            // The caller's unit rolls back, so a handover to a non-member leaves the owner be.
            return Err(ProtocolError::not_found(format!(
                "that user is not a member of #{}",
                channel.name
            )));
        }
        if role == Role::Member {
            self.drop_invites_of(channel.id, user)?;
        }
        Ok(())
    }

    /// Invites made by someone who no longer moderates the channel stop working.
    pub fn drop_invites_of(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "DELETE FROM channel_invites WHERE channel_id = ?1 AND creator_id = ?2",
                params![channel, user],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// When the owner's membership ends, the channel passes to its longest-standing
    /// moderator, or else its longest-standing member, so it always has someone to run it.
    pub(super) fn hand_on_ownership(&mut self, channel: ChannelId) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE memberships SET role = 'owner'
                 WHERE channel_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.channel_id = ?1 AND o.role = 'owner')
                   AND user_id = (SELECT user_id FROM memberships WHERE channel_id = ?1
                                  ORDER BY role = 'moderator' DESC, joined_at, user_id LIMIT 1)",
                [channel],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Bans a user until `until` (replacing any earlier ban) and ends their membership.
    pub fn ban(
        &mut self,
        channel: ChannelId,
        user: UserId,
        until: i64,
        reason: Option<&str>,
    ) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "INSERT INTO channel_bans (channel_id, user_id, until, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (channel_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason",
                params![channel, user, until, reason],
            )
            .map_err(internal)?;
        self.remove_member(channel, user)?;
        Ok(())
    }

    /// Lifts a ban; false if there was none in force.
    pub fn unban(&mut self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        let lifted = self
            .conn
            .execute(
                "DELETE FROM channel_bans WHERE channel_id = ?1 AND user_id = ?2 AND until > ?3",
                params![channel, user, now_ms()],
            )
            .map_err(internal)?;
        // An expired ban is not one; clear it either way.
        self.conn
            .execute(
                "DELETE FROM channel_bans WHERE channel_id = ?1 AND user_id = ?2",
                params![channel, user],
            )
            .map_err(internal)?;
        Ok(lifted > 0)
    }

    /// Mutes a user until `until`, member or not, replacing any earlier mute.
    pub fn mute(
        &mut self,
        channel: ChannelId,
        user: UserId,
        until: i64,
    ) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "INSERT INTO channel_mutes (channel_id, user_id, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel_id, user_id) DO UPDATE SET until = excluded.until",
                params![channel, user, until],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Lifts a mute; false if there was none in force.
    pub fn unmute(&mut self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        let lifted = self
            .conn
            .execute(
                "DELETE FROM channel_mutes WHERE channel_id = ?1 AND user_id = ?2 AND until > ?3",
                params![channel, user, now_ms()],
            )
            .map_err(internal)?;
        self.conn
            .execute(
                "DELETE FROM channel_mutes WHERE channel_id = ?1 AND user_id = ?2",
                params![channel, user],
            )
            .map_err(internal)?;
        Ok(lifted > 0)
    }

    pub fn set_topic(&mut self, channel: ChannelId, topic: &str) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE channels SET topic = ?1 WHERE id = ?2",
                params![topic, channel],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Renames a channel. Everything hangs off its id, so history and read positions follow.
    pub fn rename_channel(&mut self, channel: ChannelId, name: &Name) -> Result<(), ProtocolError> {
        let renamed = self
            .conn
            .execute(
                "UPDATE OR IGNORE channels SET name = ?1 WHERE id = ?2",
                params![name.as_str(), channel],
            )
            .map_err(internal)?;
        if renamed == 0 {
            return Err(ProtocolError::conflict(format!(
                "the name #{name} is not available"
            )));
        }
        Ok(())
    }

    pub fn set_archived(
        &mut self,
        channel: ChannelId,
        archived: bool,
    ) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE channels SET archived = ?1 WHERE id = ?2",
                params![archived, channel],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Deletes a channel with its history, memberships, bans and invites. Its audit entries
    /// stay, detached from the id (a later channel may get it).
    pub fn delete_channel(&mut self, channel: ChannelId) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE audit SET channel_id = NULL WHERE channel_id = ?1",
                [channel],
            )
            .map_err(internal)?;
        self.conn
            .execute("DELETE FROM channels WHERE id = ?1", [channel])
            .map_err(internal)?;
        self.brakes.forget(channel);
        Ok(())
    }

    pub fn set_setting(
        &mut self,
        channel: ChannelId,
        setting: ChannelSetting,
    ) -> Result<(), ProtocolError> {
        let done = match setting {
            ChannelSetting::AgentTurns { turns } => self.conn.execute(
                "UPDATE channels SET agent_turns = ?1 WHERE id = ?2",
                params![turns, channel],
            ),
            ChannelSetting::ReplyMode { mode } => {
                if mode != ReplyMode::Mention {
                    self.brakes.leave_mention_mode(channel);
                }
                self.conn.execute(
                    "UPDATE channels SET reply_mode = ?1 WHERE id = ?2",
                    params![mode.to_string(), channel],
                )
            }
            ChannelSetting::Slow { seconds } => self.conn.execute(
                "UPDATE channels SET slow_seconds = ?1 WHERE id = ?2",
                params![seconds, channel],
            ),
        };
        done.map_err(internal)?;
        Ok(())
    }

    /// Gives the floor to a handle, user or path, or takes it back.
    pub fn set_floor(&mut self, channel: ChannelId, to: Option<&str>) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "UPDATE channels SET floor = ?1 WHERE id = ?2",
                params![to, channel],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Stores an invite token, unless its maker has `MAX_OPEN_CHANNEL_INVITES` open already.
    pub fn create_channel_invite(
        &mut self,
        channel: ChannelId,
        creator: UserId,
        token: &str,
        uses: u32,
        expires_at: i64,
    ) -> Result<(), ProtocolError> {
        let now = now_ms();
        self.conn
            .execute(
                "DELETE FROM channel_invites WHERE expires_at <= ?1 OR uses_left <= 0",
                [now],
            )
            .map_err(internal)?;
        let open: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM channel_invites WHERE creator_id = ?1",
                [creator],
                |r| r.get(0),
            )
            .map_err(internal)?;
        refusals::channel_invites_cap(open)?;
        self.conn
            .execute(
                "INSERT INTO channel_invites (token, channel_id, creator_id, uses_left, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token, channel, creator, uses, expires_at],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Spends one use of an invite to `name` and makes `user` a member (true if they were
    /// not one). A banned user is refused before the use is spent.
    pub fn redeem_channel_invite(
        &mut self,
        token: &str,
        name: &Name,
        user: UserId,
    ) -> Result<(Channel, bool), ProtocolError> {
        let invalid = || refusals::invalid_invite(name);
        let now = now_ms();
        let channel_id: ChannelId = self
            .conn
            .query_row(
                "SELECT i.channel_id FROM channel_invites i JOIN channels c ON c.id = i.channel_id
                 WHERE i.token = ?1 AND c.name = ?2 AND i.expires_at > ?3 AND i.uses_left > 0",
                params![token, name.as_str(), now],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?
            .ok_or_else(invalid)?;
        let channel = self.channel(name)?.ok_or_else(invalid)?;
        if let Some(ban) = self.ban_of(channel_id, user, now)? {
            return Err(refusals::banned_despite_invite(name, ban, now));
        }
        let added = self.insert_member(channel_id, user)?;
        if added {
            self.conn
                .execute(
                    "UPDATE channel_invites SET uses_left = uses_left - 1 WHERE token = ?1",
                    [token],
                )
                .map_err(internal)?;
        }
        Ok((channel, added))
    }

    /// Revokes an invite of the channel; false if it had none by that token.
    pub fn revoke_channel_invite(
        &mut self,
        channel: ChannelId,
        token: &str,
    ) -> Result<bool, ProtocolError> {
        self.conn
            .execute(
                "DELETE FROM channel_invites WHERE token = ?1 AND channel_id = ?2",
                params![token, channel],
            )
            .map(|n| n > 0)
            .map_err(internal)
    }

    /// The channel in full, as `user` sees it.
    pub fn channel_details(
        &mut self,
        channel: &Channel,
        user: UserId,
    ) -> Result<ChannelDetails, ProtocolError> {
        let (topic, archived, agent_turns, agent_run, reply_mode, slow_seconds, floor) = self
            .conn
            .prepare_cached(
                "SELECT topic, archived, agent_turns, agent_run, reply_mode, slow_seconds, floor
                 FROM channels WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([channel.id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, u32>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
            })
            .map_err(internal)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = ?1 AND m.role != 'member' ORDER BY m.role DESC, u.name LIMIT ?2",
            )
            .map_err(internal)?;
        let staff = stmt
            .query_map(params![channel.id, MAX_LISTED_MODERATORS as i64 + 1], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(internal)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        drop(stmt);
        let ranked = staff
            .into_iter()
            .map(|(name, role)| Ok((name_from(name)?, role_from(&role))))
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        let (owner, moderators) = refusals::staff(ranked);
        let (role, muted_until) = self
            .conn
            .prepare_cached(
                "SELECT (SELECT role FROM memberships WHERE channel_id = ?1 AND user_id = ?2),
                        (SELECT until FROM channel_mutes WHERE channel_id = ?1 AND user_id = ?2)",
            )
            .and_then(|mut s| {
                s.query_row(params![channel.id, user], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
                })
            })
            .map(|(role, muted)| (role.as_deref().map(role_from), muted))
            .map_err(internal)?;
        Ok(ChannelDetails {
            name: channel.name.clone(),
            visibility: channel.visibility,
            topic,
            archived,
            owner,
            moderators,
            role,
            muted_until: muted_until.filter(|&t| t > now_ms()),
            agent_turns,
            agent_run,
            reply_mode: from_name(&reply_mode).unwrap_or(ReplyMode::Open),
            slow_seconds,
            floor,
            last_seq: channel.last_seq,
            pins: self.pins(channel.id)?,
        })
    }
}
