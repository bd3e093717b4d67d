//! The checks every backend makes the same way once it has read the rows, and the words of
//! their refusals: caps, the human key's rules, who may post, who runs a channel. A backend
//! reads what a check needs and asks here, so the two never word a refusal differently.

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    ChannelInfo, MAX_LISTED_MODERATORS, ProtocolError, Role, Visibility, remaining_in_words,
};

use super::{
    Ban, ENROLL_WINDOW_MS, MAX_MACHINES, MAX_OPEN_CHANNEL_INVITES, MAX_OPEN_MACHINE_INVITES, UserId,
};

/// Refuses another machine to a user who has `machines` of them.
pub fn machines_cap(machines: i64) -> Result<(), ProtocolError> {
    if machines >= MAX_MACHINES {
        return Err(ProtocolError::rate_limited(format!(
            "you have {machines} machines, the most one user may; remove one first"
        )));
    }
    Ok(())
}

/// Refuses another machine invite to a user who has `open` of them.
pub fn machine_invites_cap(open: i64) -> Result<(), ProtocolError> {
    if open >= MAX_OPEN_MACHINE_INVITES {
        return Err(ProtocolError::rate_limited(format!(
            "you have {open} machine invites open, the most allowed; use one or wait for them to expire"
        )));
    }
    Ok(())
}

/// Refuses another channel invite to a user who has `open` of them.
pub fn channel_invites_cap(open: i64) -> Result<(), ProtocolError> {
    if open >= MAX_OPEN_CHANNEL_INVITES {
        return Err(ProtocolError::rate_limited(format!(
            "you have {open} open invites, the most one user may; wait for some to expire"
        )));
    }
    Ok(())
}

/// Refuses another channel to a creator who has `made` of them, at most `max`.
pub fn channels_cap(made: i64, max: usize) -> Result<(), ProtocolError> {
    if usize::try_from(made).unwrap_or(usize::MAX) >= max {
        return Err(ProtocolError::rate_limited(format!(
            "you have created {made} channels, the most one user may; ask a server admin"
        )));
    }
    Ok(())
}

/// Whether a user with `count` machines may remove `machine` (`exists`: it is one of them).
/// The last one cannot go: the account would be unreachable.
pub fn may_remove_machine(machine: &Name, exists: bool, count: i64) -> Result<(), ProtocolError> {
    if !exists {
        return Err(ProtocolError::not_found(format!(
            "you have no machine named `{machine}`"
        )));
    }
    if count <= 1 {
        return Err(ProtocolError::forbidden(
            "this is your only machine; add another before removing it",
        ));
    }
    Ok(())
}

/// The refusal of an invite token to `channel` that is unknown, used up, expired or revoked.
pub fn invalid_invite(channel: &Name) -> ProtocolError {
    ProtocolError::forbidden(format!(
        "that invite to #{channel} is not valid: it expired, was used up or was revoked"
    ))
}

/// The refusal of an invite's holder who is banned from the channel (the invite shows the
/// channel exists, so even a private one is named).
pub fn banned_despite_invite(channel: &Name, ban: Ban, now: i64) -> ProtocolError {
    let why = ban.reason.map(|r| format!(": {r}")).unwrap_or_default();
    ProtocolError::forbidden(format!(
        "you are banned from #{channel} {}{why}",
        remaining_in_words(ban.until, now)
    ))
}

/// Whether a session signed in with `signer_key` may give a machine (whose human key is
/// `current`, enrolled at `enrolled_at`) a human key. Only that very human key replaces one. A
/// machine's first may come from its machine key while the account has no human key yet, or
/// within `ENROLL_WINDOW_MS` of the machine's enrollment (which, once the account uses human
/// keys, only a person could have invited): an agent holding a machine key cannot make a key
/// of its own count as a person's.
pub fn may_set_human_key(
    current: Option<&[u8]>,
    signer_key: &[u8],
    uses_human_keys: bool,
    enrolled_at: i64,
    now: i64,
) -> Result<(), ProtocolError> {
    match current {
        Some(current) if current != signer_key => Err(ProtocolError::forbidden(
            "this machine has a human key already; only a session signed in with it may replace it",
        )),
        None if uses_human_keys && now - enrolled_at > ENROLL_WINDOW_MS => {
            Err(ProtocolError::forbidden(format!(
                "this account uses human keys: a machine gets its first one within {} minutes of being enrolled; remove it and enroll it again",
                ENROLL_WINDOW_MS / 60_000
            )))
        }
        _ => Ok(()),
    }
}

