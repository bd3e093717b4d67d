//! Channels and who is in them: lookup with the visibility rules, creation under the per-user
//! cap, the paged channel list, joining, and memberships.

use tokio_postgres::Row;

use super::{Db, name_from, visibility_from};
use crate::net::names::Name;
use crate::net::protocol::{ChannelInfo, ProtocolError, Visibility};
use crate::server::store::refusals;
use crate::server::store::{Channel, ChannelId, Joining, NewChannel, UserId, now_ms};

/// The columns `channel_from` reads, in its order.
pub(super) const CHANNEL_COLUMNS: &str =
    "id, name, visibility, creator_id, last_seq, topic, archived";

/// A channel from a row of `CHANNEL_COLUMNS`.
pub(super) fn channel_from(row: &Row) -> Result<Channel, ProtocolError> {
    Ok(Channel {
        id: row.get(0),
        name: name_from(row.get(1))?,
        visibility: visibility_from(row.get(2)),
        creator_id: row.get(3),
        last_seq: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
        topic: row.get(5),
        archived: row.get(6),
    })
}

impl Db<'_> {
    pub async fn channel(self, name: &Name) -> Result<Option<Channel>, ProtocolError> {
        let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE name = $1");
        self.query_opt(&sql, &[&name.as_str()])
            .await?
            .map(|row| channel_from(&row))
            .transpose()
    }

    pub async fn is_member(self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        Ok(self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM memberships WHERE channel_id = $1 AND user_id = $2)",
                &[&channel, &user],
            )
            .await?
            .get(0))
    }

    /// The channel, if it exists and `user` may see it. Private channels a user is not in are
    /// reported exactly like missing ones, so their names never leak.
    pub async fn visible_channel(
        self,
        name: &Name,
        user: UserId,
    ) -> Result<Channel, ProtocolError> {
        let not_found = || ProtocolError::not_found(format!("there is no channel #{name}"));
        let channel = self.channel(name).await?.ok_or_else(not_found)?;
        if channel.visibility == Visibility::Private && !self.is_member(channel.id, user).await? {
            return Err(not_found());
        }
        Ok(channel)
    }

    /// The channel as its manager sees it: server admins see every channel, private or not;
    /// anyone else what `visible_channel` shows them.
    pub async fn managed_channel(
        self,
        name: &Name,
        user: UserId,
        admin: bool,
    ) -> Result<Channel, ProtocolError> {
        if admin {
            return self
                .channel(name)
                .await?
                .ok_or_else(|| ProtocolError::not_found(format!("there is no channel #{name}")));
        }
        self.visible_channel(name, user).await
    }

    /// Makes a channel with its creator as owner, under the creator's cap.
    /// Opens direct conversation `name` for `opener`, one of its two users (see
    /// `Store::open_direct`).
    pub async fn open_direct(
        self,
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
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM memberships m JOIN channels c ON c.id = m.channel_id
                                WHERE c.name = $1 AND m.user_id = $2)",
                &[&name.as_str(), &opener],
            )
            .await?
            .get(0);
        if member {
            return Ok(None);
        }
        let rows = self
            .query(
                "SELECT id, name FROM users WHERE name = ANY($1)",
                &[&vec![a.as_str(), b.as_str()]],
            )
            .await?;
        let mut found = Vec::with_capacity(2);
        for row in rows {
            found.push((row.get::<_, UserId>(0), name_from(row.get(1))?));
        }
        let pair = refusals::direct_pair(name, opener, &found)?;
        let now = now_ms();
        // One opener at a time, so the hourly cap holds against a burst.
        self.lock_user(opener).await?;
        let opened: i64 = self
            .query_one(
                "SELECT COUNT(*) FROM channels
                 WHERE creator_id = $1 AND strpos(name, '+') > 0 AND created_at > $2",
                &[&opener, &(now - refusals::HOUR_MS)],
            )
            .await?
            .get(0);
        let exists: bool = self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM channels WHERE name = $1)",
                &[&name.as_str()],
            )
            .await?
            .get(0);
        if !exists {
            refusals::direct_cap(opened)?;
        }
        let made = !exists
            && self
                .query_opt(
                    "INSERT INTO channels (name, visibility, creator_id, created_at, agent_turns)
                     VALUES ($1, 'private', $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                    &[&name.as_str(), &opener, &now, &i64::from(agent_turns)],
                )
                .await?
                .is_some();
        // Made now: both are members. Used again by one who left: only they come back, so
        // leaving a conversation keeps its other side's messages out.
        let members: Vec<UserId> = if made { pair.to_vec() } else { vec![opener] };
        self.execute(
            "INSERT INTO memberships (channel_id, user_id, joined_at, role)
             SELECT c.id, u, $3, 'member' FROM channels c, UNNEST($2::BIGINT[]) AS u
             WHERE c.name = $1
             ON CONFLICT DO NOTHING",
            &[&name.as_str(), &members, &now],
        )
        .await?;
        Ok(made.then(|| refusals::direct_info(name)))
    }

    pub async fn create_channel(self, new: &NewChannel) -> Result<ChannelInfo, ProtocolError> {
        let NewChannel {
            name,
            visibility,
            creator,
            max_per_creator,
            agent_turns,
        } = new;
        if let Some(max) = *max_per_creator {
            self.lock_user(*creator).await?;
            let made: i64 = self
                .query_one(
                    "SELECT COUNT(*) FROM channels WHERE creator_id = $1 AND strpos(name, '+') = 0",
                    &[creator],
                )
                .await?
                .get(0);
            refusals::channels_cap(made, max)?;
        }
        let now = now_ms();
        let inserted = self
            .query_opt(
                "INSERT INTO channels (name, visibility, creator_id, created_at, agent_turns)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[
                    &name.as_str(),
                    &visibility.to_string(),
                    creator,
                    &now,
                    &i64::from(*agent_turns),
                ],
            )
            .await?;
        let Some(inserted) = inserted else {
            // The same words whether or not the caller may see the channel.
            return Err(ProtocolError::conflict(format!(
                "the name #{name} is not available"
            )));
        };
        let id: ChannelId = inserted.get(0);
        self.execute(
            "INSERT INTO memberships (channel_id, user_id, joined_at, role) VALUES ($1, $2, $3, 'owner')",
            &[&id, creator, &now],
        )
        .await?;
        Ok(ChannelInfo {
            name: name.clone(),
            visibility: *visibility,
            member: true,
            last_seq: 0,
            members: 1,
            topic: String::new(),
            archived: false,
        })
    }

    /// One page of the channels `user` may see, by name after `after`; and whether another
    /// page follows.
    pub async fn list_channels(
        self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Result<(Vec<ChannelInfo>, bool), ProtocolError> {
        let after = after.map(Name::as_str).unwrap_or("");
        let rows = self
            .query(
                "SELECT c.name, c.visibility, c.last_seq, m.user_id IS NOT NULL,
                        (SELECT COUNT(*) FROM memberships all_m WHERE all_m.channel_id = c.id),
                        c.topic, c.archived
                 FROM channels c LEFT JOIN memberships m ON m.channel_id = c.id AND m.user_id = $1
                 WHERE (c.visibility = 'public' OR m.user_id IS NOT NULL) AND c.name > $2
                 ORDER BY c.name LIMIT $3",
                &[&user, &after, &(i64::from(limit) + 1)],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(ChannelInfo {
                name: name_from(row.get(0))?,
                visibility: visibility_from(row.get(1)),
                member: row.get(3),
                last_seq: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                members: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
                topic: row.get(5),
                archived: row.get(6),
            });
        }
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    /// Makes `user` a member (public and unlisted channels admit anyone who is not banned;
    /// private ones only their members, or whoever holds an invite) and reads this handle's
    /// read position.
    pub async fn join(
        self,
        name: &Name,
        user: UserId,
        handle: &Name,
        invite: Option<&str>,
    ) -> Result<Joining, ProtocolError> {
        let (channel, invited) = match invite {
            Some(token) => self.redeem_channel_invite(token, name, user).await?,
            None => (self.readable_channel(name, user).await?, false),
        };
        let new_member = self.insert_member(channel.id, user).await? || invited;
        let read_seq: Option<i64> = self
            .query_opt(
                "SELECT seq FROM read_positions WHERE user_id = $1 AND handle = $2 AND channel_id = $3",
                &[&user, &handle.as_str(), &channel.id],
            )
            .await?
            .map(|r| r.get(0));
        Ok(Joining {
            channel,
            new_member,
            read_seq: u64::try_from(read_seq.unwrap_or(0)).unwrap_or(0),
        })
    }

    /// Ends a membership (and with it any invites the user made to the channel; an owner
    /// hands the channel on); false if there was none.
    pub async fn remove_member(
        self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        self.drop_invites_of(channel, user).await?;
        let removed = self
            .execute(
                "DELETE FROM memberships WHERE channel_id = $1 AND user_id = $2",
                &[&channel, &user],
            )
            .await?;
        self.hand_on_ownership(channel).await?;
        Ok(removed > 0)
    }

    /// Ends `user`'s own membership of a channel they can see; the channel's id.
    pub async fn leave(self, name: &Name, user: UserId) -> Result<ChannelId, ProtocolError> {
        let found = self.visible_channel(name, user).await?;
        if !self.remove_member(found.id, user).await? {
            return Err(ProtocolError::not_found(format!("you are not in #{name}")));
        }
        Ok(found.id)
    }

    pub async fn user_id(self, user: &Name) -> Result<UserId, ProtocolError> {
        self.query_opt("SELECT id FROM users WHERE name = $1", &[&user.as_str()])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| ProtocolError::not_found(format!("there is no user `{user}`")))
    }

    /// Adds a member; false if they were one already.
    pub async fn insert_member(
        self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        let added = self
            .execute(
                "INSERT INTO memberships (channel_id, user_id, joined_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&channel, &user, &now_ms()],
            )
            .await?;
        Ok(added > 0)
    }

    /// The member users of a channel `user` may read, by name, at most `limit` of them.
    pub async fn members(
        self,
        name: &Name,
        user: UserId,
        limit: usize,
    ) -> Result<(ChannelId, Vec<Name>), ProtocolError> {
        let found = self.readable_channel(name, user).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT u.name FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = $1 ORDER BY u.name LIMIT $2",
                &[&found.id, &limit],
            )
            .await?;
        let names = rows
            .into_iter()
            .map(|r| name_from(r.get(0)))
            .collect::<Result<_, _>>()?;
        Ok((found.id, names))
    }
}
