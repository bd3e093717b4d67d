//! Who may govern a channel, as one pure function of the actor's standing, the act and the
//! target's standing, so every backend and every request asks the same question the same way.
//!
//! - Moderators (and owners) kick, ban, unban, mute, unmute, set the topic, the brakes and the
//!   floor, and make and revoke invites.
//! - Only the owner renames, archives, deletes and gives roles (making someone owner hands
//!   the channel over).
//! - Nobody acts on someone of their own rank or above, nor on themselves; server admins act
//!   as owners everywhere and over everyone.

use crate::net::names::Name;
use crate::net::protocol::{ChannelAct, ProtocolError, Role};

/// Where someone stands in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// `None` when not a member.
    pub role: Option<Role>,
    pub admin: bool,
}

impl Standing {
    /// The rank the rules see: admins rank above every owner.
    fn rank(self) -> u8 {
        match (self.admin, self.role) {
            (true, _) => 3,
            (false, Some(Role::Owner)) => 2,
            (false, Some(Role::Moderator)) => 1,
            (false, _) => 0,
        }
    }
}

/// The least role an act needs.
fn needs(act: &ChannelAct) -> Role {
    match act {
        ChannelAct::Role { .. }
        | ChannelAct::Rename { .. }
        | ChannelAct::Archive
        | ChannelAct::Unarchive
        | ChannelAct::Delete => Role::Owner,
        _ => Role::Moderator,
    }
}

/// Whether the actor moderates the channel (or is an admin).
pub fn may_moderate(actor: Standing) -> bool {
    actor.rank() >= 1
}

/// Making invites needs what a moderation act does.
pub fn may_invite(channel: &Name, actor: Standing) -> Result<(), ProtocolError> {
    moderators_may(channel, actor, "make invites")
}

/// Seeing a channel's open invites needs what making one does.
pub fn may_list_invites(channel: &Name, actor: Standing) -> Result<(), ProtocolError> {
    moderators_may(channel, actor, "see its invites")
}

/// Bringing someone in needs what a moderation act does.
pub fn may_add_members(channel: &Name, actor: Standing) -> Result<(), ProtocolError> {
    moderators_may(channel, actor, "add members")
}

/// A channel's audit log is for its moderators, owner and admins.
pub fn may_read_audit(channel: &Name, actor: Standing) -> Result<(), ProtocolError> {
    moderators_may(channel, actor, "read its audit log")
}

fn moderators_may(channel: &Name, actor: Standing, what: &str) -> Result<(), ProtocolError> {
    if may_moderate(actor) {
        return Ok(());
    }
    Err(ProtocolError::forbidden(format!(
        "only moderators and the owner of #{channel} may {what}"
    )))
}

