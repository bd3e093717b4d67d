//! The governing acts as units of work: each looks up where the actor stands, asks
//! `server::rules` whether they may, applies the act and writes the audit log, all in one
//! savepoint, so nothing between the check and the write changes the answer. The rows each
//! act changes are `governance.rs`; who may do what is `server::rules`, never here.

use super::audit::AuditScope;
use super::{Db, internal, name_from};
use crate::net::names::Name;
use crate::net::protocol::{
    AuditEntry, ChannelAct, ChannelDetails, ProtocolError, remaining_in_words,
};
use crate::net::protocol::{InviteInfo, MAX_LISTED_INVITES};
use crate::server::rules::{self, Standing};
use crate::server::store::acts::{self, Step, changed};
use crate::server::store::{
    Actor, AuditRecord, Channel, ChannelInvite, Moderated, Moderation, ServerBan, UserId,
};

impl Db {
    /// The channel as its manager sees it, and where the user stands in it.
    fn standing_in(
        &mut self,
        channel: &Name,
        user: UserId,
        admin: bool,
    ) -> Result<(Channel, Standing), ProtocolError> {
        let found = self.managed_channel(channel, user, admin)?;
        let role = self.role(found.id, user)?;
        Ok((found, Standing { role, admin }))
    }

    /// See `Store::moderate` (`then` is the caller's to run).
    pub fn moderate(&mut self, m: &Moderation) -> Result<Moderated, ProtocolError> {
        let (user, act) = (m.by.user_id, &m.act);
        self.atomically(|db| {
            let (found, actor) = db.standing_in(&m.channel, user, m.by.admin)?;
            // Rank first, so nobody without it learns which users exist.
            rules::check(&found.name, actor, act, None, false)?;
            let target = match act.target_user() {
                Some(name) => {
                    let target_id = db.user_id(name)?;
                    let standing = Standing {
                        role: db.role(found.id, target_id)?,
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
            db.apply(
                &found,
                act,
                target,
                (m.reason.as_deref(), &m.by.path.user),
                m.now,
            )?;
            db.record_audit(&AuditRecord::of_act(m, &found))?;
            Ok(Moderated {
                channel: found,
                target,
            })
        })
    }

    /// What an act does to the rows, once the rules allowed it (see `store::acts`).
    fn apply(
        &mut self,
        channel: &Channel,
        act: &ChannelAct,
        target: Option<UserId>,
        (reason, by): (Option<&str>, &Name),
        now: i64,
    ) -> Result<(), ProtocolError> {
        let id = channel.id;
        let target = || target.ok_or_else(|| ProtocolError::internal("the act has no target"));
        match acts::step(&channel.name, act, now) {
            Step::Ban { until } => self.ban(id, target()?, until, reason),
            Step::RemoveMember { missing } => changed(self.remove_member(id, target()?)?, missing),
            Step::Unban { missing } => changed(self.unban(id, target()?)?, missing),
            Step::Mute { until } => self.mute(id, target()?, until),
            Step::Unmute { missing } => changed(self.unmute(id, target()?)?, missing),
            Step::Role(role) => self.set_role(channel, target()?, role),
            Step::Topic(topic) => self.set_topic(id, topic),
            Step::Rename(name) => self.rename_channel(id, name),
            Step::Archived(archived) => self.set_archived(id, archived),
            Step::Delete => self.delete_channel(id),
            Step::Set(setting) => self.set_setting(id, setting),
            Step::Floor(to) => self.set_floor(id, to),
            Step::RevokeInvite { token, missing } => {
                changed(self.revoke_channel_invite(id, token)?, missing)
            }
            Step::Pin { seq } => self.pin((id, &channel.name), seq, by),
            Step::Unpin { seq, missing } => changed(self.unpin(id, seq)?, missing),
            Step::Nothing => Ok(()),
        }
    }

    /// See `Store::add_member`.
    pub fn add_member(
        &mut self,
        by: &Actor,
        channel: &Name,
        member: &Name,
        now: i64,
    ) -> Result<(), ProtocolError> {
        self.atomically(|db| {
            let (found, actor) = db.standing_in(channel, by.user_id, by.admin)?;
            rules::may_add_members(&found.name, actor)?;
            let member_id = db.user_id(member)?;
            if let Some(ban) = db.ban_of(found.id, member_id, now)? {
                return Err(ProtocolError::forbidden(format!(
                    "{member} is banned from #{channel} {}; unban them first",
                    remaining_in_words(ban.until, now)
                )));
            }
            if db.insert_member(found.id, member_id)? {
                db.record_audit(&AuditRecord {
                    channel: Some((found.id, found.name.clone())),
                    target: Some(member.to_string()),
                    ..AuditRecord::new(by, now, "add-member", format!("added {member}"))
                })?;
            }
            Ok(())
        })
    }

    /// See `Store::create_invite`.
    pub fn create_invite(
        &mut self,
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
        self.atomically(|db| {
            let (found, actor) = db.standing_in(channel, by.user_id, by.admin)?;
            rules::may_invite(&found.name, actor)?;
            db.create_channel_invite(found.id, by.user_id, token, *uses, *expires_at)?;
            let detail = format!(
                "made an invite for {uses} use(s), valid {}",
                remaining_in_words(*expires_at, now)
            );
            db.record_audit(&AuditRecord {
                channel: Some((found.id, found.name.clone())),
                ..AuditRecord::new(by, now, "invite", detail)
            })?;
            Ok(found.name)
        })
    }

    /// See `Store::list_invites`.
    pub fn list_invites(
        &mut self,
        by: &Actor,
        channel: &Name,
        now: i64,
    ) -> Result<Vec<InviteInfo>, ProtocolError> {
        let (found, actor) = self.standing_in(channel, by.user_id, by.admin)?;
        rules::may_list_invites(&found.name, actor)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT i.token, u.name, i.uses_left, i.expires_at
                 FROM channel_invites i JOIN users u ON u.id = i.creator_id
                 WHERE i.channel_id = ?1 AND i.expires_at > ?2 AND i.uses_left > 0
                 ORDER BY i.expires_at DESC, i.token LIMIT ?3",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map(
                rusqlite::params![found.id, now, i64::from(MAX_LISTED_INVITES)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(internal)?;
        rows.map(|row| {
            let (token, by, uses_left, expires) = row.map_err(internal)?;
            Ok(InviteInfo {
                token,
                by: name_from(by)?,
                uses_left,
                expires,
            })
        })
        .collect()
    }

    /// See `Store::ban_user`.
    pub fn ban_user(
        &mut self,
        by: &Actor,
        target: &Name,
        ban: &ServerBan,
        now: i64,
    ) -> Result<UserId, ProtocolError> {
        let detail = format!("banned {target} {}", remaining_in_words(ban.until, now));
        self.atomically(|db| {
            let target_id = db.user_id(target)?;
            db.set_server_ban(target_id, Some(ban))?;
            db.record_audit(&AuditRecord {
                target: Some(target.to_string()),
                reason: ban.reason.clone(),
                ..AuditRecord::new(by, now, "ban-user", detail)
            })?;
            Ok(target_id)
        })
    }

    /// See `Store::unban_user`.
    pub fn unban_user(&mut self, by: &Actor, target: &Name, now: i64) -> Result<(), ProtocolError> {
        self.atomically(|db| {
            let target_id = db.user_id(target)?;
            if db.server_ban(target_id, now)?.is_none() {
                return Err(ProtocolError::not_found(format!(
                    "{target} is not banned from this server"
                )));
            }
            db.set_server_ban(target_id, None)?;
            db.record_audit(&AuditRecord {
                target: Some(target.to_string()),
                ..AuditRecord::new(by, now, "unban-user", format!("unbanned {target}"))
            })
        })
    }

    /// See `Store::audit_page`.
    pub fn audit_page(
        &mut self,
        reader: &Actor,
        channel: Option<&Name>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, bool), ProtocolError> {
        let scope = match channel {
            Some(name) => {
                let (found, standing) = self.standing_in(name, reader.user_id, reader.admin)?;
                rules::may_read_audit(name, standing)?;
                AuditScope::Channel(found.id)
            }
            None if reader.admin => AuditScope::All,
            None => AuditScope::Reader(reader.user_id),
        };
        self.audit_entries(scope, before, limit)
    }

    /// See `Store::describe_channel`.
    pub fn describe_channel(
        &mut self,
        name: &Name,
        user: UserId,
    ) -> Result<ChannelDetails, ProtocolError> {
        let found = self.readable_channel(name, user)?;
        self.channel_details(&found, user)
    }
}
