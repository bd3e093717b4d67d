//! What moderation does to live state: the room hears of each act, then the act takes
//! effect at once (kicked and banned sessions stop receiving, a renamed room keeps its
//! subscribers, a deleted one closes), and server bans close every session of the user.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Hub, State};
use crate::net::codec;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{CloseReason, PresenceChange, ServerFrame};
use crate::server::store::{ChannelId, UserId};

/// What an act does to a room once its subscribers have heard of it.
#[derive(Debug, Clone, Copy)]
pub enum RoomEffect<'a> {
    Nothing,
    /// Every session of the user stops receiving (their membership ended).
    RemoveUser(UserId),
    /// One session stops receiving (its user stays a member).
    RemoveSession(&'a SessionPath),
    Rename(&'a Name),
    /// The channel is gone.
    Close,
}

impl Hub {
    /// Tells the room's subscribers about an act (`event`), then applies its effect; the
    /// sessions an act removes hear of it before they stop receiving.
    pub fn moderate(&self, channel_id: ChannelId, event: &ServerFrame, effect: RoomEffect<'_>) {
        let bytes = match codec::encode(event) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                tracing::error!(%e, "cannot encode a moderation event");
                return;
            }
        };
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(room) = state.rooms.get(&channel_id) {
            for sub in room.subscribers.values() {
                sub.outbox.deliver(bytes.clone());
            }
        }
        match effect {
            RoomEffect::Nothing => {}
            RoomEffect::RemoveUser(user_id) => {
                Self::drop_user_from_room(state, channel_id, user_id);
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

    /// Closes every session of a user banned from the server, telling each why.
    pub fn ban_user(&self, user_id: UserId, why: &str) {
        self.end_sessions(
            user_id,
            |_, _| true,
            CloseReason::Banned,
            |_| why.to_owned(),
        );
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
