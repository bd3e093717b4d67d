//! The governing acts as units of work: each looks up where the actor stands, asks
//! `server::rules` whether they may, applies the act and writes the audit log, all in the
//! writer's one transaction, so nothing between the check and the write changes the answer.
//! The rows each act changes are `governance.rs`; who may do what is `server::rules`.

use super::audit::AuditScope;
use super::{Db, name_from};
use crate::net::names::Name;
use crate::net::protocol::{
    AuditEntry, ChannelAct, ChannelDetails, ChannelSetting, ProtocolError, ReplyMode,
    remaining_in_words,
};
use crate::net::protocol::{InviteInfo, MAX_LISTED_INVITES};
use crate::server::rules::{self, Standing};
use crate::server::store::acts::{self, Step, changed};
use crate::server::store::brakes::Brakes;
use crate::server::store::{
    Actor, AuditRecord, Channel, ChannelInvite, Moderated, Moderation, ServerBan, UserId,
};

impl Db<'_> {
    /// The channel as its manager sees it, and where the user stands in it.
    async fn standing_in(
        self,
        channel: &Name,
        user: UserId,
        admin: bool,
    ) -> Result<(Channel, Standing), ProtocolError> {
        let found = self.managed_channel(channel, user, admin).await?;
        let role = self.role(found.id, user).await?;
        Ok((found, Standing { role, admin }))
    }

    /// See `Store::moderate` (the hook is the caller's to run, after the commit). The brakes
    /// forget what a deleted channel, or one that left mention mode, no longer needs.
    pub(super) async fn moderate(
        self,
        m: &Moderation,
        brakes: &mut Brakes,
    ) -> Result<Moderated, ProtocolError> {
        let (user, act) = (m.by.user_id, &m.act);
        let (found, actor) = self.standing_in(&m.channel, user, m.by.admin).await?;
        // Rank first, so nobody without it learns which users exist.
        rules::check(&found.name, actor, act, None, false)?;
        let target = match act.target_user() {
            Some(name) => {
                let target_id = self.user_id(name).await?;
                let standing = Standing {
                    role: self.role(found.id, target_id).await?,
                    admin: m.target_admin,
                };
                Some((name, target_id, standing))
            }
            None => None,
        };
        rules::check(
            &found.name,
            actor,
            act,
            target.map(|(name, _, at)| (name, at)),
            target.is_some_and(|(_, t, _)| t == user),
        )?;
        let target = target.map(|(_, t, _)| t);
        self.apply(
            &found,
            act,
            target,
            (m.reason.as_deref(), &m.by.path.user),
            m.now,
        )
        .await?;
        self.record_audit(&AuditRecord::of_act(m, &found)).await?;
        match act {
            ChannelAct::Delete => brakes.forget(found.id),
            ChannelAct::Set {
                setting: ChannelSetting::ReplyMode { mode },
            } if *mode != ReplyMode::Mention => brakes.leave_mention_mode(found.id),
            _ => {}
        }
        Ok(Moderated {
            channel: found,
            target,
        })
    }

    /// What an act does to the rows, once the rules allowed it (see `store::acts`).
    async fn apply(
        self,
        channel: &Channel,
        act: &ChannelAct,
        target: Option<UserId>,
        (reason, by): (Option<&str>, &Name),
        now: i64,
    ) -> Result<(), ProtocolError> {
        let id = channel.id;
        let target = || target.ok_or_else(|| ProtocolError::internal("the act has no target"));
        match acts::step(&channel.name, act, now) {
            Step::Ban { until } => self.ban(id, target()?, until, reason).await,
            Step::RemoveMember { missing } => {
                changed(self.remove_member(id, target()?).await?, missing)
            }
            Step::Unban { missing } => changed(self.unban(id, target()?).await?, missing),
            Step::Mute { until } => self.mute(id, target()?, until).await,
            Step::Unmute { missing } => changed(self.unmute(id, target()?).await?, missing),
            Step::Role(role) => self.set_role(channel, target()?, role).await,
            Step::Topic(topic) => self.set_topic(id, topic).await,
            Step::Rename(name) => self.rename_channel(id, name).await,
            Step::Archived(archived) => self.set_archived(id, archived).await,
            Step::Delete => self.delete_channel(id).await,
            Step::Set(setting) => self.set_setting(id, setting).await,
            Step::Floor(to) => self.set_floor(id, to).await,
            Step::RevokeInvite { token, missing } => {
                changed(self.revoke_channel_invite(id, token).await?, missing)
            }
            Step::Pin { seq } => self.pin((id, &channel.name), seq, by).await,
            Step::Unpin { seq, missing } => changed(self.unpin(id, seq).await?, missing),
            Step::Nothing => Ok(()),
        }
    }

    /// See `Store::add_member`.
    pub async fn add_member(
        self,
        by: &Actor,
        channel: &Name,
        member: &Name,
        now: i64,
    ) -> Result<(), ProtocolError> {
        let (found, actor) = self.standing_in(channel, by.user_id, by.admin).await?;
        rules::may_add_members(&found.name, actor)?;
        let member_id = self.user_id(member).await?;
        if let Some(ban) = self.ban_of(found.id, member_id, now).await? {
            return Err(ProtocolError::forbidden(format!(
                "{member} is banned from #{channel} {}; unban them first",
                remaining_in_words(ban.until, now)
            )));
        }
        if self.insert_member(found.id, member_id).await? {
            self.record_audit(&AuditRecord {
                channel: Some((found.id, found.name.clone())),
                target: Some(member.to_string()),
                ..AuditRecord::new(by, now, "add-member", format!("added {member}"))
            })
            .await?;
        }
        Ok(())
    }

    /// See `Store::create_invite`.
    pub async fn create_invite(
        self,
        by: &Actor,
        invite: &ChannelInvite,
        now: i64,
    ) -> Result<Name, ProtocolError> {
        let ChannelInvite {
            channel,
            token,
            uses,
            expires_at,
        } = invite;
        let (found, actor) = self.standing_in(channel, by.user_id, by.admin).await?;
        rules::may_invite(&found.name, actor)?;
        self.create_channel_invite(found.id, by.user_id, token, *uses, *expires_at)
            .await?;
        let detail = format!(
            "made an invite for {uses} use(s), valid {}",
            remaining_in_words(*expires_at, now)
        );
        self.record_audit(&AuditRecord {
            channel: Some((found.id, found.name.clone())),
            ..AuditRecord::new(by, now, "invite", detail)
        })
        .await?;
        Ok(found.name)
    }

    /// See `Store::list_invites`.
    pub async fn list_invites(
        self,
        by: &Actor,
        channel: &Name,
        now: i64,
    ) -> Result<Vec<InviteInfo>, ProtocolError> {
        let (found, actor) = self.standing_in(channel, by.user_id, by.admin).await?;
        rules::may_list_invites(&found.name, actor)?;
        let rows = self
            .query(
                "SELECT i.token, u.name, i.uses_left, i.expires_at
                 FROM channel_invites i JOIN users u ON u.id = i.creator_id
                 WHERE i.channel_id = $1 AND i.expires_at > $2 AND i.uses_left > 0
                 ORDER BY i.expires_at DESC, i.token LIMIT $3",
                &[&found.id, &now, &i64::from(MAX_LISTED_INVITES)],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(InviteInfo {
                    token: row.get(0),
                    by: name_from(row.get(1))?,
                    uses_left: u32::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                    expires: row.get(3),
                })
            })
            .collect()
    }

    /// See `Store::ban_user`.
    pub async fn ban_user(
        self,
        by: &Actor,
        target: &Name,
        ban: &ServerBan,
        now: i64,
    ) -> Result<UserId, ProtocolError> {
        let detail = format!("banned {target} {}", remaining_in_words(ban.until, now));
        let target_id = self.user_id(target).await?;
        self.set_server_ban(target_id, Some(ban)).await?;
        self.record_audit(&AuditRecord {
            target: Some(target.to_string()),
            reason: ban.reason.clone(),
            ..AuditRecord::new(by, now, "ban-user", detail)
        })
        .await?;
        Ok(target_id)
    }

    /// See `Store::unban_user`.
    pub async fn unban_user(
        self,
        by: &Actor,
        target: &Name,
        now: i64,
    ) -> Result<(), ProtocolError> {
        let target_id = self.user_id(target).await?;
        if self.server_ban(target_id, now).await?.is_none() {
            return Err(ProtocolError::not_found(format!(
                "{target} is not banned from this server"
            )));
        }
        self.set_server_ban(target_id, None).await?;
        self.record_audit(&AuditRecord {
            target: Some(target.to_string()),
            ..AuditRecord::new(by, now, "unban-user", format!("unbanned {target}"))
        })
        .await
    }

    /// See `Store::audit_page`.
    pub async fn audit_page(
        self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, bool), ProtocolError> {
        let scope = match channel {
            Some(name) => {
                let (found, standing) =
                    self.standing_in(name, reader.user_id, reader.admin).await?;
                rules::may_read_audit(name, standing)?;
                AuditScope::Channel(found.id)
            }
            None if reader.admin => AuditScope::All,
            None => AuditScope::Reader(reader.user_id),
        };
        self.audit_entries(scope, before, limit).await
    }

    /// See `Store::describe_channel`.
    pub async fn describe_channel(
        self,
        name: &Name,
        user: UserId,
    ) -> Result<ChannelDetails, ProtocolError> {
        let found = self.readable_channel(name, user).await?;
        self.channel_details(&found, user).await
    }
}
