//! The requests that govern the room, one named function each: moderation acts, channel
//! invites, channel details, server bans, the user list and the audit log. What an act
//! carries is checked here; who may do it is `server::rules`, asked by the store inside the
//! same unit that applies the act and writes it to the audit log.

use super::*;
use crate::net::protocol::{
    ChannelAct, ChannelSetting, DEFAULT_INVITE_TTL, KickTarget, MAX_AUDIT_PAGE, MAX_INVITE_TTL,
    MAX_INVITE_USES, MAX_REASON_BYTES, MAX_SLOW_SECONDS, MAX_TOPIC_BYTES, ModerationEvent,
    remaining_in_words,
};
use crate::server::hub::RoomEffect;
use crate::server::store::{AuditRecord, ChannelInvite, Moderated, Moderation, ServerBan, until};

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

/// What the room sees of an act once it is done.
fn effect(act: &ChannelAct, target: Option<UserId>) -> RoomEffect {
    match (act, target) {
        (
            ChannelAct::Kick {
                target: KickTarget::Session(path),
                ban_for_ms: None,
            },
            _,
        ) => RoomEffect::RemoveSession(path.clone()),
        (ChannelAct::Kick { .. } | ChannelAct::Ban { .. }, Some(user)) => {
            RoomEffect::RemoveUser(user)
        }
        (ChannelAct::Rename { name }, _) => RoomEffect::Rename(name.clone()),
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
    let target_admin = act.target_user().is_some_and(|u| shared.admins.contains(u));
    let now = now_ms();
    let (hub, by, told) = (shared.hub.clone(), me.path().clone(), act.clone());
    let event_reason = reason.clone();
    let then = Box::new(move |done: &Moderated| {
        if matches!(told, ChannelAct::RevokeInvite { .. }) {
            return;
        }
        let event = ServerFrame::Moderation(ModerationEvent {
            channel: done.channel.name.clone(),
            by,
            act: told.clone(),
            reason: event_reason,
            ts: now,
        });
        hub.moderate(done.channel.id, &event, effect(&told, done.target));
    });
    shared
        .store
        .moderate(Moderation {
            channel,
            by: me.actor(shared),
            act,
            target_admin,
            reason,
            now,
            then,
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
    shared
        .store
        .add_member(&me.actor(shared), &channel, &member, now_ms())
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
    let channel_id = shared.store.leave(&channel, me.user_id).await?;
    shared.hub.remove_user_from_room(channel_id, me.user_id);
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
    let invite = ChannelInvite {
        channel,
        token,
        uses,
        expires_at: now.saturating_add(ttl as i64),
    };
    let channel = shared
        .store
        .create_invite(&me.actor(shared), &invite, now)
        .await?;
    Ok(Some(ServerFrame::ChannelInvite {
        id,
        channel,
        token: invite.token,
        uses,
        expires: invite.expires_at,
    }))
}

/// `ClientFrame::ListInvites`: the channel's open tokens, so a moderator can revoke one made
/// by someone else.
pub(super) async fn list_invites(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    person_only(me)?;
    let invites = shared
        .store
        .list_invites(&me.actor(shared), &channel, now_ms())
        .await?;
    Ok(Some(ServerFrame::Invites {
        id,
        channel,
        invites,
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
    let details = shared.store.describe_channel(&channel, me.user_id).await?;
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
    let target_id = shared
        .store
        .ban_user(&me.actor(shared), &target, &ban, now)
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
    shared
        .store
        .unban_user(&me.actor(shared), &target, now_ms())
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
    let (page, more) = shared.store.list_users(after.as_ref(), limit, now).await?;
    let ids: Vec<UserId> = page.iter().map(|(id, _)| *id).collect();
    let mut online = shared.hub.online_counts(&ids);
    for (user_id, elsewhere) in shared.bus.online_counts(&ids).await {
        *online.entry(user_id).or_default() += elsewhere;
    }
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
    let (entries, more) = shared
        .store
        .audit_page(&me.actor(shared), channel.as_ref(), before, limit)
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
    // An autonomy change belongs to its channel's log too, so its moderators see it.
    let channel = match body {
        RelayBody::SetAutonomy { channel, .. } => shared
            .store
            .visible_channel(channel, me.user_id)
            .await
            .ok()
            .map(|c| (c.id, c.name)),
        _ => None,
    };
    let record = AuditRecord {
        channel,
        target: Some(match to {
            Some(path) => path.to_string(),
            None => format!("{}'s agents", me.path().user),
        }),
        ..AuditRecord::new(&me.actor(shared), now_ms(), action, detail)
    };
    shared.store.record_audit(&record).await
}
