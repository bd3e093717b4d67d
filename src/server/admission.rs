//! Who may take a slot on this server: caps on connections in total and per address, and a
//! rate of registrations per address. Checked before any work is done for a connection, so a
//! flood of them costs a counter each. Sessions per user are capped by the hub (it knows who
//! is who) and channels per user by the store.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::net::protocol::{ProtocolError, SessionKind};

use super::store::UserId;

/// What one server allows; `conclave serve` flags set each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in total (lowered at start to fit the process's file limit).
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_address: usize,
    /// Connections from one IP address that have not signed in yet: idle sockets held open
    /// there cannot use up the server's connection slots.
    pub max_handshakes_per_address: usize,
    /// Connections that have not signed in yet, from everywhere. Past this a new connection
    /// ends the oldest handshake in progress once that one is `STALE_HANDSHAKE` old (a real
    /// client signs in within milliseconds), and waits for room until then: silent sockets
    /// spread over many addresses hold nothing for long, and a burst of real clients (a
    /// restart's reconnects) is let in as fast as it signs in.
    pub max_handshakes: usize,
    /// Live sessions of one user, over all their machines.
    pub max_sessions_per_user: usize,
    /// Channels one user may create (server admins are not limited).
    pub max_channels_per_user: usize,
    /// New accounts from one IP address in an hour.
    pub registrations_per_address_per_hour: usize,
    /// Channel messages one user's `human` sessions may send a minute, together; whispers
    /// have a budget of the same size of their own.
    pub human_sends_per_minute: u32,
    /// The same for the user's `agent` sessions: tighter, since agents can loop.
    pub agent_sends_per_minute: u32,
    /// Moderation acts (and other writes to the audit log) one user may make a minute.
    pub acts_per_minute: u32,
    /// Searches one user may make a minute (each reads an index).
    pub searches_per_minute: u32,
    /// The agent turn budget new channels start with (see `ChannelSetting::AgentTurns`);
    /// 0 is unlimited.
    pub agent_turns: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_address: 512,
            max_handshakes_per_address: 16,
            max_handshakes: 1024,
            max_sessions_per_user: 64,
            max_channels_per_user: 100,
            registrations_per_address_per_hour: 20,
            human_sends_per_minute: 600,
            agent_sends_per_minute: 120,
            acts_per_minute: 60,
            searches_per_minute: 120,
            agent_turns: crate::net::protocol::DEFAULT_AGENT_TURNS,
        }
    }
}

/// File descriptors kept back from connections: the database, its WAL, the listener, logs.
const RESERVED_FDS: u64 = 64;

/// Connections being told they were refused, at most, at once (each holds a descriptor while
/// it hears why, so they are kept back from the cap too).
pub const MAX_REFUSING: usize = 64;

/// Addresses remembered for the registration rate; past this, those with no registration in
/// the last hour are forgotten, and if that is not enough new addresses are refused.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

const HOUR: Duration = Duration::from_secs(3600);

/// Raises the process's open-file limit to its hard maximum and returns the connection cap
/// that fits under it.
pub fn fit_to_file_limit(limits: &mut Limits) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            let fits = files
                .saturating_sub(RESERVED_FDS + MAX_REFUSING as u64)
                .max(1);
            let fits = usize::try_from(fits).unwrap_or(usize::MAX);
            if fits < limits.max_connections {
                tracing::warn!(
                    files,
                    max_connections = fits,
                    "the open-file limit allows fewer connections than asked"
                );
                limits.max_connections = fits;
            }
        }
        Err(e) => tracing::warn!(%e, "cannot raise the open-file limit"),
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Connections per address still in their handshake.
    handshaking: HashMap<IpAddr, usize>,
    /// All connections still in their handshake.
    handshaking_total: usize,
    /// Those handshakes oldest first, by connection number, each with when it began and what
    /// ends it early.
    handshakes: VecDeque<(u64, Instant, CancellationToken)>,
    /// The number the next connection gets.
    next_connection: u64,
    registrations: HashMap<IpAddr, VecDeque<Instant>>,
}

/// What a rate budget is spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spend {
    Send,
    Whisper,
    /// What writes to the audit log: moderation acts, invites, bans, relayed verdicts and
    /// autonomy changes.
    Act,
    Search,
}

/// A token bucket: refills at a steady rate up to a burst; one token per message.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept; past this, the full ones (idle long enough to have refilled) are dropped.
const MAX_BUCKETS: usize = 100_000;

