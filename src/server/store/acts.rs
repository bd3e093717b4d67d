//! What each governing act does to the rows, as one step every backend carries out the same
//! way: which change, until when, and the refusal when there was nothing to change. Whether
//! the actor may do it at all is `server::rules`, asked before.

use crate::net::names::Name;
use crate::net::protocol::{ChannelAct, ChannelSetting, KickTarget, MAX_PINS, ProtocolError, Role};

use super::until;

/// One act's change. The target user (when the act has one) is the backend's to look up.
pub enum Step<'a> {
    /// Ban the target until then (replacing any earlier ban), ending their membership.
    Ban {
        until: i64,
    },
    /// End the target's membership; `missing` when they had none.
    RemoveMember {
        missing: ProtocolError,
    },
    /// Lift the target's ban; `missing` when none is in force.
    Unban {
        missing: ProtocolError,
    },
    /// Mute the target until then.
    Mute {
        until: i64,
    },
    /// Lift the target's mute; `missing` when none is in force.
    Unmute {
        missing: ProtocolError,
    },
    /// Give the target a role.
    Role(Role),
    Topic(&'a str),
    Rename(&'a Name),
    Archived(bool),
    Delete,
    Set(ChannelSetting),
    Floor(Option<&'a str>),
    /// Revoke an invite token; `missing` when the channel has none by it.
    RevokeInvite {
        token: &'a str,
        missing: ProtocolError,
    },
    /// Pin message `seq` (a message, not an event, and not deleted).
    Pin {
        seq: u64,
    },
    /// Unpin message `seq`; `missing` when it is not pinned.
    Unpin {
        seq: u64,
        missing: ProtocolError,
    },
    /// Nothing stored changes (a kick of a session without a ban: the hub drops it).
    Nothing,
}

/// The step `act` in `channel` takes at `now`.
pub fn step<'a>(channel: &Name, act: &'a ChannelAct, now: i64) -> Step<'a> {
    match act {
        ChannelAct::Kick {
            ban_for_ms: Some(ms),
            ..
        } => Step::Ban {
            until: until(now, Some(*ms)),
        },
        ChannelAct::Kick {
            target: KickTarget::User(user),
            ban_for_ms: None,
        } => Step::RemoveMember {
            missing: ProtocolError::not_found(format!("{user} is not in #{channel}")),
        },
        ChannelAct::Kick { .. } => Step::Nothing,
        ChannelAct::Ban { for_ms, .. } => Step::Ban {
            until: until(now, *for_ms),
        },
        ChannelAct::Unban { user } => Step::Unban {
            missing: ProtocolError::not_found(format!("{user} is not banned from #{channel}")),
        },
        ChannelAct::Mute { for_ms, .. } => Step::Mute {
            until: until(now, *for_ms),
        },
        ChannelAct::Unmute { user } => Step::Unmute {
            missing: ProtocolError::not_found(format!("{user} is not muted in #{channel}")),
        },
        ChannelAct::Role { role, .. } => Step::Role(*role),
        ChannelAct::Topic { topic } => Step::Topic(topic),
        ChannelAct::Rename { name } => Step::Rename(name),
        ChannelAct::Archive => Step::Archived(true),
        ChannelAct::Unarchive => Step::Archived(false),
        ChannelAct::Delete => Step::Delete,
        ChannelAct::Set { setting } => Step::Set(*setting),
        ChannelAct::Floor { to } => Step::Floor(to.as_deref()),
        ChannelAct::RevokeInvite { token } => Step::RevokeInvite {
            token,
            missing: ProtocolError::not_found(format!("#{channel} has no invite {token}")),
        },
        ChannelAct::Pin { seq } => Step::Pin { seq: *seq },
        ChannelAct::Unpin { seq } => Step::Unpin {
            seq: *seq,
            missing: ProtocolError::not_found(format!("#{channel}:{seq} is not pinned")),
        },
    }
}

/// Whether message `seq` of `channel` may be pinned: `pinnable` says it is a stored message
/// (not an event) that was not deleted; `pins` is how many the channel has.
pub fn may_pin(channel: &Name, seq: u64, pinnable: bool, pins: i64) -> Result<(), ProtocolError> {
    if !pinnable {
        return Err(ProtocolError::not_found(format!(
            "#{channel} has no message {seq} to pin"
        )));
    }
    if usize::try_from(pins).unwrap_or(usize::MAX) >= MAX_PINS {
        return Err(ProtocolError::invalid(format!(
            "#{channel} has {MAX_PINS} pinned messages, the most it may; unpin one first"
        )));
    }
    Ok(())
}

/// A step that had to change something: `missing` when it found nothing to change.
pub fn changed(done: bool, missing: ProtocolError) -> Result<(), ProtocolError> {
    if done { Ok(()) } else { Err(missing) }
}
