//! Direct conversations: a private channel named for its two users (`Name::direct`), opened
//! by either one's first message or join, told to both users' sessions, and governed by
//! nobody.

use super::*;
use crate::net::protocol::ChannelAct;

/// Refuses a name only a direct conversation's channel may bear where another kind of name
/// belongs (a user, a machine, a session handle).
pub(super) fn plain(name: &Name, what: &str) -> Result<(), ProtocolError> {
    if name.is_direct() {
        return Err(ProtocolError::invalid(format!(
            "{what} `{name}` may only hold lowercase letters, digits, `-` and `_`"
        )));
    }
    Ok(())
}

/// Refuses the requests a direct conversation does not take: making one as a channel,
/// renaming a channel to one, and every act of governing one.
pub(super) fn check(frame: &ClientFrame) -> Result<(), ProtocolError> {
    let governed = match frame {
        ClientFrame::CreateChannel { channel, .. } if channel.is_direct() => {
            return Err(ProtocolError::invalid(
                "a direct conversation starts with its first message (`conclave dm USER TEXT`)",
            ));
        }
        ClientFrame::Moderate {
            act: ChannelAct::Rename { name },
            ..
        } if name.is_direct() => {
            return Err(ProtocolError::invalid(format!(
                "no channel may be renamed #{name}: that is a direct conversation's name"
            )));
        }
        ClientFrame::InviteMachine { machine, .. } => return plain(machine, "machine name"),
        ClientFrame::Audit {
            channel: Some(channel),
            ..
        }
        | ClientFrame::Moderate { channel, .. }
        | ClientFrame::CreateInvite { channel, .. }
        | ClientFrame::ListInvites { channel, .. }
        | ClientFrame::AddMember { channel, .. }
        | ClientFrame::RemoveMember { channel, .. } => channel,
        _ => return Ok(()),
    };
    if governed.is_direct() {
        return Err(ProtocolError::forbidden(format!(
            "#{governed} is a direct conversation: nobody governs it"
        )));
    }
    Ok(())
}

/// Makes sure direct conversation `channel` exists and holds this session's user, when that
/// user is one of its two (for anyone else it stays missing). When it is made now, both users
/// are members and every session of either is told, here and on the other instances, so it
/// can join.
pub(super) async fn open(shared: &Shared, me: &Me, channel: &Name) -> Result<(), ProtocolError> {
    if channel.direct_peer(&me.path().user).is_none() {
        return Ok(());
    }
    let turns = shared.admission.limits().agent_turns;
    let Some(info) = shared.store.open_direct(channel, me.user_id, turns).await? else {
        return Ok(());
    };
    let frame = codec::encode(&ServerFrame::Opened { channel: info })?;
    if let Some((a, b)) = channel.direct_users() {
        shared.hub.tell_users(vec![a, b], frame);
    }
    Ok(())
}