/// The shared counters. Cheap to check; one short lock per connection or message.
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
    buckets: Mutex<HashMap<(UserId, SessionKind, Spend), Bucket>>,
    /// Told whenever a connection or a handshake ends, for the accept loop waiting on a full
    /// server.
    room: tokio::sync::Notify,
}

/// A connection's slot; dropping it frees the slot.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
    connection: u64,
    /// Still counted among its address's handshakes.
    handshaking: std::sync::atomic::AtomicBool,
    /// Fires when newer connections needed this one's place among the handshakes.
    evicted: CancellationToken,
}

impl Slot {
    /// The connection signed in: it no longer counts as a handshake in progress.
    pub fn signed_in(&self) {
        if self
            .handshaking
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.admission
                .lock()
                .end_handshake(self.address, self.connection);
            self.admission.room.notify_one();
        }
    }

    /// Resolves when this connection's handshake was ended to make room for a newer one.
    pub async fn evicted(&self) {
        self.evicted.cancelled().await;
    }
}

impl Counts {
    fn end_handshake(&mut self, address: IpAddr, connection: u64) {
        release(&mut self.handshaking, address);
        self.handshaking_total = self.handshaking_total.saturating_sub(1);
        if let Some(i) = self.handshakes.iter().position(|(c, ..)| *c == connection) {
            self.handshakes.remove(i);
        }
    }

    /// Whether another handshake fits: under the cap, or the oldest one is stale enough to
    /// give way.
    fn handshake_fits(&self, max: usize, now: Instant) -> bool {
        self.handshaking_total < max
            || self
                .handshakes
                .front()
                .is_some_and(|(_, began, _)| now.duration_since(*began) >= STALE_HANDSHAKE)
    }
}

/// How long a handshake may go on before a newer connection may take its place at the cap.
pub const STALE_HANDSHAKE: Duration = Duration::from_secs(1);

