//! Delivery in seq order, once, whatever order messages arrive in. On a server of one they
//! arrive in order from the store; with several instances they also arrive over a lossy bus,
//! so a room delivers message `n + 1` only after `n`, drops what it delivered already, holds
//! what comes after a gap, and has the gap filled from the store (`bus::gaps`).

use super::*;

/// Messages held per room while a gap before them is filled; past it later ones are dropped
/// and fetched from the store with the gap.
const MAX_PENDING: usize = 1024;

impl Room {
    pub(super) fn new(id: ChannelId, name: Name, forward: Forward) -> Self {
        Self {
            id,
            name,
            last_seq: 0,
            known_seq: 0,
            pending: BTreeMap::new(),
            subscribers: HashMap::new(),
            forward,
        }
    }

    /// Offers stored message `seq`: delivered when it is the next one, dropped when delivered
    /// already, held when a gap comes first. Returns whether a gap waits to be filled.
    pub(super) fn offer(&mut self, seq: u64, bytes: Bytes) -> bool {
        if self.subscribers.is_empty() {
            self.skip_to(seq);
            return false;
        }
        if seq <= self.last_seq {
            return false;
        }
        self.known_seq = self.known_seq.max(seq);
        if seq == self.last_seq + 1 {
            self.deliver(seq, &bytes);
            self.drain_pending();
        } else if self.pending.len() < MAX_PENDING {
            self.pending.insert(seq, bytes);
        }
        self.known_seq > self.last_seq
    }

    /// The store has messages up to `seq`. Returns whether a gap waits to be filled; with
    /// nobody subscribed there is nothing to fill, and delivery starts after `seq`.
    pub(super) fn note_stored(&mut self, seq: u64) -> bool {
        if self.subscribers.is_empty() {
            self.skip_to(seq);
            return false;
        }
        self.known_seq = self.known_seq.max(seq);
        self.known_seq > self.last_seq
    }

    /// The seqs to fetch from the store: after the first, up to the second.
    pub(super) fn gap(&self) -> Option<(u64, u64)> {
        if self.subscribers.is_empty() || self.known_seq <= self.last_seq {
            return None;
        }
        let upto = match self.pending.keys().next() {
            Some(first) => first - 1,
            None => self.known_seq,
        };
        Some((self.last_seq, upto))
    }

    fn deliver(&mut self, seq: u64, bytes: &Bytes) {
        for sub in self.subscribers.values() {
            sub.outbox.deliver(bytes.clone());
        }
        self.last_seq = seq;
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= self.last_seq {
                entry.remove();
            } else if seq == self.last_seq + 1 {
                let bytes = entry.remove();
                self.deliver(seq, &bytes);
            } else {
                break;
            }
        }
    }

    /// Moves past `seq` without delivering what lies before it (nobody to deliver to, or
    /// messages the store no longer has).
    fn skip_to(&mut self, seq: u64) {
        if seq > self.last_seq {
            self.last_seq = seq;
        }
        self.known_seq = self.known_seq.max(self.last_seq);
        self.drain_pending();
    }
}

impl Hub {
    /// Messages another instance stored, each as its encoded frame, in seq order; delivered
    /// here in order, once.
    pub fn receive_messages(&self, channel_id: ChannelId, frames: Vec<(u64, Bytes)>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(room) = state.rooms.get_mut(&channel_id) else {
            return;
        };
        let mut gap = false;
        for (seq, bytes) in frames {
            gap = room.offer(seq, bytes);
        }
        if gap {
            state.gaps.insert(channel_id);
            self.gap_found.notify_one();
        }
    }

    /// The store holds messages of a channel up to `seq` (a periodic check, or the bus
    /// coming back): anything not delivered yet is a gap to fill.
    pub fn note_stored(&self, channel_id: ChannelId, seq: u64) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(room) = state.rooms.get_mut(&channel_id)
            && room.note_stored(seq)
        {
            state.gaps.insert(channel_id);
            self.gap_found.notify_one();
        }
    }

    /// Waits until some room has a gap.
    pub async fn gap_found(&self) {
        self.gap_found.notified().await;
    }

    /// A room with a gap and the seqs to fetch for it: after `.1`, up to `.2`.
    pub fn next_gap(&self) -> Option<(ChannelId, u64, u64)> {
        let mut state = self.lock();
        while let Some(&channel_id) = state.gaps.iter().next() {
            state.gaps.remove(&channel_id);
            if let Some((after, upto)) = state.rooms.get(&channel_id).and_then(Room::gap) {
                return Some((channel_id, after, upto));
            }
        }
        None
    }

    /// Delivers messages fetched from the store for a gap, in seq order. `complete_through`
    /// says the fetch returned everything stored up to that seq, so what it lacks is gone
    /// (expired or deleted) and is skipped.
    pub fn fill(
        &self,
        channel_id: ChannelId,
        frames: Vec<(u64, Bytes)>,
        complete_through: Option<u64>,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(room) = state.rooms.get_mut(&channel_id) else {
            return;
        };
        for (seq, bytes) in frames {
            if complete_through.is_some() {
                // What the fetch lacks before this message is gone.
                room.skip_to(seq - 1);
            }
            room.offer(seq, bytes);
        }
        if let Some(seq) = complete_through {
            room.skip_to(seq);
        }
        if room.gap().is_some() {
            state.gaps.insert(channel_id);
        }
    }

    /// Marks a room's gap as still to fill (a fetch failed).
    pub fn retry_gap(&self, channel_id: ChannelId) {
        self.lock().gaps.insert(channel_id);
    }

    /// Channels with a subscriber here.
    pub fn subscribed_rooms(&self) -> Vec<ChannelId> {
        let state = self.lock();
        state
            .rooms
            .iter()
            .filter(|(_, room)| !room.subscribers.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Waits until a room gets its first subscriber here.
    pub async fn interest_grew(&self) {
        self.interest_grew.notified().await;
    }
}
