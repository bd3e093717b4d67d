//! Live state: which sessions are connected, which channels each receives, and fan-out.
//!
//! A plain struct behind one `std::sync::Mutex`; no critical section awaits. Frames are encoded
//! once, outside the lock where possible, and the same bytes go to every recipient through
//! `try_send` into its bounded queue. A recipient whose queue is full is disconnected (it
//! reconnects and catches up from history) rather than slowing the room or growing memory.
//! Nothing here touches the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::net::codec;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Audience, ChatMessage, CloseReason, OnConflict, PresenceChange, PresenceEvent, ProtocolError,
    ServerFrame, SessionInfo, SessionKind,
};

pub use super::outbox::{Control, Outbox};
use super::store::{ChannelId, UserId};
pub use forward::{Forward, Outgoing};
pub use governance::RoomEffect;
pub use revoke::UserEffect;

/// Most suffixes tried for a defaulted handle before giving up.
const MAX_SUFFIX: u32 = 1000;

struct Live {
    conn: u64,
    user_id: UserId,
    kind: SessionKind,
    /// The client instance that claimed the path (see `Claim::instance`).
    instance: Option<String>,
    outbox: Outbox,
    rooms: HashSet<ChannelId>,
}

struct Subscriber {
    user_id: UserId,
    kind: SessionKind,
    outbox: Outbox,
}

struct Room {
    id: ChannelId,
    name: Name,
    /// The newest sequence number fanned out (or known from the store when subscribing).
    last_seq: u64,
    /// The newest sequence number known to be stored; above `last_seq` is a gap to fill from
    /// the store before anything later is delivered (see `order.rs`).
    known_seq: u64,
    /// Messages that arrived after a gap, held until it is filled (bounded).
    pending: BTreeMap<u64, Bytes>,
    subscribers: HashMap<SessionPath, Subscriber>,
    /// Where this room's presence changes go for the other instances.
    forward: Forward,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionPath, Live>,
    /// Live sessions per user, for the per-user cap.
    per_user: HashMap<UserId, usize>,
    rooms: HashMap<ChannelId, Room>,
    next_conn: u64,
    /// Counts revocations per user (a membership ended, a machine removed, keys changed, a
    /// ban); see `Epoch`. Per user, so nobody's revocations can hold up anyone else's logins.
    revocations: HashMap<UserId, u64>,
    /// Channels deleted: a join that read a channel before its deletion must not bring its
    /// room back.
    deletions: u64,
    /// Rooms whose subscribers wait for a gap to be filled from the store.
    gaps: HashSet<ChannelId>,
    /// Where events for the other instances go.
    forward: Forward,
}

impl State {
    fn epoch_of(&self, user_id: UserId) -> Epoch {
        Epoch {
            revocations: self.revocations.get(&user_id).copied().unwrap_or(0),
            deletions: self.deletions,
        }
    }

    fn revoke(&mut self, user_id: UserId) {
        *self.revocations.entry(user_id).or_default() += 1;
    }

    fn insert_session(&mut self, path: SessionPath, live: Live) {
        *self.per_user.entry(live.user_id).or_default() += 1;
        self.sessions.insert(path, live);
    }

    fn remove_session(&mut self, path: &SessionPath) -> Option<Live> {
        let live = self.sessions.remove(path)?;
        if let Some(n) = self.per_user.get_mut(&live.user_id) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&live.user_id);
            }
        }
        Some(live)
    }
}

/// The hub's revocation count when a caller checked the store. Access granted from a store
/// check is applied only if no revocation happened since (under the hub's lock), so a removal
/// racing a join or a login always wins: the caller gets `Stale` and checks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    revocations: u64,
    deletions: u64,
}

/// A channel as the store knows it, for subscribing to it.
#[derive(Debug, Clone, Copy)]
pub struct RoomRef<'a> {
    pub id: ChannelId,
    pub name: &'a Name,
    /// The newest sequence number the store has.
    pub stored_last_seq: u64,
}

/// Why the hub did not take a session or subscription.
#[derive(Debug)]
pub enum Refusal {
    /// A revocation happened after the caller's store check: check again.
    Stale,
    Refused(ProtocolError),
}

impl From<ProtocolError> for Refusal {
    fn from(e: ProtocolError) -> Self {
        Self::Refused(e)
    }
}