/// Takes one off `address`'s count, forgetting addresses that reach zero.
fn release(map: &mut HashMap<IpAddr, usize>, address: IpAddr) {
    if let Some(n) = map.get_mut(&address) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&address);
        }
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
            buckets: Mutex::new(HashMap::new()),
            room: tokio::sync::Notify::new(),
        })
    }

    /// Whether a new connection fits under the total caps (connections, and handshakes in
    /// progress unless the oldest may give way).
    fn has_room(&self) -> bool {
        let counts = self.lock();
        counts.total < self.limits.max_connections
            && counts.handshake_fits(self.limits.max_handshakes, Instant::now())
    }

    /// Waits until a new connection fits under the total caps. The accept loop waits here
    /// rather than refusing, so a burst queues in the listen backlog instead of failing. A
    /// handshake growing stale tells nobody, so the wait looks again now and then.
    pub async fn wait_for_room(&self) {
        while !self.has_room() {
            let _ = tokio::time::timeout(STALE_HANDSHAKE / 10, self.room.notified()).await;
        }
    }

    /// Spends one message of `user`'s budget for `kind` sessions, or says when the next one
    /// fits. Per user, not per session, so reconnecting buys nothing. A burst of a quarter
    /// of a minute's worth goes through at once.
    pub fn spend(
        &self,
        user: UserId,
        kind: SessionKind,
        what: Spend,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let per_minute = match (what, kind) {
            (Spend::Act, _) => self.limits.acts_per_minute,
            (Spend::Search, _) => self.limits.searches_per_minute,
            (_, SessionKind::Human) => self.limits.human_sends_per_minute,
            (_, SessionKind::Agent) => self.limits.agent_sends_per_minute,
        }
        .max(1);
        let rate = f64::from(per_minute) / 60.0;
        let burst = f64::from((per_minute / 4).max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry((user, kind, what)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        let rule = match what {
            Spend::Send => format!("{kind} sessions of a user send at most {per_minute} messages"),
            Spend::Whisper => {
                format!("{kind} sessions of a user send at most {per_minute} whispers")
            }
            Spend::Act => format!("a user makes at most {per_minute} moderation acts"),
            Spend::Search => format!("a user makes at most {per_minute} searches"),
        };
        Err(ProtocolError::retry_after(
            wait,
            format!(
                "rate limited: {rule} a minute; retry in {} ms",
                wait.as_millis().max(1)
            ),
        ))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a new connection from `address`, or says why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, ProtocolError> {
        let mut counts = self.lock();
        if counts.total >= self.limits.max_connections {
            return Err(ProtocolError::rate_limited(format!(
                "the server is full ({} connections, its limit); try again later",
                self.limits.max_connections
            )));
        }
        let from_here = counts.per_address.get(&address).copied().unwrap_or(0);
        if from_here >= self.limits.max_connections_per_address {
            return Err(ProtocolError::rate_limited(format!(
                "{address} already has {from_here} connections open, the most one address may have"
            )));
        }
        let handshaking = counts.handshaking.get(&address).copied().unwrap_or(0);
        if handshaking >= self.limits.max_handshakes_per_address {
            return Err(ProtocolError::rate_limited(format!(
                "{address} already has {handshaking} connections that have not signed in, the most one address may have"
            )));
        }
        // Every handshake slot taken (the accept loop waited until the oldest went stale): it
        // ends (its slot frees when its task sees it), and this connection takes its place.
        if counts.handshaking_total >= self.limits.max_handshakes
            && let Some((_, _, oldest)) = counts.handshakes.pop_front()
        {
            oldest.cancel();
        }
        counts.total += 1;
        counts.handshaking_total += 1;
        *counts.per_address.entry(address).or_default() += 1;
        *counts.handshaking.entry(address).or_default() += 1;
        let connection = counts.next_connection;
        counts.next_connection += 1;
        let evicted = CancellationToken::new();
        counts
            .handshakes
            .push_back((connection, Instant::now(), evicted.clone()));
        Ok(Slot {
            admission: self.clone(),
            address,
            connection,
            handshaking: std::sync::atomic::AtomicBool::new(true),
            evicted,
        })
    }

    /// Takes one of `address`'s registrations for this hour, or refuses. Taken before the
    /// account is made, so concurrent attempts cannot all pass; `unregister` gives it back
    /// when nothing was made.
    pub fn register(&self, address: IpAddr, now: Instant) -> Result<(), ProtocolError> {
        let limit = self.limits.registrations_per_address_per_hour;
        let mut counts = self.lock();
        if counts.registrations.len() >= MAX_TRACKED_ADDRESSES
            && !counts.registrations.contains_key(&address)
        {
            counts
                .registrations
                .retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < HOUR));
            if counts.registrations.len() >= MAX_TRACKED_ADDRESSES {
                return Err(ProtocolError::rate_limited(
                    "the server is taking too many registrations; try again later",
                ));
            }
        }
        let times = counts.registrations.entry(address).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            let wait = times
                .front()
                .map(|t| HOUR.saturating_sub(now.duration_since(*t)))
                .unwrap_or(HOUR);
            return Err(ProtocolError::rate_limited(format!(
                "{limit} accounts were registered from {address} in the last hour, the most allowed; try again in {} minutes",
                wait.as_secs().div_ceil(60)
            )));
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives back a registration taken at `at` that made no account (a taken name, say), so
    /// a person retrying is not locked out.
    pub fn unregister(&self, address: IpAddr, at: Instant) {
        let mut counts = self.lock();
        if let Some(times) = counts.registrations.get_mut(&address) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
        }
    }

    /// Open connections now.
    pub fn connections(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total = counts.total.saturating_sub(1);
        release(&mut counts.per_address, self.address);
        if *self.handshaking.get_mut() {
            counts.end_handshake(self.address, self.connection);
        }
        drop(counts);
        self.admission.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::protocol::ErrorCode;

    fn limits() -> Limits {
        Limits {
            max_connections: 3,
            max_connections_per_address: 2,
            registrations_per_address_per_hour: 2,
            ..Limits::default()
        }
    }

    #[test]
    fn connections_are_capped_per_address_and_in_total_and_slots_come_back() {
        let admission = Admission::new(limits());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        let refused = admission.admit(a).err().unwrap();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.message.contains("127.0.0.1 already has 2"));
        let _third = admission.admit(b).unwrap();
        let full = admission.admit(b).err().unwrap();
        assert!(full.message.contains("the server is full"), "{full}");
        drop(first);
        assert_eq!(admission.connections(), 2);
        assert!(admission.admit(a).is_ok());
    }

    #[test]
    fn connections_that_never_sign_in_are_capped_per_address() {
        let admission = Admission::new(Limits {
            max_handshakes_per_address: 2,
            ..Limits::default()
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        let refused = admission.admit(a).err().unwrap();
        assert!(refused.message.contains("not signed in"), "{refused}");
        // Signing in frees the handshake slot (once), not the connection.
        first.signed_in();
        first.signed_in();
        let third = admission.admit(a).unwrap();
        assert_eq!(admission.connections(), 3);
        assert!(admission.admit(a).is_err());
        // A connection that ends mid-handshake gives its slot back too.
        drop(third);
        assert!(admission.admit(a).is_ok());
    }

    #[test]
    fn searches_have_a_budget_of_their_own() {
        let admission = Admission::new(Limits {
            searches_per_minute: 8,
            ..Limits::default()
        });
        let start = Instant::now();
        for _ in 0..2 {
            admission
                .spend(1, SessionKind::Human, Spend::Search, start)
                .unwrap();
        }
        let refused = admission
            .spend(1, SessionKind::Human, Spend::Search, start)
            .unwrap_err();
        assert!(
            refused.message.contains("at most 8 searches a minute"),
            "{refused}"
        );
        assert!(
            admission
                .spend(1, SessionKind::Human, Spend::Send, start)
                .is_ok()
        );
    }

    #[test]
    fn messages_come_from_a_per_user_budget_that_refills_and_says_when() {
        let admission = Admission::new(Limits {
            agent_sends_per_minute: 60,
            ..Limits::default()
        });
        let start = Instant::now();
        // A burst of a quarter minute's worth, then one a second.
        for _ in 0..15 {
            admission
                .spend(1, SessionKind::Agent, Spend::Send, start)
                .unwrap();
        }
        let refused = admission
            .spend(1, SessionKind::Agent, Spend::Send, start)
            .unwrap_err();
        assert_eq!(refused.code, crate::net::protocol::ErrorCode::RateLimited);
        assert_eq!(refused.retry_after_ms, Some(1000));
        assert!(
            refused.message.contains("at most 60 messages a minute"),
            "{refused}"
        );
        // Whispers, audited acts, people and other users have budgets of their own.
        assert!(
            admission
                .spend(1, SessionKind::Agent, Spend::Whisper, start)
                .is_ok()
        );
        for _ in 0..15 {
            admission
                .spend(1, SessionKind::Agent, Spend::Act, start)
                .unwrap();
        }
        let refused = admission
            .spend(1, SessionKind::Agent, Spend::Act, start)
            .unwrap_err();
        assert!(
            refused
                .message
                .contains("at most 60 moderation acts a minute"),
            "{refused}"
        );
        assert!(
            admission
                .spend(1, SessionKind::Human, Spend::Send, start)
                .is_ok()
        );
        assert!(
            admission
                .spend(2, SessionKind::Agent, Spend::Send, start)
                .is_ok()
        );
        let later = start + Duration::from_secs(1);
        assert!(
            admission
                .spend(1, SessionKind::Agent, Spend::Send, later)
                .is_ok()
        );
        assert!(
            admission
                .spend(1, SessionKind::Agent, Spend::Send, later)
                .is_err()
        );
    }

    #[test]
    fn registrations_are_rate_limited_per_address_per_hour() {
        let admission = Admission::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let start = Instant::now();
        admission.register(a, start).unwrap();
        // One that made nothing is given back.
        let failed = start + Duration::from_secs(30);
        admission.register(a, failed).unwrap();
        admission.unregister(a, failed);
        admission
            .register(a, start + Duration::from_secs(60))
            .unwrap();
        let refused = admission
            .register(a, start + Duration::from_secs(120))
            .err()
            .unwrap();
        assert!(
            refused.message.contains("try again in 58 minutes"),
            "{refused}"
        );
        admission
            .register("10.0.0.2".parse().unwrap(), start)
            .unwrap();
        admission.register(a, start + HOUR).unwrap();
    }

    #[test]
    fn at_the_handshake_cap_only_a_stale_handshake_gives_way_to_a_new_connection() {
        let admission = Admission::new(Limits {
            max_handshakes: 2,
            ..Limits::default()
        });
        let at = |last: u8| IpAddr::from([127, 0, 0, last]);
        let oldest = admission.admit(at(1)).unwrap();
        let _next = admission.admit(at(2)).unwrap();
        let now = Instant::now();
        assert!(!admission.lock().handshake_fits(2, now), "both are fresh");
        assert!(admission.lock().handshake_fits(2, now + STALE_HANDSHAKE));
        let _newcomer = admission.admit(at(3)).unwrap();
        assert!(oldest.evicted.is_cancelled(), "the oldest handshake ends");
        // One that signed in is no handshake: it is never ended for room.
        oldest.signed_in();
        assert_eq!(admission.lock().handshakes.len(), 2);
    }
}
