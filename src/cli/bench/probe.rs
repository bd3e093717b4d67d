//! The bench's receiving side, made cheap so that it measures the server and not itself: one
//! raw WebSocket per subscriber, no link task in between, and each frame only peeked at (its
//! type, seq and the send time at the start of its text, borrowed from the buffer) instead of
//! decoded into owned, re-validated types. Deliveries are accounted per subscriber by seq, so a
//! loss and a duplicate cannot cancel out in a total.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::net::codec;
use crate::net::identity::Identity;
use crate::net::names::Name;
use crate::net::protocol::{
    ClientFrame, MAX_WIRE_BYTES, OnConflict, PROTOCOL_VERSION, ServerFrame, SessionKind,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A subscriber on its own socket, joined to one channel.
pub struct Probe {
    socket: Socket,
}

/// What one subscriber received of seqs `1..=expected`.
#[derive(Debug, Default)]
pub struct Seen {
    pub unique: u64,
    pub duplicates: u64,
    /// Milliseconds from send (stamped in the text) to arrival, one per unique delivery.
    pub latencies: Vec<f64>,
    pub last: Option<Instant>,
}

/// Only what the bench reads of a frame; the rest is skipped without allocating.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    seq: u64,
    #[serde(default, borrow)]
    text: &'a str,
}

async fn next_frame(socket: &mut Socket) -> Result<ServerFrame> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                return Ok(codec::decode_limited(&bytes, MAX_WIRE_BYTES)?);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("probe connection failed: {e}"),
            None => bail!("probe connection closed"),
        }
    }
}

async fn send(socket: &mut Socket, frame: &ClientFrame) -> Result<()> {
    socket
        .send(Message::Binary(codec::encode(frame)?.into()))
        .await?;
    Ok(())
}

impl Probe {
    /// Signs in as `identity` (already enrolled) under `handle` and joins `channel`.
    pub async fn connect(
        url: &str,
        identity: &Identity,
        handle: &Name,
        channel: &Name,
    ) -> Result<Self> {
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_WIRE_BYTES);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        let kind = SessionKind::Agent;
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            handle: handle.clone(),
            kind,
            on_conflict: OnConflict::Suffix,
            instance: None,
        };
        send(&mut socket, &hello).await?;
        let ServerFrame::Challenge { nonce, server_id } = next_frame(&mut socket).await? else {
            bail!("expected a challenge");
        };
        let auth = ClientFrame::Auth {
            public_key: identity.public_key().to_vec(),
            signature: identity
                .sign_challenge(&server_id, &nonce, handle, kind)
                .to_vec(),
        };
        send(&mut socket, &auth).await?;
        match next_frame(&mut socket).await? {
            ServerFrame::Welcome { .. } => {}
            ServerFrame::Error { message, .. } => bail!("probe refused: {message}"),
            other => bail!("expected a welcome, got {}", other.kind()),
        }
        let join = ClientFrame::Join {
            invite: None,
            id: 1,
            channel: channel.clone(),
        };
        send(&mut socket, &join).await?;
        loop {
            match next_frame(&mut socket).await? {
                ServerFrame::Joined { .. } => return Ok(Self { socket }),
                ServerFrame::Error { message, .. } => bail!("probe cannot join: {message}"),
                _ => {}
            }
        }
    }

    /// Receives until every seq of `1..=expected` arrived, or nothing arrived for `idle`.
    pub async fn receive(mut self, expected: u64, origin: Instant, idle: Duration) -> Seen {
        let mut got = vec![false; expected as usize + 1];
        let mut seen = Seen {
            latencies: Vec::with_capacity(expected as usize),
            ..Seen::default()
        };
        while seen.unique < expected {
            let bytes = match tokio::time::timeout(idle, self.socket.next()).await {
                Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) | Err(_) => break,
            };
            let Ok(peek) = rmp_serde::from_slice::<Peek<'_>>(&bytes) else {
                continue;
            };
            if peek.kind != "message" {
                continue;
            }
            let Some(slot) = got.get_mut(peek.seq as usize).filter(|_| peek.seq > 0) else {
                continue;
            };
            if *slot {
                seen.duplicates += 1;
                continue;
            }
            *slot = true;
            seen.unique += 1;
            seen.last = Some(Instant::now());
            if let Some(ms) = latency_ms(origin, peek.text) {
                seen.latencies.push(ms);
            }
        }
        seen
    }
}

/// A body of `len` bytes starting with `at`, the time it is due, in ns since `origin`.
pub fn stamped_body(at: Duration, len: usize) -> String {
    format!(
        "{:020} {}",
        at.as_nanos(),
        "x".repeat(len.saturating_sub(21))
    )
}

fn latency_ms(origin: Instant, text: &str) -> Option<f64> {
    let sent: u128 = text.get(..20)?.parse().ok()?;
    let now = origin.elapsed().as_nanos();
    Some(now.saturating_sub(sent) as f64 / 1e6)
}

/// Seconds of CPU the process has used (user + system), from `/proc`.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| eyre!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| eyre!("short /proc/{pid}/stat"))?
            .parse::<f64>()?)
    };
    let per_second = rustix::param::clock_ticks_per_second() as f64;
    Ok((ticks(11)? + ticks(12)?) / per_second)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::net::names::SessionPath;
    use crate::net::protocol::ChatMessage;

    #[test]
    fn a_peek_reads_type_seq_and_text_of_a_message_frame() {
        let frame = ServerFrame::Message(ChatMessage {
            from_kind: None,
            channel: Name::channel("general").unwrap(),
            seq: 42,
            ts: 1,
            from: SessionPath::parse("a/b/c").unwrap(),
            text: stamped_body(Duration::from_millis(5), 100),
            reply_to: None,
            change: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        });
        let bytes = codec::encode(&frame).unwrap();
        let peek: Peek<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((peek.kind, peek.seq), ("message", 42));
        assert_eq!(peek.text.len(), 100);
        assert!(peek.text.starts_with("00000000000005000000 "));
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let me = std::process::id();
        let start = cpu_seconds(me).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut work = 0u64;
        while cpu_seconds(me).unwrap() <= start {
            for i in 0..100_000u64 {
                work = std::hint::black_box(work.wrapping_mul(31).wrapping_add(i));
            }
            assert!(Instant::now() < deadline, "CPU time never moved");
        }
    }
}
