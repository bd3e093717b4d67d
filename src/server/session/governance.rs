//! The requests that govern the room, one named function each: moderation acts, channel
//! invites, channel details, server bans, the user list and the audit log. Who may do what
//! is `rules::check`; every act is written to the audit log in the same unit as the act.

use super::*;
use crate::net::protocol::{
    ChannelAct, ChannelSetting, DEFAULT_INVITE_TTL, KickTarget, MAX_AUDIT_PAGE, MAX_INVITE_TTL,
    MAX_INVITE_USES, MAX_REASON_BYTES, MAX_SLOW_SECONDS, MAX_TOPIC_BYTES, ModerationEvent,
    remaining_in_words,
};
use crate::server::hub::RoomEffect;
use crate::server::rules::{self, Standing};
use crate::server::store::{AuditRecord, AuditScope, Channel, Db, ServerBan, until};

/// Most agent turns a channel may allow before waiting for a person (0 is unlimited).
const MAX_AGENT_TURNS: u32 = 10_000;

/// Longest invite token a request may name.
pub(super) const MAX_TOKEN_BYTES: usize = 64;

/// Refuses requests from agent sessions: only people govern.
fn person_only(me: &Me) -> Result<(), ProtocolError> {
    if me.kind == SessionKind::Human {
        return Ok(());
    }
    Err(ProtocolError::forbidden(
        "only a person's session may govern a channel; an agent session cannot, whoever runs it",
    ))
}

/// A person's act that writes to the audit log, within the user's budget of acts.
fn audited_act(shared: &Shared, me: &Me) -> Result<(), ProtocolError> {
    person_only(me)?;
    shared
        .admission
        .spend(me.user_id, me.kind, Spend::Act, Instant::now())
}

/// One line of text, at most `max` bytes.
fn one_line(what: &str, text: &str, max: usize) -> Result<(), ProtocolError> {
    if text.len() > max {
        return Err(ProtocolError::over_limit(what, text.len(), max));
    }
    if text.chars().any(char::is_control) {
        return Err(ProtocolError::invalid(format!("{what} must be one line")));
    }
    Ok(())
}

fn nonzero(span: Option<u64>) -> Result<(), ProtocolError> {
    if span == Some(0) {
        return Err(ProtocolError::invalid("a duration must be at least 1 ms"));
    }
    Ok(())
}

/// Checks what an act carries, before anything is looked up. Floor targets come back in
/// their one spelling (lowercase).
fn checked_act(act: ChannelAct) -> Result<ChannelAct, ProtocolError> {
    match &act {
        ChannelAct::Kick { ban_for_ms, .. } => nonzero(*ban_for_ms)?,
        ChannelAct::Ban { for_ms, .. } | ChannelAct::Mute { for_ms, .. } => nonzero(*for_ms)?,
        ChannelAct::Topic { topic } => one_line("topic", topic, MAX_TOPIC_BYTES)?,
        ChannelAct::Set {
            setting: ChannelSetting::Slow { seconds },
        } if *seconds > MAX_SLOW_SECONDS => {
            return Err(ProtocolError::invalid(format!(
                "slow mode is at most {MAX_SLOW_SECONDS} seconds"
            )));
        }
        ChannelAct::Set {
            setting: ChannelSetting::AgentTurns { turns },
        } if *turns > MAX_AGENT_TURNS => {
            return Err(ProtocolError::invalid(format!(
                "agent turns are at most {MAX_AGENT_TURNS} (0 is unlimited)"
            )));
        }
        ChannelAct::Floor { to: Some(to) } => {
            let target = to.trim_start_matches('@');
            let spelled = match SessionPath::parse(target) {
                Ok(path) => path.to_string(),
                Err(_) => Name::parse("floor holder", target)?.to_string(),
            };
            return Ok(ChannelAct::Floor { to: Some(spelled) });
        }
        ChannelAct::RevokeInvite { token } => one_line("invite token", token, MAX_TOKEN_BYTES)?,
        _ => {}
    }
    Ok(act)
}

/// The channel as its manager sees it, and where the user stands in it.
fn standing_in(
    db: &mut Db,
    channel: &Name,
    user: UserId,
    admin: bool,
) -> Result<(Channel, Standing), ProtocolError> {
    let found = db.managed_channel(channel, user, admin)?;
    let role = db.role(found.id, user)?;
    Ok((found, Standing { role, admin }))
}

