//! Access taken away at once: a membership ended, a machine removed, a machine's keys changed,
//! a user banned. Each counts as a revocation of the user (see `Epoch`), so a join or a login
//! that checked the store before it checks again. Every instance applies each to its own
//! sessions: the one where it happened forwards it over the bus.

use serde::{Deserialize, Serialize};

use super::*;

/// What happens to a user's sessions on every instance: access lost, or news for them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEffect {
    /// An encoded frame for every session of these users (a direct conversation opened).
    Told {
        users: Vec<Name>,
        #[serde(with = "serde_bytes")]
        frame: Vec<u8>,
    },
    /// Their membership of a channel ended: their sessions stop receiving it.
    LeftRoom { channel: ChannelId, user: UserId },
    /// A machine was removed: its sessions close.
    MachineRemoved { user: UserId, machine: Name },
    /// A machine's keys changed: its sessions close (but the one that changed them).
    MachineRekeyed { user: UserId, machine: Name },
    /// Banned from the server: every session closes, told `why`.
    Banned { user: UserId, why: String },
}

impl Hub {
    /// Stops delivering a channel to every session of one user (their membership ended),
    /// telling the room they left.
    pub fn remove_user_from_room(&self, channel_id: ChannelId, user_id: UserId) {
        self.revoke_everywhere(
            UserEffect::LeftRoom {
                channel: channel_id,
                user: user_id,
            },
            None,
        );
    }

    /// Disconnects every session of one machine except `keep` (its keys changed: each must
    /// sign in again with a key that still counts).
    pub fn end_machine_sessions(&self, user_id: UserId, machine: &Name, keep: &Attached) {
        let effect = UserEffect::MachineRekeyed {
            user: user_id,
            machine: machine.clone(),
        };
        self.revoke_everywhere(effect, Some(keep.conn));
    }

    /// Disconnects every session of one machine (its key was removed).
    pub fn revoke_machine(&self, user_id: UserId, machine: &Name) {
        let effect = UserEffect::MachineRemoved {
            user: user_id,
            machine: machine.clone(),
        };
        self.revoke_everywhere(effect, None);
    }

    /// Closes every session of a user banned from the server, telling each why.
    pub fn ban_user(&self, user_id: UserId, why: &str) {
        let effect = UserEffect::Banned {
            user: user_id,
            why: why.to_owned(),
        };
        self.revoke_everywhere(effect, None);
    }

    /// What another instance reports a user lost, applied to the sessions here.
    pub fn receive_user_effect(&self, effect: &UserEffect) {
        Self::revoke(&mut self.lock(), effect, None);
    }

    /// Delivers an encoded frame to every session of `users`, on every instance.
    pub fn tell_users(&self, users: Vec<Name>, frame: Vec<u8>) {
        self.revoke_everywhere(UserEffect::Told { users, frame }, None);
    }

    fn revoke_everywhere(&self, effect: UserEffect, keep: Option<u64>) {
        let mut state = self.lock();
        Self::revoke(&mut state, &effect, keep);
        state.forward.send(Outgoing::User(effect));
    }

    /// Applies `effect` to the sessions here, sparing the connection `keep`.
    fn revoke(state: &mut State, effect: &UserEffect, keep: Option<u64>) {
        match effect {
            UserEffect::Told { users, frame } => {
                let frame = Bytes::from(frame.clone());
                for (path, live) in &state.sessions {
                    if users.contains(&path.user) {
                        live.outbox.deliver(frame.clone());
                    }
                }
            }
            UserEffect::LeftRoom { channel, user } => {
                Self::drop_user_from_room(state, *channel, *user);
            }
            UserEffect::MachineRemoved { user, machine } => Self::end_sessions(
                state,
                *user,
                |path, _| &path.machine == machine,
                CloseReason::Revoked,
                |path| format!("machine {}/{} was removed", path.user, path.machine),
            ),
            UserEffect::MachineRekeyed { user, machine } => Self::end_sessions(
                state,
                *user,
                |path, live| &path.machine == machine && Some(live.conn) != keep,
                CloseReason::Revoked,
                |path| {
                    format!(
                        "the keys of {}/{} changed: sign in again",
                        path.user, path.machine
                    )
                },
            ),
            UserEffect::Banned { user, why } => Self::end_sessions(
                state,
                *user,
                |_, _| true,
                CloseReason::Banned,
                |_| why.clone(),
            ),
        }
    }

    pub(super) fn drop_user_from_room(state: &mut State, channel_id: ChannelId, user_id: UserId) {
        state.revoke(user_id);
        let Some(room) = state.rooms.get_mut(&channel_id) else {
            return;
        };
        let leaving: Vec<(SessionPath, SessionKind)> = room
            .subscribers
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(p, s)| (p.clone(), s.kind))
            .collect();
        for (path, kind) in leaving {
            room.subscribers.remove(&path);
            Self::announce(room, &path, kind, PresenceChange::Left);
            if let Some(live) = state.sessions.get_mut(&path) {
                live.rooms.remove(&channel_id);
            }
        }
    }

    /// Revokes the user's access and closes those of their sessions `which` picks, each told
    /// `why` with `reason`.
    fn end_sessions(
        state: &mut State,
        user_id: UserId,
        which: impl Fn(&SessionPath, &Live) -> bool,
        reason: CloseReason,
        why: impl Fn(&SessionPath) -> String,
    ) {
        state.revoke(user_id);
        let ending: Vec<SessionPath> = state
            .sessions
            .iter()
            .filter(|(path, live)| live.user_id == user_id && which(path, live))
            .map(|(path, _)| path.clone())
            .collect();
        for path in ending {
            let why = why(&path);
            Self::cut_off(state, &path, reason, why);
        }
    }

    /// Closes a session as revoked and takes it out of its rooms at once, so nothing more
    /// is fanned out to it while its connection winds down.
    fn cut_off(state: &mut State, path: &SessionPath, reason: CloseReason, why: String) {
        let Some(live) = state.sessions.get_mut(path) else {
            return;
        };
        live.outbox.control.close(reason, why);
        let rooms = std::mem::take(&mut live.rooms);
        let kind = live.kind;
        for channel in rooms {
            if let Some(room) = state.rooms.get_mut(&channel) {
                room.subscribers.remove(path);
                Self::announce(room, path, kind, PresenceChange::Offline);
            }
        }
    }
}