/// The refusal of a post by someone who is not a member: a private channel a stranger names
/// must look exactly like a missing one.
pub fn not_a_member(channel: &Name, visibility: Visibility) -> ProtocolError {
    if visibility == Visibility::Private {
        return ProtocolError::not_found(format!("there is no channel #{channel}"));
    }
    ProtocolError::forbidden(format!("join #{channel} before posting to it"))
}

/// Whether a member may post now: the channel is not archived and they are not muted.
pub fn may_post(
    channel: &Name,
    archived: bool,
    muted_until: Option<i64>,
    now: i64,
) -> Result<(), ProtocolError> {
    if archived {
        return Err(ProtocolError::forbidden(format!(
            "#{channel} is archived: it is read-only"
        )));
    }
    if let Some(until) = muted_until.filter(|&until| until > now) {
        return Err(ProtocolError::forbidden(format!(
            "you are muted in #{channel} {}",
            remaining_in_words(until, now)
        )));
    }
    Ok(())
}

/// A message from a session whose path another sign-in has claimed since (on another
/// instance): the session is over.
pub fn taken_over(path: &SessionPath) -> ProtocolError {
    ProtocolError::conflict(format!(
        "{path} connected again from elsewhere: this session may no longer post"
    ))
}

/// A reply answers a message the channel already has (by seq): not itself, not one to come.
pub fn may_reply_to(
    channel: &Name,
    reply_to: Option<u64>,
    last_seq: i64,
) -> Result<(), ProtocolError> {
    match reply_to {
        Some(seq) if seq == 0 || i64::try_from(seq).map_or(true, |s| s > last_seq) => {
            Err(ProtocolError::invalid(format!(
                "#{channel} has no message {seq} to reply to (its newest is {last_seq})"
            )))
        }
        _ => Ok(()),
    }
}

/// Who runs a channel, from its members with a role above `member` ordered by role (owner
/// first) then name: the owner, and up to `MAX_LISTED_MODERATORS` moderators.
pub fn staff(ranked: impl IntoIterator<Item = (Name, Role)>) -> (Option<Name>, Vec<Name>) {
    let mut owner = None;
    let mut moderators = Vec::new();
    for (name, role) in ranked {
        match role {
            Role::Owner => owner = Some(name),
            _ if moderators.len() < MAX_LISTED_MODERATORS => moderators.push(name),
            _ => {}
        }
    }
    (owner, moderators)
}

/// The two users of direct conversation `name` by id, from the users found under its two
/// names, when `opener` is one of them; otherwise what to refuse with.
pub fn direct_pair(
    name: &Name,
    opener: UserId,
    found: &[(UserId, Name)],
) -> Result<[UserId; 2], ProtocolError> {
    let missing = || ProtocolError::not_found(format!("there is no channel #{name}"));
    let (a, b) = name.direct_users().ok_or_else(missing)?;
    let id = |who: &Name| found.iter().find(|(_, n)| n == who).map(|(id, _)| *id);
    match (id(&a), id(&b)) {
        (Some(a), Some(b)) if opener == a || opener == b => Ok([a, b]),
        (Some(me), None) if me == opener => {
            Err(ProtocolError::not_found(format!("there is no user {b}")))
        }
        (None, Some(me)) if me == opener => {
            Err(ProtocolError::not_found(format!("there is no user {a}")))
        }
        _ => Err(missing()),
    }
}

/// An hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// Direct conversations one user may start in an hour.
pub const MAX_DIRECT_PER_HOUR: i64 = 60;

/// Refuses a new direct conversation past `MAX_DIRECT_PER_HOUR` started by its opener.
pub fn direct_cap(opened_this_hour: i64) -> Result<(), ProtocolError> {
    if opened_this_hour >= MAX_DIRECT_PER_HOUR {
        return Err(ProtocolError::rate_limited(format!(
            "you started {MAX_DIRECT_PER_HOUR} direct conversations in the last hour, the most allowed; try again later"
        )));
    }
    Ok(())
}

/// A direct conversation made just now, as its users see it.
pub fn direct_info(name: &Name) -> ChannelInfo {
    ChannelInfo {
        name: name.clone(),
        visibility: Visibility::Private,
        member: true,
        last_seq: 0,
        members: 2,
        topic: String::new(),
        archived: false,
    }
}
