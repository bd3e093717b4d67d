//! Channels and who is in them: lookup with the visibility rules, creation under the per-user
//! cap, the paged channel list, joining, and memberships.

use rusqlite::{OptionalExtension, params};

use super::{Db, internal, name_from, visibility_from};
use crate::net::names::Name;
use crate::net::protocol::{ChannelInfo, ProtocolError, Visibility};
use crate::server::store::refusals;
use crate::server::store::{Channel, ChannelId, Joining, NewChannel, UserId, now_ms};

impl Db {
    pub fn channel(&mut self, name: &Name) -> Result<Option<Channel>, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT id, name, visibility, creator_id, last_seq, topic, archived
                 FROM channels WHERE name = ?1",
            )
            .and_then(|mut s| {
                s.query_row([name.as_str()], |r| {
                    Ok((
                        r.get::<_, ChannelId>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                })
                .optional()
            })
            .map_err(internal)?
            .map(|(id, name, vis, creator_id, last_seq, topic, archived)| {
                Ok(Channel {
                    id,
                    name: name_from(name)?,
                    visibility: visibility_from(&vis),
                    creator_id,
                    last_seq: last_seq as u64,
                    topic,
                    archived,
                })
            })
            .transpose()
    }

    pub fn is_member(&mut self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM memberships WHERE channel_id = ?1 AND user_id = ?2)",
            )
            .and_then(|mut s| s.query_row(params![channel, user], |r| r.get(0)))
            .map_err(internal)
    }

    /// The channel, if it exists and `user` may see it. Private channels a user is not in are
    /// reported exactly like missing ones, so their names never leak.
    pub fn visible_channel(&mut self, name: &Name, user: UserId) -> Result<Channel, ProtocolError> {
        let not_found = || ProtocolError::not_found(format!("there is no channel #{name}"));
        let channel = self.channel(name)?.ok_or_else(not_found)?;
        if channel.visibility == Visibility::Private && !self.is_member(channel.id, user)? {
            return Err(not_found());
        }
        Ok(channel)
    }

    /// The channel as its manager sees it: server admins see every channel, private or not;
    /// anyone else what `visible_channel` shows them.
    pub fn managed_channel(
        &mut self,
        name: &Name,
        user: UserId,
        admin: bool,
    ) -> Result<Channel, ProtocolError> {
        if admin {
            return self
                .channel(name)?
                .ok_or_else(|| ProtocolError::not_found(format!("there is no channel #{name}")));
        }
        self.visible_channel(name, user)
    }

    /// Makes a channel with its creator as owner, under the creator's cap.
    /// Opens direct conversation `name` for `opener`, one of its two users (see
    /// `Store::open_direct`).
    pub fn open_direct(
        &mut self,
        name: &Name,
        opener: UserId,
        agent_turns: u32,
    ) -> Result<Option<ChannelInfo>, ProtocolError> {
        let Some((a, b)) = name.direct_users() else {
            return Err(ProtocolError::not_found(format!(
                "there is no channel #{name}"
            )));
        };
        // Most uses find the opener a member already: a read, and nothing written.
        let member: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM memberships m JOIN channels c ON c.id = m.channel_id
                                WHERE c.name = ?1 AND m.user_id = ?2)",
            )
            .and_then(|mut s| s.query_row(params![name.as_str(), opener], |r| r.get(0)))
            .map_err(internal)?;
        if member {
            return Ok(None);
        }
        let tx = self.conn.transaction().map_err(internal)?;
        let found: Vec<(UserId, Name)> = {
            let mut stmt = tx
                .prepare_cached("SELECT id, name FROM users WHERE name IN (?1, ?2)")
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![a.as_str(), b.as_str()], |r| {
                    Ok((r.get::<_, UserId>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(internal)?;
            let mut found = Vec::with_capacity(2);
            for row in rows {
                let (id, user) = row.map_err(internal)?;
                found.push((id, name_from(user)?));
            }
            found
        };
        let pair = refusals::direct_pair(name, opener, &found)?;
        let now = now_ms();
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM channels WHERE name = ?1)",
                [name.as_str()],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if !exists {
            let opened: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM channels
                     WHERE creator_id = ?1 AND instr(name, '+') > 0 AND created_at > ?2",
                    params![opener, now - refusals::HOUR_MS],
                    |r| r.get(0),
                )
                .map_err(internal)?;
            refusals::direct_cap(opened)?;
            tx.execute(
                "INSERT INTO channels (name, visibility, creator_id, created_at, agent_turns)
                 VALUES (?1, 'private', ?2, ?3, ?4)",
                params![name.as_str(), opener, now, agent_turns],
            )
            .map_err(internal)?;
        }
        // Made now: both are members. Used again by one who left: only they come back, so
        // leaving a conversation keeps its other side's messages out.
        let members: &[UserId] = if exists { &[opener] } else { &pair };
        for user in members {
            tx.execute(
                "INSERT OR IGNORE INTO memberships (channel_id, user_id, joined_at, role)
                 SELECT id, ?2, ?3, 'member' FROM channels WHERE name = ?1",
                params![name.as_str(), user, now],
            )
            .map_err(internal)?;
        }
        tx.commit().map_err(internal)?;
        Ok((!exists).then(|| refusals::direct_info(name)))
    }

    pub fn create_channel(&mut self, new: &NewChannel) -> Result<ChannelInfo, ProtocolError> {
        let NewChannel {
            name,
            visibility,
            creator,
            max_per_creator,
            agent_turns,
        } = new;
        let (visibility, creator, agent_turns) = (*visibility, *creator, *agent_turns);
        let tx = self.conn.transaction().map_err(internal)?;
        if let Some(max) = *max_per_creator {
            let made: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM channels WHERE creator_id = ?1 AND instr(name, '+') = 0",
                    [creator],
                    |r| r.get(0),
                )
                .map_err(internal)?;
            refusals::channels_cap(made, max)?;
        }
        let now = now_ms();
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO channels (name, visibility, creator_id, created_at, agent_turns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name.as_str(), visibility.to_string(), creator, now, agent_turns],
            )
            .map_err(internal)?;
        if inserted == 0 {
            // The same words whether or not the caller may see the channel.
            return Err(ProtocolError::conflict(format!(
                "the name #{name} is not available"
            )));
        }
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO memberships (channel_id, user_id, joined_at, role) VALUES (?1, ?2, ?3, 'owner')",
            params![id, creator, now],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(ChannelInfo {
            name: name.clone(),
            visibility,
            member: true,
            last_seq: 0,
            members: 1,
            topic: String::new(),
            archived: false,
        })
    }

    /// One page of the channels `user` may see, by name after `after`; `more` says whether
    /// another page follows.
    pub fn list_channels(
        &mut self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Result<(Vec<ChannelInfo>, bool), ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.name, c.visibility, c.last_seq, m.user_id IS NOT NULL,
                        (SELECT COUNT(*) FROM memberships all_m WHERE all_m.channel_id = c.id),
                        c.topic, c.archived
                 FROM channels c LEFT JOIN memberships m ON m.channel_id = c.id AND m.user_id = ?1
                 WHERE (c.visibility = 'public' OR m.user_id IS NOT NULL) AND c.name > ?2
                 ORDER BY c.name LIMIT ?3",
            )
            .map_err(internal)?;
        let after = after.map(Name::as_str).unwrap_or("");
        let rows = stmt
            .query_map(params![user, after, i64::from(limit) + 1], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(internal)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, vis, last_seq, member, members, topic, archived) = row.map_err(internal)?;
            out.push(ChannelInfo {
                name: name_from(name)?,
                visibility: visibility_from(&vis),
                member,
                last_seq: last_seq as u64,
                members: members as u64,
                topic,
                archived,
            });
        }
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    /// Makes `user` a member (public and unlisted channels admit anyone who is not banned;
    /// private ones only their members, or whoever holds an invite) and reads this handle's
    /// read position.
    pub fn join(
        &mut self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> Result<Joining, ProtocolError> {
        let (channel, invited) = match invite {
            Some(token) => self.redeem_channel_invite(token, name, user)?,
            None => (self.readable_channel(name, user)?, false),
        };
        let new_member = self.insert_member(channel.id, user)? || invited;
        let read_seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM read_positions WHERE user_id = ?1 AND handle = ?2 AND channel_id = ?3")
            .and_then(|mut s| s.query_row(params![user, handle.as_str(), channel.id], |r| r.get(0)).optional())
            .map_err(internal)?;
        Ok(Joining {
            channel,
            new_member,
            read_seq: read_seq.unwrap_or(0) as u64,
        })
    }

    /// Ends a membership (and with it any invites the user made to the channel; an owner
    /// hands the channel on); false if there was none.
    pub fn remove_member(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        self.drop_invites_of(channel, user)?;
        let removed = self
            .conn
            .execute(
                "DELETE FROM memberships WHERE channel_id = ?1 AND user_id = ?2",
                params![channel, user],
            )
            .map_err(internal)?;
        self.hand_on_ownership(channel)?;
        Ok(removed > 0)
    }

    /// Ends `user`'s own membership of a channel they can see; the channel's id.
    pub fn leave(&mut self, name: &Name, user: UserId) -> Result<ChannelId, ProtocolError> {
        let found = self.visible_channel(name, user)?;
        if !self.remove_member(found.id, user)? {
            return Err(ProtocolError::not_found(format!("you are not in #{name}")));
        }
        Ok(found.id)
    }

    pub fn user_id(&mut self, user: &Name) -> Result<UserId, ProtocolError> {
        self.conn
            .prepare_cached("SELECT id FROM users WHERE name = ?1")
            .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)).optional())
            .map_err(internal)?
            .ok_or_else(|| ProtocolError::not_found(format!("there is no user `{user}`")))
    }

    /// Adds a member; false if they were one already.
    pub fn insert_member(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO memberships (channel_id, user_id, joined_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![channel, user, now_ms()]))
            .map(|n| n > 0)
            .map_err(internal)
    }

    /// The member users of a channel `user` may read, by name, at most `limit` of them.
    pub fn members(
        &mut self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> Result<(ChannelId, Vec<Name>), ProtocolError> {
        let found = self.readable_channel(name, user)?;
        Ok((found.id, self.member_names(found.id, limit)?))
    }

    /// The channel's member users by name, at most `limit` of them.
    pub fn member_names(
        &mut self,
        channel: ChannelId,
        limit: usize,
    ) -> Result<Vec<Name>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.name FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = ?1 ORDER BY u.name LIMIT ?2",
            )
            .map_err(internal)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![channel, limit], |r| r.get::<_, String>(0))
            .map_err(internal)?;
        rows.map(|r| name_from(r.map_err(internal)?)).collect()
    }
}