/// What an act does to the rows, once the rules allowed it.
fn apply(
    db: &mut Db,
    channel: &Channel,
    act: &ChannelAct,
    target: Option<UserId>,
    reason: Option<&str>,
    now: i64,
) -> Result<(), ProtocolError> {
    let name = &channel.name;
    let target_id = || target.ok_or_else(|| ProtocolError::internal("the act has no target"));
    match act {
        ChannelAct::Kick {
            target: KickTarget::User(user),
            ban_for_ms,
        } => match ban_for_ms {
            Some(ms) => db.ban(channel.id, target_id()?, until(now, Some(*ms)), reason)?,
            None if !db.remove_member(channel.id, target_id()?)? => {
                return Err(ProtocolError::not_found(format!(
                    "{user} is not in #{name}"
                )));
            }
            None => {}
        },
        ChannelAct::Kick {
            target: KickTarget::Session(_),
            ban_for_ms: Some(ms),
        } => db.ban(channel.id, target_id()?, until(now, Some(*ms)), reason)?,
        ChannelAct::Kick { .. } => {}
        ChannelAct::Ban { for_ms, .. } => {
            db.ban(channel.id, target_id()?, until(now, *for_ms), reason)?;
        }
        ChannelAct::Unban { user } => {
            if !db.unban(channel.id, target_id()?)? {
                return Err(ProtocolError::not_found(format!(
                    "{user} is not banned from #{name}"
                )));
            }
        }
        ChannelAct::Mute { for_ms, .. } => {
            db.mute(channel.id, target_id()?, until(now, *for_ms))?
        }
        ChannelAct::Unmute { user } => {
            if !db.unmute(channel.id, target_id()?)? {
                return Err(ProtocolError::not_found(format!(
                    "{user} is not muted in #{name}"
                )));
            }
        }
        ChannelAct::Role { role, .. } => db.set_role(channel, target_id()?, *role)?,
        ChannelAct::Topic { topic } => db.set_topic(channel.id, topic)?,
        ChannelAct::Rename { name: new_name } => db.rename_channel(channel.id, new_name)?,
        ChannelAct::Archive => db.set_archived(channel.id, true)?,
        ChannelAct::Unarchive => db.set_archived(channel.id, false)?,
        ChannelAct::Delete => db.delete_channel(channel.id)?,
        ChannelAct::Set { setting } => db.set_setting(channel.id, *setting)?,
        ChannelAct::Floor { to } => db.set_floor(channel.id, to.as_deref())?,
        ChannelAct::RevokeInvite { token } => {
            if !db.revoke_channel_invite(channel.id, token)? {
                return Err(ProtocolError::not_found(format!(
                    "#{name} has no invite {token}"
                )));
            }
        }
    }
    Ok(())
}

/// What the room sees of an act once it is done.
fn effect(act: &ChannelAct, target: Option<UserId>) -> RoomEffect<'_> {
    match (act, target) {
        (
            ChannelAct::Kick {
                target: KickTarget::Session(path),
                ban_for_ms: None,
            },
            _,
        ) => RoomEffect::RemoveSession(path),
        (ChannelAct::Kick { .. } | ChannelAct::Ban { .. }, Some(user)) => {
            RoomEffect::RemoveUser(user)
        }
        (ChannelAct::Rename { name }, _) => RoomEffect::Rename(name),
        (ChannelAct::Delete, _) => RoomEffect::Close,
        _ => RoomEffect::Nothing,
    }
}

