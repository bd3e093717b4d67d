//! What moderation does to live state: the room hears of each act, then the act takes
//! effect at once (kicked and banned sessions stop receiving, a renamed room keeps its
//! subscribers, a deleted one closes), and server bans close every session of the user.

use std::collections::HashMap;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

use super::{Hub, Outgoing, State};
use crate::net::codec;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{PresenceChange, ServerFrame};
use crate::server::store::{ChannelId, UserId};

/// What an act does to a room once its subscribers have heard of it. Sent as it is to the
/// other instances, which apply it to their own sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomEffect {
    Nothing,
    /// Every session of the user stops receiving (their membership ended).
    RemoveUser(UserId),
    /// One session stops receiving (its user stays a member).
    RemoveSession(SessionPath),
    Rename(Name),
    /// The channel is gone.
    Close,
}

impl Hub {
    /// Tells the room's subscribers about an act (`event`), then applies its effect; the
    /// sessions an act removes hear of it before they stop receiving. Other instances do the
    /// same for theirs.
    pub fn moderate(&self, channel_id: ChannelId, event: &ServerFrame, effect: RoomEffect) {
        let bytes = match codec::encode(event) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                tracing::error!(%e, "cannot encode a moderation event");
                return;
            }
        };
        let mut state = self.lock();
        Self::apply_to_room(&mut state, channel_id, &bytes, &effect);
        state.forward.send(Outgoing::Room {
            channel: channel_id,
            frame: bytes,
            effect,
        });
    }

    /// An act or a presence change another instance reports for a room: its subscribers here
    /// hear of it and the effect applies to the sessions here.
    pub fn receive_room_event(&self, channel_id: ChannelId, frame: &Bytes, effect: &RoomEffect) {
        Self::apply_to_room(&mut self.lock(), channel_id, frame, effect);
    }

    fn apply_to_room(state: &mut State, channel_id: ChannelId, bytes: &Bytes, effect: &RoomEffect) {
        if let Some(room) = state.rooms.get(&channel_id) {
            for sub in room.subscribers.values() {
                sub.outbox.deliver(bytes.clone());
            }
        }
        match effect {
            RoomEffect::Nothing => {}
            RoomEffect::RemoveUser(user_id) => {
                Self::drop_user_from_room(state, channel_id, *user_id);
            }
            RoomEffect::RemoveSession(path) => {
                Self::drop_session_from_room(state, channel_id, path)
            }
            RoomEffect::Rename(name) => {
                if let Some(room) = state.rooms.get_mut(&channel_id) {
                    room.name = name.clone();
                }
            }
            RoomEffect::Close => {
                state.deletions += 1;
                if let Some(room) = state.rooms.remove(&channel_id) {
                    for path in room.subscribers.keys() {
                        if let Some(live) = state.sessions.get_mut(path) {
                            live.rooms.remove(&channel_id);
                        }
                    }
                }
            }
        }
    }

    fn drop_session_from_room(state: &mut State, channel_id: ChannelId, path: &SessionPath) {
        let Some(room) = state.rooms.get_mut(&channel_id) else {
            return;
        };
        if let Some(sub) = room.subscribers.remove(path) {
            Self::announce(room, path, sub.kind, PresenceChange::Offline);
        }
        if let Some(live) = state.sessions.get_mut(path) {
            live.rooms.remove(&channel_id);
        }
    }

    /// Live sessions of each of `users`.
    pub fn online_counts(&self, users: &[UserId]) -> HashMap<UserId, u32> {
        let state = self.lock();
        users
            .iter()
            .map(|id| {
                let n = state.per_user.get(id).copied().unwrap_or(0);
                (*id, u32::try_from(n).unwrap_or(u32::MAX))
            })
            .collect()
    }
}
