//! Channel requests: create, list, join, leave, who, and memberships.

use super::governance::MAX_TOKEN_BYTES;
use super::*;
use crate::net::protocol::Visibility;
use crate::server::store::NewChannel;

/// `ClientFrame::CreateChannel`.
pub(super) async fn create_channel(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    visibility: Visibility,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let admin = shared.admins.contains(&me.path().user);
    let limits = shared.admission.limits();
    let new = NewChannel {
        name: channel,
        visibility,
        creator: me.user_id,
        max_per_creator: (!admin).then_some(limits.max_channels_per_user),
        agent_turns: limits.agent_turns,
    };
    let channel = shared.store.create_channel(&new).await?;
    Ok(Some(ServerFrame::ChannelCreated { id, channel }))
}

/// `ClientFrame::ListChannels`.
pub(super) async fn list_channels(
    shared: &Shared,
    me: &Me,
    id: u64,
    after: Option<Name>,
    limit: Option<u32>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let limit = limit.unwrap_or(MAX_CHANNEL_PAGE).clamp(1, MAX_CHANNEL_PAGE);
    let (channels, more) = shared
        .store
        .list_channels(me.user_id, after.as_ref(), limit)
        .await?;
    Ok(Some(ServerFrame::Channels { id, channels, more }))
}

/// `ClientFrame::Join`.
pub(super) async fn join(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    invite: Option<String>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    if invite.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
        return Err(ProtocolError::invalid("that is not an invite token"));
    }
    direct::open(shared, me, &channel).await?;
    let mut tries = 0;
    loop {
        let checked = shared.hub.epoch(user);
        let handle = &me.path().session;
        let joining = shared
            .store
            .join(&channel, user, handle, invite.as_deref())
            .await?;
        let change = if joining.new_member {
            PresenceChange::Joined
        } else {
            PresenceChange::Online
        };
        let read_seq = joining.read_seq;
        let new_member = joining.new_member;
        let channel = joining.channel;
        let room = RoomRef {
            id: channel.id,
            name: &channel.name,
            stored_last_seq: channel.last_seq,
        };
        let subscribing = shared
            .hub
            .subscribe(room, &me.attached, change, checked, |last_seq| {
                ServerFrame::Joined {
                    id,
                    channel: crate::net::protocol::ChannelInfo {
                        name: channel.name.clone(),
                        visibility: channel.visibility,
                        member: true,
                        last_seq,
                        members: 0,
                        topic: channel.topic.clone(),
                        archived: channel.archived,
                    },
                    read_seq,
                    new_member,
                }
            });
        if let Some(done) = settled(subscribing, &mut tries) {
            break done?;
        }
    }
    Ok(None)
}

/// `ClientFrame::Leave`.
pub(super) async fn leave(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    let store = &shared.store;
    let found = store.visible_channel(&channel, user).await?;
    let others_remain = shared.hub.unsubscribe(found.id, &me.attached);
    if !others_remain {
        let removed = store.remove_member(found.id, user).await?;
        if !removed {
            return Err(ProtocolError::not_found(format!(
                "you are not in #{channel}"
            )));
        }
    }
    Ok(Some(ServerFrame::Left {
        id,
        channel,
        membership_ended: !others_remain,
    }))
}

/// `ClientFrame::Who`.
pub(super) async fn who(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Option<Name>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let (channel_id, mut members) = match &channel {
        None => (None, Vec::new()),
        Some(name) => {
            let (id, members) = shared
                .store
                .members(name, me.user_id, MAX_WHO_ENTRIES + 1)
                .await?;
            (Some(id), members)
        }
    };
    let mut sessions = shared.hub.who(channel_id);
    sessions.extend(shared.bus.who(channel_id).await);
    sessions.sort_by(|a, b| a.path.cmp(&b.path));
    sessions.dedup_by(|a, b| a.path == b.path);
    let truncated = sessions.len() > MAX_WHO_ENTRIES || members.len() > MAX_WHO_ENTRIES;
    sessions.truncate(MAX_WHO_ENTRIES);
    members.truncate(MAX_WHO_ENTRIES);
    Ok(Some(ServerFrame::Who {
        id,
        channel,
        sessions,
        members,
        truncated,
    }))
}
