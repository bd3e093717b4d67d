//! The flood run: a paced sender's latency on an otherwise idle server, then the same run while
//! another user sends as fast as it can. One client's flood must not hurt anyone else, so the
//! figure that matters is the ratio of the two p99s, and the paced sender must see no refusal.
//!
//! The flooder is its own user on its own connection, signed in as a `human` session: the
//! bench's own server raises only the agents' send budget (for the throughput runs), so the
//! flooder meets the default one and the server paces it as it would any client. Most of its
//! sends come back `rate_limited`; answering those is the load. It floods a channel of its own,
//! so the seqs the paced run's subscribers count stay the paced sender's.

use std::fmt;
use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::net::link::{LinkError, LinkHandle};
use crate::net::protocol::{ErrorCode, SessionKind};

use super::paced::{Paced, paced, send_frame};
use super::{BODY_LEN, BenchArgs, Clients, WINDOW, channel};

#[derive(Debug, Serialize)]
pub(super) struct Flood {
    /// The paced run on an otherwise idle server.
    idle: Paced,
    /// The same run while the flooder floods.
    flooded: Paced,
    /// `flooded.p99_ms / idle.p99_ms`; absent when the idle p99 is zero.
    p99_ratio: Option<f64>,
    flooder: Flooder,
}

/// What the flooder's sends came to, from its start until the paced run under flood ended.
#[derive(Debug, Default, Serialize)]
struct Flooder {
    /// Sends in flight at once.
    window: usize,
    accepted: u64,
    /// Refused as over the user's send budget: the server's answer to a flood.
    rate_limited: u64,
    /// Refused for another reason, or lost with the connection (which ends the flood early).
    failed: u64,
    /// Answers per second, accepted or refused.
    answers_per_sec: f64,
}

/// How long to wait for the flooder's first refusal (its burst spent) before measuring anyway,
/// as against a server whose budget it never exhausts.
const BURST_WAIT: Duration = Duration::from_secs(10);

pub(super) async fn flood(
    clients: &mut Clients,
    first: &LinkHandle,
    args: &BenchArgs,
) -> Result<Flood> {
    let (rate, seconds, subs) = (args.flood_rate, args.flood_seconds, args.flood_subscribers);
    let idle = paced(clients, first, rate, seconds, subs).await?;
    let stop = CancellationToken::new();
    // Stops the flooder on every way out, an error included.
    let _stop = stop.clone().drop_guard();
    let (flooder, limited) = start_flooder(clients.url.clone(), stop.clone()).await?;
    // Measure once the server is turning the flooder away, not while its burst still lasts.
    let _ = tokio::time::timeout(BURST_WAIT, limited).await;
    let flooded = paced(clients, first, rate, seconds, subs).await?;
    stop.cancel();
    let flooder = flooder.await?;
    Ok(Flood {
        p99_ratio: (idle.p99_ms > 0.0).then(|| flooded.p99_ms / idle.p99_ms),
        idle,
        flooded,
        flooder,
    })
}

/// Registers the flooder and starts it sending into its own channel, `WINDOW` sends in flight,
/// until `stop`. The receiver hears of its first `rate_limited`.
async fn start_flooder(
    url: String,
    stop: CancellationToken,
) -> Result<(JoinHandle<Flooder>, oneshot::Receiver<()>)> {
    let (_, link) = Clients::new(url, SessionKind::Human).await?;
    let name = channel(&link, "flood").await?;
    let text = "x".repeat(BODY_LEN);
    let (limited_tx, limited) = oneshot::channel();
    let task = tokio::spawn(async move {
        let answers = futures_util::stream::repeat(())
            .map(|()| {
                let (link, frame) = (link.clone(), send_frame(&name, text.clone()));
                async move { link.request(frame).await }
            })
            .buffer_unordered(WINDOW)
            .take_until(stop.cancelled_owned());
        let mut answers = std::pin::pin!(answers);
        let mut flooder = Flooder {
            window: WINDOW,
            ..Flooder::default()
        };
        let mut limited_tx = Some(limited_tx);
        let start = Instant::now();
        while let Some(answer) = answers.next().await {
            match answer {
                Ok(_) => flooder.accepted += 1,
                Err(e) if e.code() == Some(ErrorCode::RateLimited) => {
                    flooder.rate_limited += 1;
                    if let Some(tx) = limited_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Err(LinkError::Closed(_)) => {
                    flooder.failed += 1;
                    break;
                }
                Err(_) => flooder.failed += 1,
            }
        }
        let answered = flooder.accepted + flooder.rate_limited + flooder.failed;
        flooder.answers_per_sec = answered as f64 / start.elapsed().as_secs_f64();
        flooder
    });
    Ok((task, limited))
}

impl fmt::Display for Flood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (idle, flooded, flooder) = (&self.idle, &self.flooded, &self.flooder);
        let ratio = self
            .p99_ratio
            .map_or(String::new(), |r| format!(" ({r:.1}x)"));
        write!(
            f,
            "flood       {} msg/s x {} subscribers: p99 {:.2} ms idle, {:.2} ms under flood{ratio}; \
             paced sends refused {}, lost {}, duplicated {} (both runs); \
             flooder (window {}): {} accepted, {} rate limited, {} failed, {:.0} answers/s",
            flooded.rate,
            flooded.subscribers,
            idle.p99_ms,
            flooded.p99_ms,
            idle.refused + flooded.refused,
            idle.lost + flooded.lost,
            idle.duplicated + flooded.duplicated,
            flooder.window,
            flooder.accepted,
            flooder.rate_limited,
            flooder.failed,
            flooder.answers_per_sec,
        )
    }
}
