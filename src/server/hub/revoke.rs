//! Access taken away at once: a membership ended, a machine removed, a machine's keys changed.
//! Each counts as a revocation of the user (see `Epoch`), so a join or a login that checked
//! the store before it checks again.

use super::*;

impl Hub {
    /// Stops delivering a channel to every session of one user (their membership ended),
    /// telling the room they left.
    pub fn remove_user_from_room(&self, channel_id: ChannelId, user_id: UserId) {
        Self::drop_user_from_room(&mut self.lock(), channel_id, user_id);
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

    /// Disconnects every session of one machine except `keep` (its keys changed: each must
    /// sign in again with a key that still counts).
    pub fn end_machine_sessions(&self, user_id: UserId, machine: &Name, keep: &Attached) {
        self.end_sessions(
            user_id,
            |path, live| &path.machine == machine && live.conn != keep.conn,
            CloseReason::Revoked,
            |path| {
                format!(
                    "the keys of {}/{} changed: sign in again",
                    path.user, path.machine
                )
            },
        );
    }

    /// Revokes the user's access and closes those of their sessions `which` picks, each told
    /// `why` with `reason`.
    pub(super) fn end_sessions(
        &self,
        user_id: UserId,
        which: impl Fn(&SessionPath, &Live) -> bool,
        reason: CloseReason,
        why: impl Fn(&SessionPath) -> String,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
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

    /// Disconnects every session of one machine (its key was removed).
    pub fn revoke_machine(&self, user_id: UserId, machine: &Name) {
        self.end_sessions(
            user_id,
            |path, _| &path.machine == machine,
            CloseReason::Revoked,
            |path| format!("machine {}/{} was removed", path.user, path.machine),
        );
    }
}
