//! The paced run: one sender at a fixed rate, its subscribers measuring latency, loss and
//! duplicates by seq. `conclave bench` runs it alone at a high rate, and `flood` runs it at a
//! modest one, idle and under flood.

use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use serde::Serialize;

use crate::net::link::{LinkError, LinkHandle, new_client_id};
use crate::net::names::Name;
use crate::net::protocol::ClientFrame;

use super::probe::stamped_body;
use super::{BODY_LEN, Clients, channel, gather, percentile, subscribers};

#[derive(Debug, Serialize)]
pub(super) struct Paced {
    pub(super) subscribers: usize,
    pub(super) rate: u64,
    pub(super) messages: u64,
    /// Sends the server refused (rate limited, say); each is also counted lost.
    pub(super) refused: u64,
    pub(super) lost: u64,
    pub(super) duplicated: u64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
}

/// One sender at `rate` msg/s for `seconds` to `subs` subscribers. A send is made once, not
/// retried: a refusal is counted, not waited out.
pub(super) async fn paced(
    clients: &mut Clients,
    first: &LinkHandle,
    rate: u64,
    seconds: u64,
    subs: usize,
) -> Result<Paced> {
    let name = channel(first, "paced").await?;
    let messages = rate * seconds;
    let origin = Instant::now();
    let tasks = subscribers(clients, &name, subs, messages, origin).await?;
    let (sender, _) = clients.connect().await?;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for k in 0..messages {
        // Stamped with when it was due, not when the bench got round to it: a late send
        // shows up as latency instead of hiding.
        let due = start + period * k as u32;
        tokio::time::sleep_until(due).await;
        let text = stamped_body(due.into_std() - origin, BODY_LEN);
        let (sender, frame) = (sender.clone(), send_frame(&name, text));
        sends.spawn(async move { sender.request(frame).await });
    }
    let mut refused = 0;
    while let Some(result) = sends.join_next().await {
        match result? {
            Ok(_) => {}
            Err(LinkError::Server(_)) => refused += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let seen = gather(tasks).await;
    Ok(Paced {
        subscribers: subs,
        rate,
        messages,
        refused,
        lost: messages * subs as u64 - seen.unique,
        duplicated: seen.duplicates,
        p50_ms: percentile(&seen.latencies, 50.0),
        p99_ms: percentile(&seen.latencies, 99.0),
        max_ms: seen.latencies.last().copied().unwrap_or(0.0),
    })
}

/// A send request as `LinkHandle::send` makes it, but answered as it comes: a refusal is not
/// retried.
pub(super) fn send_frame(channel: &Name, text: String) -> ClientFrame {
    ClientFrame::Send {
        id: 0,
        channel: channel.clone(),
        client_id: new_client_id(),
        text,
        reply_to: None,
        change: None,
    }
}
