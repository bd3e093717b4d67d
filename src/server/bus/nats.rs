//! A core NATS client, just what the bus needs: publish bytes to a subject, keep a set of
//! subscriptions, receive messages, and reconnect by itself (subscribing again and saying so,
//! so the bus can fill what it missed).
//!
//! Core NATS's text protocol is a handful of lines (`INFO`, `CONNECT`, `PUB`, `SUB`, `UNSUB`,
//! `MSG`, `PING`, `PONG`); speaking it here keeps the dependency tree to one version of each
//! crate, which the `async-nats` crate (with its own TLS and random-number stacks) would not.
//! Everything is bounded: publishes wait in a queue of fixed length and are dropped when it is
//! full or the server is away (the bus is a lossy notifier by design), and incoming messages
//! larger than `MAX_INCOMING_PAYLOAD` end the connection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Publishes that may wait for the connection; past it they are dropped.
const MAX_QUEUED_PUBLISHES: usize = 4096;

/// The longest protocol line accepted from the server (an `INFO` line lists cluster URLs).
const MAX_LINE: u64 = 64 * 1024;

/// The largest message payload accepted. The bus never publishes more than `MAX_PAYLOAD`.
const MAX_INCOMING_PAYLOAD: usize = 8 * 1024 * 1024;

/// The most the bus puts in one message: under NATS's default `max_payload` of 1 MiB.
pub const MAX_PAYLOAD: usize = 512 * 1024;

/// How often the client pings; a server that leaves two pings unanswered is given up.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a connection attempt (TCP and handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the client hands the bus.
#[derive(Debug)]
pub enum Incoming {
    /// Connected (again): every subscription is in place; anything published meanwhile was
    /// missed.
    Connected,
    Message {
        subject: String,
        payload: Bytes,
    },
}

struct Publish {
    subject: String,
    payload: Bytes,
}

/// The subjects the bus wants, shared with the connection task, which follows them.
#[derive(Default)]
struct Interest {
    subjects: Mutex<HashSet<String>>,
    changed: Notify,
}

/// A handle on the connection task. Cheap to clone.
#[derive(Clone)]
pub struct Nats {
    publishes: mpsc::Sender<Publish>,
    interest: Arc<Interest>,
    connected: Arc<AtomicBool>,
}

impl Nats {
    /// Connects to `url` (`nats://HOST:PORT`); an unreachable server is an error here, at
    /// start. Later losses are retried for as long as `shutdown` has not fired.
    pub async fn connect(
        url: &str,
        shutdown: CancellationToken,
    ) -> Result<(Self, mpsc::Receiver<Incoming>)> {
        let address = address_of(url)?;
        let interest = Arc::new(Interest::default());
        let (publish_tx, publish_rx) = mpsc::channel(MAX_QUEUED_PUBLISHES);
        let (incoming_tx, incoming_rx) = mpsc::channel(MAX_QUEUED_PUBLISHES);
        let first = tokio::time::timeout(CONNECT_TIMEOUT, handshake(&address))
            .await
            .map_err(|_| eyre!("the NATS server at {url} did not answer in time"))?
            .wrap_err_with(|| format!("cannot reach the NATS server at {url}"))?;
        let connected = Arc::new(AtomicBool::new(false));
        let task = Connection {
            address,
            connected: connected.clone(),
            interest: interest.clone(),
            publishes: publish_rx,
            incoming: incoming_tx,
        };
        tokio::spawn(task.run(first, shutdown));
        Ok((
            Self {
                publishes: publish_tx,
                interest,
                connected,
            },
            incoming_rx,
        ))
    }

    /// Queues `payload` for `subject`. Dropped when the queue is full: the bus repairs what it
    /// loses from the database.
    pub fn publish(&self, subject: String, payload: Bytes) {
        if self
            .publishes
            .try_send(Publish { subject, payload })
            .is_err()
        {
            tracing::debug!("NATS publish queue full: a bus message was dropped");
        }
    }

    /// Makes the subscriptions exactly `subjects`.
    pub fn follow(&self, subjects: HashSet<String>) {
        let mut current = self
            .interest
            .subjects
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *current != subjects {
            *current = subjects;
            self.interest.changed.notify_one();
        }
    }

    /// Whether the server is reachable now (so silence from the other instances means
    /// something).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Adds one subscription.
    pub fn subscribe(&self, subject: String) {
        let added = self
            .interest
            .subjects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject);
        if added {
            self.interest.changed.notify_one();
        }
    }
}

/// `HOST:PORT` from `nats://HOST:PORT` (the port defaults to 4222).
fn address_of(url: &str) -> Result<String> {
    let Some(rest) = url.strip_prefix("nats://") else {
        bail!("a bus URL looks like nats://HOST:PORT, not {url:?}");
    };
    let host_port = rest.trim_end_matches('/');
    if host_port.is_empty() || host_port.contains(['/', '@', '?']) {
        bail!("a bus URL looks like nats://HOST:PORT, not {url:?}");
    }
    Ok(
        if host_port
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host_port.to_owned()
        } else {
            format!("{host_port}:4222")
        },
    )
}

