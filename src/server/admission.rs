//! Who may take a slot on this server: caps on connections in total and per address, and a
//! rate of registrations per address. Checked before any work is done for a connection, so a
//! flood of them costs a counter each. Sessions per user are capped by the hub (it knows who
//! is who) and channels per user by the store.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::net::protocol::ProtocolError;

/// What one server allows; `conclave serve` flags set each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in total (lowered at start to fit the process's file limit).
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_address: usize,
    /// Live sessions of one user, over all their machines.
    pub max_sessions_per_user: usize,
    /// Channels one user may create (server admins are not limited).
    pub max_channels_per_user: usize,
    /// New accounts from one IP address in an hour.
    pub registrations_per_address_per_hour: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_address: 512,
            max_sessions_per_user: 64,
            max_channels_per_user: 100,
            registrations_per_address_per_hour: 20,
        }
    }
}

/// File descriptors kept back from connections: the database, its WAL, the listener, logs.
const RESERVED_FDS: u64 = 64;

/// Addresses remembered for the registration rate; past this, those with no registration in
/// the last hour are forgotten, and if that is not enough new addresses are refused.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

const HOUR: Duration = Duration::from_secs(3600);

/// Raises the process's open-file limit to its hard maximum and returns the connection cap
/// that fits under it.
pub fn fit_to_file_limit(limits: &mut Limits) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            let fits = files.saturating_sub(RESERVED_FDS).max(1);
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
    registrations: HashMap<IpAddr, VecDeque<Instant>>,
}

/// The shared counters. Cheap to check; one short lock per connection.
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// A connection's slot; dropping it frees the slot.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
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
        counts.total += 1;
        *counts.per_address.entry(address).or_default() += 1;
        Ok(Slot {
            admission: self.clone(),
            address,
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
        if let Some(n) = counts.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.address);
            }
        }
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
}