/// What a connecting session asks for.
#[derive(Debug, Clone)]
pub struct Claim {
    pub user_id: UserId,
    /// Paths of this user and machine live on other instances (none on a server of one).
    pub elsewhere: HashSet<SessionPath>,
    /// `user/machine/handle` as requested.
    pub base: SessionPath,
    pub kind: SessionKind,
    pub policy: OnConflict,
    /// A random id the client keeps for its lifetime: a reconnect carrying the id of the live
    /// session on its path takes that path back; anyone else gets the policy.
    pub instance: Option<String>,
}

/// A newly attached session.
#[derive(Debug, Clone)]
pub struct Attached {
    pub path: SessionPath,
    /// Identifies this connection, so a replaced one cannot detach its successor.
    pub conn: u64,
}

pub struct Hub {
    state: Mutex<State>,
    max_sessions_per_user: usize,
    /// Wakes the gap filler.
    gap_found: Notify,
    /// Wakes the bus when a room gets its first subscriber here.
    interest_grew: Notify,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(super::admission::Limits::default().max_sessions_per_user)
    }
}

impl Hub {
    pub fn new(max_sessions_per_user: usize) -> Self {
        Self {
            state: Mutex::default(),
            max_sessions_per_user,
            gap_found: Notify::new(),
            interest_grew: Notify::new(),
        }
    }

    /// Sends what the other instances must hear of to `forward` from now on. Called before
    /// the first session attaches.
    pub fn forward_to(&self, forward: Forward) {
        self.lock().forward = forward;
    }