/// A connection that has said hello.
struct Link {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
}

/// Connects and completes the handshake: the server's `INFO`, our `CONNECT` (without echo, so
/// an instance never hears its own publishes), and a `PING` answered by `PONG`.
async fn handshake(address: &str) -> Result<Link> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut link = Link {
        reader: BufReader::new(read),
        writer: BufWriter::new(write),
    };
    let info = read_line(&mut link.reader).await?;
    if !info.starts_with("INFO ") {
        bail!("this is not a NATS server (it said {info:?})");
    }
    let connect = concat!(
        r#"CONNECT {"verbose":false,"pedantic":false,"echo":false,"lang":"rust","#,
        r#""name":"conclave","protocol":1,"headers":false}"#,
        "\r\nPING\r\n"
    );
    link.writer.write_all(connect.as_bytes()).await?;
    link.writer.flush().await?;
    loop {
        let line = read_line(&mut link.reader).await?;
        match line.as_str() {
            "PONG" => return Ok(link),
            "+OK" => {}
            _ if line.starts_with("INFO ") => {}
            _ if line.starts_with("-ERR") => bail!("the NATS server refused us: {line}"),
            _ => bail!("unexpected answer from the NATS server: {line:?}"),
        }
    }
}

/// One protocol line, without its `\r\n`.
async fn read_line(reader: &mut BufReader<OwnedReadHalf>) -> Result<String> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        bail!("the NATS server closed the connection");
    }
    if line.last() != Some(&b'\n') {
        bail!("a line from the NATS server was too long");
    }
    let text = String::from_utf8(line).map_err(|_| eyre!("a line from NATS was not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// The task that owns the connection, and reconnects it.
struct Connection {
    address: String,
    connected: Arc<AtomicBool>,
    interest: Arc<Interest>,
    publishes: mpsc::Receiver<Publish>,
    incoming: mpsc::Sender<Incoming>,
}

impl Connection {
    async fn run(mut self, first: Link, shutdown: CancellationToken) {
        let mut link = Some(first);
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Some(live) = link.take() {
                backoff = Duration::from_millis(50);
                let ended = tokio::select! {
                    ended = self.serve(live) => ended,
                    () = shutdown.cancelled() => return,
                };
                self.connected.store(false, Ordering::Relaxed);
                if let Err(e) = ended {
                    tracing::warn!(%e, "lost the NATS server; reconnecting");
                }
            }
            // What was queued for a connection that is gone would arrive out of date.
            while self.publishes.try_recv().is_ok() {}
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match tokio::time::timeout(CONNECT_TIMEOUT, handshake(&self.address)).await {
                Ok(Ok(live)) => {
                    tracing::info!(address = %self.address, "reconnected to NATS");
                    link = Some(live);
                }
                Ok(Err(e)) => tracing::debug!(%e, "NATS still unreachable"),
                Err(_) => tracing::debug!("NATS did not answer in time"),
            }
        }
    }

    /// Runs one connection until it fails.
    async fn serve(&mut self, link: Link) -> Result<()> {
        let Link {
            mut reader,
            mut writer,
        } = link;
        let mut subscribed: HashMap<String, u64> = HashMap::new();
        let mut next_sid = 0u64;
        self.sync_interest(&mut writer, &mut subscribed, &mut next_sid)
            .await?;
        self.connected.store(true, Ordering::Relaxed);
        if self.incoming.send(Incoming::Connected).await.is_err() {
            return Ok(());
        }
        let (pong_tx, mut pong_rx) = mpsc::channel::<()>(8);
        let (seen_pong_tx, mut seen_pong_rx) = mpsc::channel::<()>(8);
        let incoming = self.incoming.clone();
        let reading = read_messages(&mut reader, incoming, pong_tx, seen_pong_tx);
        let writing = async {
            let mut ping = tokio::time::interval(PING_INTERVAL);
            ping.tick().await;
            let mut unanswered = 0u32;
            loop {
                tokio::select! {
                    publish = self.publishes.recv() => {
                        let Some(publish) = publish else { return Ok(()) };
                        write_publish(&mut writer, &publish).await?;
                        while let Ok(more) = self.publishes.try_recv() {
                            write_publish(&mut writer, &more).await?;
                        }
                    }
                    () = self.interest.changed.notified() => {
                        self.sync_interest(&mut writer, &mut subscribed, &mut next_sid).await?;
                    }
                    Some(()) = pong_rx.recv() => writer.write_all(b"PONG\r\n").await?,
                    Some(()) = seen_pong_rx.recv() => unanswered = 0,
                    _ = ping.tick() => {
                        if unanswered >= 2 {
                            bail!("the NATS server stopped answering pings");
                        }
                        unanswered += 1;
                        writer.write_all(b"PING\r\n").await?;
                    }
                }
                writer.flush().await?;
            }
        };
        tokio::select! {
            read = reading => read,
            written = writing => written,
        }
    }

    /// Subscribes to what is wanted and not yet subscribed, and unsubscribes the rest.
    async fn sync_interest(
        &self,
        writer: &mut BufWriter<OwnedWriteHalf>,
        subscribed: &mut HashMap<String, u64>,
        next_sid: &mut u64,
    ) -> Result<()> {
        let wanted = self
            .interest
            .subjects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let stale: Vec<String> = subscribed
            .keys()
            .filter(|s| !wanted.contains(*s))
            .cloned()
            .collect();
        for subject in stale {
            if let Some(sid) = subscribed.remove(&subject) {
                writer
                    .write_all(format!("UNSUB {sid}\r\n").as_bytes())
                    .await?;
            }
        }
        for subject in wanted {
            if let std::collections::hash_map::Entry::Vacant(entry) = subscribed.entry(subject) {
                *next_sid += 1;
                let line = format!("SUB {} {next_sid}\r\n", entry.key());
                writer.write_all(line.as_bytes()).await?;
                entry.insert(*next_sid);
            }
        }
        writer.flush().await?;
        Ok(())
    }
}

async fn write_publish(writer: &mut BufWriter<OwnedWriteHalf>, publish: &Publish) -> Result<()> {
    let head = format!("PUB {} {}\r\n", publish.subject, publish.payload.len());
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(&publish.payload).await?;
    writer.write_all(b"\r\n").await?;
    Ok(())
}

/// Reads the server's lines until the connection fails: messages go to `incoming`, pings are
/// answered through `pong`, and pongs reported through `seen_pong`.
async fn read_messages(
    reader: &mut BufReader<OwnedReadHalf>,
    incoming: mpsc::Sender<Incoming>,
    pong: mpsc::Sender<()>,
    seen_pong: mpsc::Sender<()>,
) -> Result<()> {
    loop {
        let line = read_line(reader).await?;
        if let Some(head) = line.strip_prefix("MSG ") {
            let (subject, size) = parse_msg_head(head)?;
            let mut payload = vec![0; size + 2];
            reader.read_exact(&mut payload).await?;
            payload.truncate(size);
            let message = Incoming::Message {
                subject,
                payload: Bytes::from(payload),
            };
            if incoming.send(message).await.is_err() {
                return Ok(());
            }
        } else if line == "PING" {
            let _ = pong.try_send(());
        } else if line == "PONG" {
            let _ = seen_pong.try_send(());
        } else if line.starts_with("-ERR") {
            bail!("the NATS server reported {line}");
        }
    }
}

/// The subject and payload size of `MSG <subject> <sid> [reply-to] <size>`.
fn parse_msg_head(head: &str) -> Result<(String, usize)> {
    let parts: Vec<&str> = head.split_ascii_whitespace().collect();
    let (subject, size) = match parts.as_slice() {
        [subject, _sid, size] | [subject, _sid, _, size] => (*subject, *size),
        _ => bail!("a malformed MSG line from NATS: {head:?}"),
    };
    let size: usize = size
        .parse()
        .map_err(|_| eyre!("a malformed MSG size from NATS: {head:?}"))?;
    if size > MAX_INCOMING_PAYLOAD {
        bail!("a NATS message of {size} bytes is larger than any the bus sends");
    }
    Ok((subject.to_owned(), size))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bus_urls_name_a_host_and_a_port() {
        assert_eq!(
            address_of("nats://127.0.0.1:4222").unwrap(),
            "127.0.0.1:4222"
        );
        assert_eq!(
            address_of("nats://bus.example/").unwrap(),
            "bus.example:4222"
        );
        assert!(address_of("127.0.0.1:4222").is_err());
        assert!(address_of("nats://").is_err());
        assert!(address_of("nats://user@host:4222").is_err());
    }

    #[test]
    fn msg_lines_give_their_subject_and_size_with_or_without_a_reply_subject() {
        assert_eq!(
            parse_msg_head("conclave.room.7 3 11").unwrap(),
            ("conclave.room.7".to_owned(), 11)
        );
        assert_eq!(
            parse_msg_head("a.b 1 reply.to 0").unwrap(),
            ("a.b".to_owned(), 0)
        );
        assert!(parse_msg_head("a.b 1").is_err());
        assert!(parse_msg_head("a.b 1 x").is_err());
        assert!(parse_msg_head(&format!("a 1 {}", MAX_INCOMING_PAYLOAD + 1)).is_err());
    }
}