/// Whether `actor` may do `act` in `channel` to a target who stands at `target` (with its
/// name), with `is_self` when the target is the actor.
pub fn check(
    channel: &Name,
    actor: Standing,
    act: &ChannelAct,
    target: Option<(&Name, Standing)>,
    is_self: bool,
) -> Result<(), ProtocolError> {
    let needed = needs(act);
    let enough = match needed {
        Role::Owner => actor.rank() >= 2,
        _ => actor.rank() >= 1,
    };
    if !enough {
        let who = match needed {
            Role::Owner => format!("the owner of #{channel} or a server admin"),
            _ => format!("moderators and the owner of #{channel}"),
        };
        return Err(ProtocolError::forbidden(format!(
            "only {who} may {}",
            act.doing()
        )));
    }
    let Some((name, target)) = target else {
        return Ok(());
    };
    if is_self {
        return match act {
            ChannelAct::Role { role, .. } if actor.admin || *role == Role::Owner => Ok(()),
            ChannelAct::Role { .. } => Err(ProtocolError::forbidden(format!(
                "hand #{channel} to someone else first: `conclave channel role {channel} USER owner`"
            ))),
            ChannelAct::Unmute { .. } | ChannelAct::Unban { .. } if actor.admin => Ok(()),
            _ => Err(ProtocolError::forbidden(format!(
                "you cannot {} yourself",
                act.doing()
            ))),
        };
    }
    if target.rank() >= actor.rank() {
        let rank = match (target.admin, target.role) {
            (true, _) => "a server admin".to_owned(),
            (false, Some(role)) => format!("{role} of #{channel}"),
            (false, None) => "a member".to_owned(),
        };
        let what = match act {
            ChannelAct::Role { .. } => "change their role".to_owned(),
            other => format!("{} them", other.doing()),
        };
        return Err(ProtocolError::forbidden(format!(
            "{name} is {rank}; you cannot {what}"
        )));
    }
    if matches!(act, ChannelAct::Role { .. }) && target.role.is_none() {
        return Err(ProtocolError::not_found(format!(
            "{name} is not a member of #{channel}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::protocol::{ErrorCode, KickTarget};

    fn at(role: Option<Role>) -> Standing {
        Standing { role, admin: false }
    }

    const ADMIN: Standing = Standing {
        role: None,
        admin: true,
    };

    fn kick(user: &str) -> ChannelAct {
        ChannelAct::Kick {
            target: KickTarget::User(Name::user(user).unwrap()),
            ban_for_ms: None,
        }
    }

    #[test]
    fn members_cannot_moderate_and_moderators_cannot_rename() {
        let ops = Name::channel("ops").unwrap();
        let bob = Name::user("bob").unwrap();
        let member = at(Some(Role::Member));
        let refused = check(&ops, member, &kick("bob"), Some((&bob, member)), false).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden);
        assert_eq!(
            refused.message,
            "only moderators and the owner of #ops may kick"
        );
        let moderator = at(Some(Role::Moderator));
        check(&ops, moderator, &kick("bob"), Some((&bob, member)), false).unwrap();
        let rename = ChannelAct::Rename {
            name: Name::channel("ops2").unwrap(),
        };
        let refused = check(&ops, moderator, &rename, None, false).unwrap_err();
        assert_eq!(
            refused.message,
            "only the owner of #ops or a server admin may rename it"
        );
        check(&ops, at(Some(Role::Owner)), &rename, None, false).unwrap();
        check(&ops, ADMIN, &rename, None, false).unwrap();
    }

    #[test]
    fn nobody_acts_on_their_rank_or_above_but_admins_act_on_everyone() {
        let ops = Name::channel("ops").unwrap();
        let alice = Name::user("alice").unwrap();
        let owner = at(Some(Role::Owner));
        let moderator = at(Some(Role::Moderator));
        let refused = check(
            &ops,
            moderator,
            &kick("alice"),
            Some((&alice, owner)),
            false,
        )
        .unwrap_err();
        assert_eq!(
            refused.message,
            "alice is owner of #ops; you cannot kick them"
        );
        assert!(
            check(
                &ops,
                moderator,
                &kick("alice"),
                Some((&alice, moderator)),
                false
            )
            .is_err()
        );
        check(
            &ops,
            owner,
            &kick("alice"),
            Some((&alice, moderator)),
            false,
        )
        .unwrap();
        check(&ops, ADMIN, &kick("alice"), Some((&alice, owner)), false).unwrap();
        let refused = check(&ops, owner, &kick("alice"), Some((&alice, ADMIN)), false).unwrap_err();
        assert!(
            refused.message.contains("a server admin"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn the_owner_hands_over_but_does_not_step_down_alone() {
        let ops = Name::channel("ops").unwrap();
        let alice = Name::user("alice").unwrap();
        let owner = at(Some(Role::Owner));
        let demote = ChannelAct::Role {
            user: alice.clone(),
            role: Role::Member,
        };
        assert!(check(&ops, owner, &demote, Some((&alice, owner)), true).is_err());
        assert!(check(&ops, owner, &kick("alice"), Some((&alice, owner)), true).is_err());
        let carol = Name::user("carol").unwrap();
        let promote = ChannelAct::Role {
            user: carol.clone(),
            role: Role::Owner,
        };
        check(
            &ops,
            owner,
            &promote,
            Some((&carol, at(Some(Role::Member)))),
            false,
        )
        .unwrap();
        let refused = check(&ops, owner, &promote, Some((&carol, at(None))), false).unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotFound);
    }
}