    /// The revocation count, read before checking access in the store.
    pub fn epoch(&self, user_id: UserId) -> Epoch {
        self.lock().epoch_of(user_id)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still consistent enough to
        // keep serving; poisoning would take the whole server down with one bad request.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a live session under `user/machine/handle`. When the path is live already,
    /// a session of the same client instance (a reconnect the server has not noticed the end
    /// of) is replaced; any other clash is resolved by the claim's policy.
    pub fn attach(
        &self,
        claim: Claim,
        outbox: Outbox,
        checked: Epoch,
    ) -> Result<Attached, Refusal> {
        let Claim {
            user_id,
            elsewhere,
            base,
            kind,
            policy,
            instance,
        } = claim;
        let mut state = self.lock();
        // Deletions matter to joins, not to logins: someone deleting channels in a loop must
        // not hold up anyone's sign-in.
        if state.epoch_of(user_id).revocations != checked.revocations {
            return Err(Refusal::Stale);
        }
        let mut path = base.clone();
        let mut replacing = false;
        let here = state.sessions.get(&path);
        if here.is_some() || elsewhere.contains(&path) {
            let same_instance = instance.is_some() && here.is_some_and(|l| l.instance == instance);
            let policy = if same_instance {
                OnConflict::Replace
            } else {
                policy
            };
            match policy {
                OnConflict::Refuse => {
                    return Err(ProtocolError::conflict(format!(
                        "{path} is already connected; choose another handle"
                    ))
                    .into());
                }
                OnConflict::Replace => {
                    replacing = true;
                    if let Some(old) = state.remove_session(&path) {
                        old.outbox.control.close(
                            CloseReason::Replaced,
                            format!("{path} connected again from elsewhere"),
                        );
                        Self::drop_from_rooms(&mut state, &path, &old, PresenceChange::Offline);
                    }
                }
                OnConflict::Suffix => {
                    let free = (2..=MAX_SUFFIX)
                        .map(|n| {
                            SessionPath::new(
                                base.user.clone(),
                                base.machine.clone(),
                                base.session.with_suffix(n),
                            )
                        })
                        .find(|p| !state.sessions.contains_key(p) && !elsewhere.contains(p));
                    path = free.ok_or_else(|| {
                        ProtocolError::conflict("too many sessions with this handle")
                    })?;
                }
            }
        }
        let live_now = state.per_user.get(&user_id).copied().unwrap_or(0);
        if !replacing && live_now >= self.max_sessions_per_user {
            return Err(ProtocolError::rate_limited(format!(
                "{} already has {live_now} sessions connected, the most one user may have; close some first",
                base.user
            ))
            .into());
        }
        state.next_conn += 1;
        let conn = state.next_conn;
        state.insert_session(
            path.clone(),
            Live {
                conn,
                user_id,
                kind,
                instance,
                outbox,
                rooms: HashSet::new(),
            },
        );
        Ok(Attached { path, conn })
    }

    /// Removes a session when its connection ends; a no-op if another connection replaced it.
    pub fn detach(&self, attached: &Attached) {
        let mut state = self.lock();
        if state
            .sessions
            .get(&attached.path)
            .is_some_and(|l| l.conn == attached.conn)
        {
            if let Some(live) = state.remove_session(&attached.path) {
                Self::drop_from_rooms(&mut state, &attached.path, &live, PresenceChange::Offline);
            }
        }
    }

    fn drop_from_rooms(state: &mut State, path: &SessionPath, live: &Live, change: PresenceChange) {
        for channel in &live.rooms {
            if let Some(room) = state.rooms.get_mut(channel) {
                room.subscribers.remove(path);
                Self::announce(room, path, live.kind, change);
            }
        }
    }

    /// Tells every other subscriber of `room` about a presence change of `path`.
    /// The other instances hear of it too: `path` is a session of this one.
    fn announce(room: &Room, path: &SessionPath, kind: SessionKind, change: PresenceChange) {
        let others_here = room.subscribers.keys().any(|p| p != path);
        if !others_here && !room.forward.is_on() {
            return;
        }
        let event = PresenceEvent {
            channel: room.name.clone(),
            session: SessionInfo {
                path: path.clone(),
                kind,
            },
            change,
        };
        let Ok(bytes) = codec::encode(&ServerFrame::Presence(event.clone())) else {
            return;
        };
        let bytes = Bytes::from(bytes);
        for (p, sub) in &room.subscribers {
            if p != path {
                sub.outbox.deliver(bytes.clone());
            }
        }
        room.forward.send(Outgoing::Presence {
            channel: room.id,
            event,
            frame: bytes,
        });
    }

    /// Starts delivering `channel` to the session. `joined` builds the answer from the room's
    /// newest sequence number; it is queued before any live message of the room, so the client
    /// sees exactly where live delivery starts.
    pub fn subscribe(
        &self,
        room: RoomRef<'_>,
        attached: &Attached,
        change: PresenceChange,
        checked: Epoch,
        joined: impl FnOnce(u64) -> ServerFrame,
    ) -> Result<(), Refusal> {
        let RoomRef {
            id: channel_id,
            name: channel,
            stored_last_seq,
        } = room;
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(live) = state
            .sessions
            .get_mut(&attached.path)
            .filter(|l| l.conn == attached.conn)
        else {
            return Ok(());
        };
        let user_id = live.user_id;
        if state.epoch_of(user_id) != checked {
            return Err(Refusal::Stale);
        }
        let Some(live) = state.sessions.get_mut(&attached.path) else {
            return Ok(());
        };
        let forward = &state.forward;
        let room = state
            .rooms
            .entry(channel_id)
            .or_insert_with(|| Room::new(channel_id, channel.clone(), forward.clone()));
        let gap = room.note_stored(stored_last_seq);
        live.outbox.deliver_frame(&joined(room.last_seq));
        if room.subscribers.is_empty() {
            self.interest_grew.notify_one();
        }
        let already = room.subscribers.contains_key(&attached.path);
        live.rooms.insert(channel_id);
        room.subscribers.insert(
            attached.path.clone(),
            Subscriber {
                user_id: live.user_id,
                kind: live.kind,
                outbox: live.outbox.clone(),
            },
        );
        if !already {
            Self::announce(room, &attached.path, live.kind, change);
        }
        if gap {
            state.gaps.insert(channel_id);
            self.gap_found.notify_one();
        }
        Ok(())
    }

    /// Stops delivering `channel` to the session. Returns whether another session of the same
    /// user still receives it (then the user stays a member).
    pub fn unsubscribe(&self, channel_id: ChannelId, attached: &Attached) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(live) = state
            .sessions
            .get_mut(&attached.path)
            .filter(|l| l.conn == attached.conn)
        else {
            return false;
        };
        live.rooms.remove(&channel_id);
        let (user_id, kind) = (live.user_id, live.kind);
        let Some(room) = state.rooms.get_mut(&channel_id) else {
            return false;
        };
        let others = room
            .subscribers
            .iter()
            .any(|(p, s)| s.user_id == user_id && p != &attached.path);
        if room.subscribers.remove(&attached.path).is_some() {
            let change = if others {
                PresenceChange::Offline
            } else {
                PresenceChange::Left
            };
            Self::announce(room, &attached.path, kind, change);
        }
        others
    }

