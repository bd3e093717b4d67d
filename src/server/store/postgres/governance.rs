//! Governing a channel, as data: roles, bans and mutes, topic, name, archiving, deletion, the
//! brakes' settings and invite tokens. Who may do each is decided before any of these runs
//! (`moderation.rs` asks `server::rules`); here is only what each does to the rows.

use super::{Db, name_from, narrow};
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

impl Db<'_> {
    /// The user's role in the channel; `None` when not a member.
    pub async fn role(
        self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<Option<Role>, ProtocolError> {
        Ok(self
            .query_opt(
                "SELECT role FROM memberships WHERE channel_id = $1 AND user_id = $2",
                &[&channel, &user],
            )
            .await?
            .map(|r| role_from(r.get(0))))
    }

    /// The user's ban from the channel, if one is in force at `now`.
    pub async fn ban_of(
        self,
        channel: ChannelId,
        user: UserId,
        now: i64,
    ) -> Result<Option<Ban>, ProtocolError> {
        Ok(self
            .query_opt(
                "SELECT until, reason FROM channel_bans
                 WHERE channel_id = $1 AND user_id = $2 AND until > $3",
                &[&channel, &user, &now],
            )
            .await?
            .map(|r| Ban {
                until: r.get(0),
                reason: r.get(1),
            }))
    }

    /// The channel, if `user` may read it: visible to them and not banned from it.
    pub async fn readable_channel(
        self,
        name: &Name,
        user: UserId,
    ) -> Result<Channel, ProtocolError> {
        let channel = self.visible_channel(name, user).await?;
        if let Some(ban) = self.ban_of(channel.id, user, now_ms()).await? {
            return Err(ban.refusal(&channel));
        }
        Ok(channel)
    }

    /// Gives a member a role. Making someone owner hands the channel over: the owner before
    /// becomes a moderator.
    pub async fn set_role(
        self,
        channel: &Channel,
        user: UserId,
        role: Role,
    ) -> Result<(), ProtocolError> {
        if role == Role::Owner {
            self.execute(
                "UPDATE memberships SET role = 'moderator' WHERE channel_id = $1 AND role = 'owner'",
                &[&channel.id],
            )
            .await?;
        }
        let changed = self
            .execute(
                "UPDATE memberships SET role = $1 WHERE channel_id = $2 AND user_id = $3",
                &[&role.to_string(), &channel.id, &user],
            )
            .await?;
        if changed == 0 {
            // The caller's unit rolls back, so a handover to a non-member leaves the owner be.
            return Err(ProtocolError::not_found(format!(
                "that user is not a member of #{}",
                channel.name
            )));
        }
        if role == Role::Member {
            self.drop_invites_of(channel.id, user).await?;
        }
        Ok(())
    }

    /// Invites made by someone who no longer moderates the channel stop working.
    pub async fn drop_invites_of(
        self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "DELETE FROM channel_invites WHERE channel_id = $1 AND creator_id = $2",
            &[&channel, &user],
        )
        .await?;
        Ok(())
    }

    /// When the owner's membership ends, the channel passes to its longest-standing
    /// moderator, or else its longest-standing member, so it always has someone to run it.
    pub(super) async fn hand_on_ownership(self, channel: ChannelId) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE memberships SET role = 'owner'
             WHERE channel_id = $1
               AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.channel_id = $1 AND o.role = 'owner')
               AND user_id = (SELECT user_id FROM memberships WHERE channel_id = $1
                              ORDER BY role = 'moderator' DESC, joined_at, user_id LIMIT 1)",
            &[&channel],
        )
        .await?;
        Ok(())
    }

    /// Bans a user until `until` (replacing any earlier ban) and ends their membership.
    pub async fn ban(
        self,
        channel: ChannelId,
        user: UserId,
        until: i64,
        reason: Option<&str>,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "INSERT INTO channel_bans (channel_id, user_id, until, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason",
            &[&channel, &user, &until, &reason],
        )
        .await?;
        self.remove_member(channel, user).await?;
        Ok(())
    }

    /// Lifts a ban or a mute (`table`); false if there was none in force. An expired one is
    /// not one, and goes either way.
    async fn lift(
        self,
        table: &str,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        let row = self
            .query_one(
                &format!(
                    "WITH gone AS (DELETE FROM {table} WHERE channel_id = $1 AND user_id = $2 RETURNING until)
                     SELECT COALESCE(BOOL_OR(until > $3), FALSE) FROM gone"
                ),
                &[&channel, &user, &now_ms()],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Lifts a ban; false if there was none in force.
    pub async fn unban(self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        self.lift("channel_bans", channel, user).await
    }

    /// Mutes a user until `until`, member or not, replacing any earlier mute.
    pub async fn mute(
        self,
        channel: ChannelId,
        user: UserId,
        until: i64,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "INSERT INTO channel_mutes (channel_id, user_id, until) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET until = excluded.until",
            &[&channel, &user, &until],
        )
        .await?;
        Ok(())
    }

    /// Lifts a mute; false if there was none in force.
    pub async fn unmute(self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        self.lift("channel_mutes", channel, user).await
    }

    pub async fn set_topic(self, channel: ChannelId, topic: &str) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE channels SET topic = $1 WHERE id = $2",
            &[&topic, &channel],
        )
        .await?;
        Ok(())
    }

    /// Renames a channel. Everything hangs off its id, so history and read positions follow.
    pub async fn rename_channel(
        self,
        channel: ChannelId,
        name: &Name,
    ) -> Result<(), ProtocolError> {
        let renamed = self
            .execute(
                "UPDATE channels SET name = $1 WHERE id = $2
                   AND NOT EXISTS (SELECT 1 FROM channels WHERE name = $1)",
                &[&name.as_str(), &channel],
            )
            .await?;
        if renamed == 0 {
            return Err(ProtocolError::conflict(format!(
                "the name #{name} is not available"
            )));
        }
        Ok(())
    }

    pub async fn set_archived(
        self,
        channel: ChannelId,
        archived: bool,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE channels SET archived = $1 WHERE id = $2",
            &[&archived, &channel],
        )
        .await?;
        Ok(())
    }

    /// Deletes a channel with its history, memberships, bans and invites. Its audit entries
    /// stay, detached from the id.
    pub async fn delete_channel(self, channel: ChannelId) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE audit SET channel_id = NULL WHERE channel_id = $1",
            &[&channel],
        )
        .await?;
        self.execute("DELETE FROM channels WHERE id = $1", &[&channel])
            .await?;
        Ok(())
    }

    pub async fn set_setting(
        self,
        channel: ChannelId,
        setting: ChannelSetting,
    ) -> Result<(), ProtocolError> {
        match setting {
            ChannelSetting::AgentTurns { turns } => {
                self.execute(
                    "UPDATE channels SET agent_turns = $1 WHERE id = $2",
                    &[&i64::from(turns), &channel],
                )
                .await?
            }
            ChannelSetting::ReplyMode { mode } => {
                self.execute(
                    "UPDATE channels SET reply_mode = $1 WHERE id = $2",
                    &[&mode.to_string(), &channel],
                )
                .await?
            }
            ChannelSetting::Slow { seconds } => {
                self.execute(
                    "UPDATE channels SET slow_seconds = $1 WHERE id = $2",
                    &[&i64::from(seconds), &channel],
                )
                .await?
            }
        };
        Ok(())
    }

    /// Gives the floor to a handle, user or path, or takes it back.
    pub async fn set_floor(
        self,
        channel: ChannelId,
        to: Option<&str>,
    ) -> Result<(), ProtocolError> {
        self.execute(
            "UPDATE channels SET floor = $1 WHERE id = $2",
            &[&to, &channel],
        )
        .await?;
        Ok(())
    }

    /// Stores an invite token, unless its maker has `MAX_OPEN_CHANNEL_INVITES` open already.
    pub async fn create_channel_invite(
        self,
        channel: ChannelId,
        creator: UserId,
        token: &str,
        uses: u32,
        expires_at: i64,
    ) -> Result<(), ProtocolError> {
        self.lock_user(creator).await?;
        self.execute(
            "DELETE FROM channel_invites WHERE expires_at <= $1 OR uses_left <= 0",
            &[&now_ms()],
        )
        .await?;
        let open: i64 = self
            .query_one(
                "SELECT COUNT(*) FROM channel_invites WHERE creator_id = $1",
                &[&creator],
            )
            .await?
            .get(0);
        refusals::channel_invites_cap(open)?;
        self.execute(
            "INSERT INTO channel_invites (token, channel_id, creator_id, uses_left, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&token, &channel, &creator, &i64::from(uses), &expires_at],
        )
        .await?;
        Ok(())
    }

    /// Spends one use of an invite to `name` and makes `user` a member (true if they were
    /// not one). A banned user is refused before the use is spent.
    pub async fn redeem_channel_invite(
        self,
        token: &str,
        name: &Name,
        user: UserId,
    ) -> Result<(Channel, bool), ProtocolError> {
        let invalid = || refusals::invalid_invite(name);
        let now = now_ms();
        // Locked: two instances redeeming the last use cannot both spend it.
        let channel_id: ChannelId = self
            .query_opt(
                "SELECT i.channel_id FROM channel_invites i JOIN channels c ON c.id = i.channel_id
                 WHERE i.token = $1 AND c.name = $2 AND i.expires_at > $3 AND i.uses_left > 0
                 FOR UPDATE OF i",
                &[&token, &name.as_str(), &now],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or_else(invalid)?;
        let channel = self.channel(name).await?.ok_or_else(invalid)?;
        if let Some(ban) = self.ban_of(channel_id, user, now).await? {
            return Err(refusals::banned_despite_invite(name, ban, now));
        }
        let added = self.insert_member(channel_id, user).await?;
        if added {
            self.execute(
                "UPDATE channel_invites SET uses_left = uses_left - 1 WHERE token = $1",
                &[&token],
            )
            .await?;
        }
        Ok((channel, added))
    }

    /// Revokes an invite of the channel; false if it had none by that token.
    pub async fn revoke_channel_invite(
        self,
        channel: ChannelId,
        token: &str,
    ) -> Result<bool, ProtocolError> {
        let revoked = self
            .execute(
                "DELETE FROM channel_invites WHERE token = $1 AND channel_id = $2",
                &[&token, &channel],
            )
            .await?;
        Ok(revoked > 0)
    }

    /// The channel in full, as `user` sees it.
    pub async fn channel_details(
        self,
        channel: &Channel,
        user: UserId,
    ) -> Result<ChannelDetails, ProtocolError> {
        let row = self
            .query_one(
                "SELECT topic, archived, agent_turns, agent_run, reply_mode, slow_seconds, floor,
                        (SELECT role FROM memberships WHERE channel_id = $1 AND user_id = $2),
                        (SELECT until FROM channel_mutes WHERE channel_id = $1 AND user_id = $2)
                 FROM channels WHERE id = $1",
                &[&channel.id, &user],
            )
            .await?;
        let staff = self
            .query(
                "SELECT u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = $1 AND m.role != 'member' ORDER BY m.role DESC, u.name LIMIT $2",
                &[&channel.id, &(MAX_LISTED_MODERATORS as i64 + 1)],
            )
            .await?;
        let ranked = staff
            .into_iter()
            .map(|r| Ok((name_from(r.get(0))?, role_from(r.get(1)))))
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        let (owner, moderators) = refusals::staff(ranked);
        let role: Option<&str> = row.get(7);
        let muted_until: Option<i64> = row.get(8);
        Ok(ChannelDetails {
            name: channel.name.clone(),
            visibility: channel.visibility,
            topic: row.get(0),
            archived: row.get(1),
            owner,
            moderators,
            role: role.map(role_from),
            muted_until: muted_until.filter(|&t| t > now_ms()),
            agent_turns: narrow(row.get(2)),
            agent_run: narrow(row.get(3)),
            reply_mode: from_name(row.get(4)).unwrap_or(ReplyMode::Open),
            slow_seconds: narrow(row.get(5)),
            floor: row.get(6),
            last_seq: channel.last_seq,
            pins: self.pins(channel.id).await?,
        })
    }
}