/// `ClientFrame::Moderate`.
pub(super) async fn moderate(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    act: ChannelAct,
    reason: Option<String>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    audited_act(shared, me)?;
    if let Some(reason) = &reason {
        one_line("a reason", reason, MAX_REASON_BYTES)?;
    }
    let act = checked_act(act)?;
    let user = me.user_id;
    let admin = shared.admins.contains(&me.path().user);
    let target_admin = act.target_user().is_some_and(|u| shared.admins.contains(u));
    let now = now_ms();
    let record = AuditRecord {
        ts: now,
        actor_id: user,
        by: me.path().clone(),
        action: act.name().to_owned(),
        channel: None,
        target: match &act {
            ChannelAct::Kick { target, .. } => Some(target.to_string()),
            other => other.target_user().map(Name::to_string),
        },
        detail: act.to_string(),
        reason: reason.clone(),
    };
    let (hub, by) = (shared.hub.clone(), me.path().clone());
    shared
        .store
        .call(move |db| {
            let (found, target) = db.atomically(|db| {
                let (found, actor) = standing_in(db, &channel, user, admin)?;
                // Rank first, so nobody without it learns which users exist.
                rules::check(&found.name, actor, &act, None, false)?;
                let target = match act.target_user() {
                    Some(name) => {
                        let target_id = db.user_id(name)?;
                        let standing = Standing {
                            role: db.role(found.id, target_id)?,
                            admin: target_admin,
                        };
                        Some((name.clone(), target_id, standing))
                    }
                    None => None,
                };
                rules::check(
                    &found.name,
                    actor,
                    &act,
                    target.as_ref().map(|(name, _, at)| (name, *at)),
                    target.as_ref().is_some_and(|(_, t, _)| *t == user),
                )?;
                let target_id = target.map(|(_, t, _)| t);
                apply(db, &found, &act, target_id, reason.as_deref(), now)?;
                db.record_audit(&AuditRecord {
                    channel: Some((found.id, found.name.clone())),
                    ..record
                })?;
                Ok((found, target_id))
            })?;
            // On the store thread, right after the commit: nothing stored later (a message
            // to a new channel that reuses a deleted one's id, say) reaches the room first.
            if !matches!(act, ChannelAct::RevokeInvite { .. }) {
                let event = ServerFrame::Moderation(ModerationEvent {
                    channel: found.name,
                    by,
                    act: act.clone(),
                    reason,
                    ts: now,
                });
                hub.moderate(found.id, &event, effect(&act, target));
            }
            Ok(())
        })
        .await?;
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::AddMember`: moderators bring people in (how private channels fill up).
pub(super) async fn add_member(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    member: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    audited_act(shared, me)?;
    let (user, by, now) = (me.user_id, me.path().clone(), now_ms());
    let admin = shared.admins.contains(&me.path().user);
    shared
        .store
        .call(move |db| {
            db.atomically(|db| {
                let (found, actor) = standing_in(db, &channel, user, admin)?;
                if !rules::may_moderate(actor) {
                    return Err(ProtocolError::forbidden(format!(
                        "only moderators and the owner of #{channel} may add members"
                    )));
                }
                let member_id = db.user_id(&member)?;
                if let Some(ban) = db.ban_of(found.id, member_id, now)? {
                    return Err(ProtocolError::forbidden(format!(
                        "{member} is banned from #{channel} {}; unban them first",
                        remaining_in_words(ban.until, now)
                    )));
                }
                if db.add_member(found.id, member_id)? {
                    db.record_audit(&AuditRecord {
                        ts: now,
                        actor_id: user,
                        by,
                        action: "add-member".into(),
                        channel: Some((found.id, found.name.clone())),
                        target: Some(member.to_string()),
                        detail: format!("added {member}"),
                        reason: None,
                    })?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::RemoveMember`: removing oneself is leaving; removing anyone else is a kick,
/// under the kick's rules.
pub(super) async fn remove_member(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    member: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    if member != me.path().user {
        let kick = ChannelAct::Kick {
            target: KickTarget::User(member),
            ban_for_ms: None,
        };
        return moderate(shared, me, id, channel, kick, None).await;
    }
    let user = me.user_id;
    let channel_id = shared
        .store
        .call(move |db| {
            let found = db.visible_channel(&channel, user)?;
            if !db.remove_member(found.id, user)? {
                return Err(ProtocolError::not_found(format!(
                    "you are not in #{channel}"
                )));
            }
            Ok(found.id)
        })
        .await?;
    shared.hub.remove_user_from_room(channel_id, user);
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::CreateInvite`.
pub(super) async fn create_invite(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    uses: Option<u32>,
    ttl_ms: Option<u64>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    audited_act(shared, me)?;
    let uses = uses.unwrap_or(1);
    if !(1..=MAX_INVITE_USES).contains(&uses) {
        return Err(ProtocolError::invalid(format!(
            "an invite has 1 to {MAX_INVITE_USES} uses"
        )));
    }
    let ttl = ttl_ms.unwrap_or(DEFAULT_INVITE_TTL.as_millis() as u64);
    let max_ttl = MAX_INVITE_TTL.as_millis() as u64;
    if ttl == 0 || ttl > max_ttl {
        return Err(ProtocolError::invalid(format!(
            "an invite lives at most {}",
            crate::net::protocol::duration_in_words(max_ttl)
        )));
    }
    let mut bytes = [0u8; INVITE_CODE_BYTES];
    random_bytes(&mut bytes).map_err(|e| ProtocolError::internal(e.to_string()))?;
    let token = invite_code(&bytes);
    let now = now_ms();
    let expires = now.saturating_add(ttl as i64);
    let (user, admin) = (me.user_id, shared.admins.contains(&me.path().user));
    let (stored, by) = (token.clone(), me.path().clone());
    let channel = shared
        .store
        .call(move |db| {
            db.atomically(|db| {
                let (found, actor) = standing_in(db, &channel, user, admin)?;
                rules::may_invite(&found.name, actor)?;
                db.create_channel_invite(found.id, user, &stored, uses, expires)?;
                db.record_audit(&AuditRecord {
                    ts: now,
                    actor_id: user,
                    by,
                    action: "invite".into(),
                    channel: Some((found.id, found.name.clone())),
                    target: None,
                    detail: format!(
                        "made an invite for {uses} use(s), valid {}",
                        remaining_in_words(expires, now)
                    ),
                    reason: None,
                })?;
                Ok(found.name)
            })
        })
        .await?;
    Ok(Some(ServerFrame::ChannelInvite {
        id,
        channel,
        token,
        uses,
        expires,
    }))
}

/// `ClientFrame::DescribeChannel`: anyone who may read the channel, agents included (their
/// `status` tool shows the brakes).
pub(super) async fn describe_channel(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    let details = shared
        .store
        .call(move |db| {
            let found = db.readable_channel(&channel, user)?;
            db.channel_details(&found, user)
        })
        .await?;
    Ok(Some(ServerFrame::ChannelDetails { id, details }))
}

/// Refuses anyone but a server admin's person.
fn admin_only(shared: &Shared, me: &Me, what: &str) -> Result<(), ProtocolError> {
    person_only(me)?;
    if shared.admins.contains(&me.path().user) {
        return Ok(());
    }
    Err(ProtocolError::forbidden(format!(
        "only a server admin may {what}"
    )))
}

/// `ClientFrame::BanUser`: the user's sessions close now and sign-ins are refused.
pub(super) async fn ban_user(
    shared: &Shared,
    me: &Me,
    id: u64,
    target: Name,
    for_ms: Option<u64>,
    reason: Option<String>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    admin_only(shared, me, "ban users from the server")?;
    audited_act(shared, me)?;
    nonzero(for_ms)?;
    if let Some(reason) = &reason {
        one_line("a reason", reason, MAX_REASON_BYTES)?;
    }
    if shared.admins.contains(&target) {
        return Err(ProtocolError::forbidden(format!(
            "{target} is a server admin; take them off `--admin` first"
        )));
    }
    let now = now_ms();
    let ban = ServerBan {
        until: until(now, for_ms),
        reason: reason.clone(),
    };
    let why = format!(
        "you are banned from this server {}{}",
        remaining_in_words(ban.until, now),
        reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let (actor_id, by) = (me.user_id, me.path().clone());
    let detail = format!("banned {target} {}", remaining_in_words(ban.until, now));
    let target_id = shared
        .store
        .call(move |db| {
            db.atomically(|db| {
                let target_id = db.user_id(&target)?;
                db.set_server_ban(target_id, Some(&ban))?;
                db.record_audit(&AuditRecord {
                    ts: now,
                    actor_id,
                    by,
                    action: "ban-user".into(),
                    channel: None,
                    target: Some(target.to_string()),
                    detail,
                    reason,
                })?;
                Ok(target_id)
            })
        })
        .await?;
    shared.hub.ban_user(target_id, &why);
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::UnbanUser`.
pub(super) async fn unban_user(
    shared: &Shared,
    me: &Me,
    id: u64,
    target: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    admin_only(shared, me, "unban users")?;
    audited_act(shared, me)?;
    let (actor_id, by, now) = (me.user_id, me.path().clone(), now_ms());
    shared
        .store
        .call(move |db| {
            db.atomically(|db| {
                let target_id = db.user_id(&target)?;
                if db.server_ban(target_id, now)?.is_none() {
                    return Err(ProtocolError::not_found(format!(
                        "{target} is not banned from this server"
                    )));
                }
                db.set_server_ban(target_id, None)?;
                db.record_audit(&AuditRecord {
                    ts: now,
                    actor_id,
                    by,
                    action: "unban-user".into(),
                    channel: None,
                    target: Some(target.to_string()),
                    detail: format!("unbanned {target}"),
                    reason: None,
                })
            })
        })
        .await?;
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::ListUsers`.
pub(super) async fn list_users(
    shared: &Shared,
    me: &Me,
    id: u64,
    after: Option<Name>,
    limit: Option<u32>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    admin_only(shared, me, "list users")?;
    let limit = limit.unwrap_or(MAX_AUDIT_PAGE).clamp(1, MAX_AUDIT_PAGE);
    let now = now_ms();
    let (page, more) = shared
        .store
        .call(move |db| db.list_users(after.as_ref(), limit, now))
        .await?;
    let ids: Vec<UserId> = page.iter().map(|(id, _)| *id).collect();
    let online = shared.hub.online_counts(&ids);
    let users = page
        .into_iter()
        .map(|(user_id, mut info)| {
            info.online = online.get(&user_id).copied().unwrap_or(0);
            info.admin = shared.admins.contains(&info.name);
            info
        })
        .collect();
    Ok(Some(ServerFrame::Users { id, users, more }))
}

/// `ClientFrame::Audit`: a channel's log for its moderators, owner and admins; without a
/// channel, everything for an admin and, for anyone else, their own acts and those in the
/// channels they moderate.
pub(super) async fn audit(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Option<Name>,
    before: Option<u64>,
    limit: u32,
) -> Result<Option<ServerFrame>, ProtocolError> {
    person_only(me)?;
    let limit = limit.clamp(1, MAX_AUDIT_PAGE);
    let (user, admin) = (me.user_id, shared.admins.contains(&me.path().user));
    let (entries, more) = shared
        .store
        .call(move |db| {
            let scope = match &channel {
                Some(name) => {
                    let found = db.managed_channel(name, user, admin)?;
                    let role = db.role(found.id, user)?;
                    if !admin && role.is_none_or(|r| r == crate::net::protocol::Role::Member) {
                        return Err(ProtocolError::forbidden(format!(
                            "only moderators and the owner of #{name} may read its audit log"
                        )));
                    }
                    AuditScope::Channel(found.id)
                }
                None if admin => AuditScope::All,
                None => AuditScope::Reader(user),
            };
            db.audit_page(scope, before, limit)
        })
        .await?;
    Ok(Some(ServerFrame::Audit { id, entries, more }))
}

/// Writes a relayed permission verdict or autonomy change to the audit log.
pub(super) async fn audit_relay(
    shared: &Shared,
    me: &Me,
    to: Option<&SessionPath>,
    body: &RelayBody,
) -> Result<(), ProtocolError> {
    let (action, detail) = match body {
        RelayBody::PermissionVerdict { request_id, allow } => (
            "permission-verdict",
            format!(
                "{} permission request {request_id}",
                if *allow { "allowed" } else { "denied" }
            ),
        ),
        RelayBody::SetAutonomy { channel, level } => {
            ("autonomy", format!("set autonomy {level} in #{channel}"))
        }
        _ => return Ok(()),
    };
    let record = AuditRecord {
        ts: now_ms(),
        actor_id: me.user_id,
        by: me.path().clone(),
        action: action.into(),
        channel: None,
        target: Some(match to {
            Some(path) => path.to_string(),
            None => format!("{}'s agents", me.path().user),
        }),
        detail,
        reason: None,
    };
    shared.store.call(move |db| db.record_audit(&record)).await
}