    /// Fans a stored message out to the channel's subscribers (see `publish_all`).
    pub fn publish(&self, channel_id: ChannelId, message: ChatMessage) {
        self.publish_all([(channel_id, message)]);
    }

    /// Fans stored messages out to their channels' subscribers, and forwards them to the other
    /// instances. Called by the store once per commit, in sequence order: the whole burst goes
    /// out under one lock, so each connection's writer wakes once for it and writes it in one
    /// go.
    pub fn publish_all(&self, messages: impl IntoIterator<Item = (ChannelId, ChatMessage)>) {
        // Encoded outside the lock, once for every recipient.
        let encoded: Vec<(ChannelId, Name, u64, Bytes)> = messages
            .into_iter()
            .filter_map(|(channel_id, message)| {
                let (channel, seq) = (message.channel.clone(), message.seq);
                match codec::encode(&ServerFrame::Message(message)) {
                    Ok(bytes) => Some((channel_id, channel, seq, Bytes::from(bytes))),
                    Err(e) => {
                        tracing::error!(%e, "cannot encode message");
                        None
                    }
                }
            })
            .collect();
        let mut forwarded: Vec<(ChannelId, Vec<(u64, Bytes)>)> = Vec::new();
        let mut guard = self.lock();
        let state = &mut *guard;
        for (channel_id, channel, seq, bytes) in encoded {
            // The room is made even with nobody in it: a join racing this message reads the
            // newest sequence from here, so its answer is never behind what was fanned out.
            let forward = &state.forward;
            let room = state
                .rooms
                .entry(channel_id)
                .or_insert_with(|| Room::new(channel_id, channel, forward.clone()));
            if room.offer(seq, bytes.clone()) {
                state.gaps.insert(channel_id);
                self.gap_found.notify_one();
            }
            if state.forward.is_on() {
                match forwarded.last_mut() {
                    Some((id, frames)) if *id == channel_id => frames.push((seq, bytes)),
                    _ => forwarded.push((channel_id, vec![(seq, bytes)])),
                }
            }
        }
        for (channel, frames) in forwarded {
            state.forward.send(Outgoing::Messages { channel, frames });
        }
    }

    /// Queues an encoded whisper for one session, if it is here.
    pub fn whisper(&self, to: &SessionPath, bytes: &Bytes) -> bool {
        let state = self.lock();
        let Some(live) = state.sessions.get(to) else {
            return false;
        };
        live.outbox.deliver(bytes.clone());
        true
    }

    /// Queues a relay for sessions of `user_id` here other than `sender`: `to`, or else every
    /// one of the `audience` kind. Returns how many got it.
    pub fn relay(
        &self,
        user_id: UserId,
        sender: &SessionPath,
        to: Option<&SessionPath>,
        audience: Audience,
        bytes: &Bytes,
    ) -> usize {
        let kind = match audience {
            Audience::Humans => SessionKind::Human,
            Audience::Agents => SessionKind::Agent,
        };
        let state = self.lock();
        let mut delivered = 0;
        for (path, live) in &state.sessions {
            let picked = match to {
                Some(to) => path == to,
                None => live.kind == kind,
            };
            if picked && live.user_id == user_id && path != sender {
                live.outbox.deliver(bytes.clone());
                delivered += 1;
            }
        }
        delivered
    }

    /// Live sessions on the server, or receiving one channel, sorted by path.
    pub fn who(&self, channel_id: Option<ChannelId>) -> Vec<SessionInfo> {
        // Copied under the lock, sorted after it: fan-out waits only for the copy.
        let state = self.lock();
        let mut out: Vec<SessionInfo> = match channel_id {
            None => state
                .sessions
                .iter()
                .map(|(path, l)| SessionInfo {
                    path: path.clone(),
                    kind: l.kind,
                })
                .collect(),
            Some(id) => state
                .rooms
                .get(&id)
                .map(|room| {
                    room.subscribers
                        .iter()
                        .map(|(path, s)| SessionInfo {
                            path: path.clone(),
                            kind: s.kind,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        drop(state);
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

mod forward;
mod governance;
mod order;
#[cfg(test)]
mod order_tests;
mod remote;
mod revoke;
#[cfg(test)]
mod tests;
