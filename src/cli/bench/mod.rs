//! `conclave bench`: a load tool that prints figures (it asserts nothing).
//!
//! Starts its own `conclave serve --ephemeral` child (or uses `--server URL`) and measures,
//! through the same link every client uses:
//! - memory per idle authenticated session (server RSS delta over N sessions; own server only);
//! - fan-out: one sender posts as fast as it can to S subscribers: deliveries/s, losses,
//!   end-to-end latency (each message carries its send time);
//! - latency at a paced rate with many subscribers;
//! - the same at a modest rate, idle and while another user floods (see `flood`);
//! - acknowledged sends/s from concurrent senders (each ack follows the database commit).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::net::identity::{Identity, random_bytes};

mod flood;
mod paced;
mod probe;

use crate::net::link::{LinkConfig, LinkEvent, LinkHandle, Login};
use crate::net::names::Name;
use crate::net::protocol::{SessionKind, Visibility};
use crate::net::servers::server_urls;
use crate::net::ws::spawn_link;
use paced::{Paced, paced};
use probe::{Probe, Seen, cpu_seconds, stamped_body};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Measure this server instead of starting one (memory is then not measured); several
    /// instances of one server, separated by commas, share the subscribers in turn
    #[arg(long)]
    server: Option<String>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Messages per fan-out run
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Subscriber counts for the fan-out runs
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    subscribers: Vec<usize>,
    /// Rate of the paced latency run, in messages per second
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Subscribers in the paced latency run
    #[arg(long, default_value_t = 100)]
    paced_subscribers: usize,
    /// Length of the paced latency run, in seconds
    #[arg(long, default_value_t = 5)]
    paced_seconds: u64,
    /// Rate of the paced sender in the flood run (idle, then under flood), in messages per
    /// second
    #[arg(long, default_value_t = 50)]
    flood_rate: u64,
    /// Subscribers of the paced sender in the flood run
    #[arg(long, default_value_t = 10)]
    flood_subscribers: usize,
    /// Length of each half of the flood run, in seconds
    #[arg(long, default_value_t = 5)]
    flood_seconds: u64,
    /// Concurrent senders in the acknowledged-sends run
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Idle sessions for the memory run
    #[arg(long, default_value_t = 2000)]
    sessions: usize,
    /// Run the bench's own server on SQLite in a temporary directory instead of in memory
    #[arg(long, conflicts_with = "server")]
    durable: bool,
}

/// Sends in flight per sender: enough to keep the pipe full without unbounded queues.
const WINDOW: usize = 256;

/// Message bodies are about this long, like a short chat line.
const BODY_LEN: usize = 100;

#[derive(Debug, Serialize)]
struct FanOut {
    subscribers: usize,
    messages: u64,
    deliveries: u64,
    /// Seqs some subscriber never got, counted per subscriber.
    lost: u64,
    /// Seqs some subscriber got more than once.
    duplicated: u64,
    deliveries_per_sec: f64,
    /// Server CPU (user + system) per delivery, own server only.
    server_cpu_us_per_delivery: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Acked {
    senders: usize,
    window_per_sender: usize,
    messages: u64,
    /// Sends that failed (refused or lost), reported rather than left out.
    failed: u64,
    acked_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Memory {
    sessions: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_session: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    memory: Option<Memory>,
    fan_out: Vec<FanOut>,
    paced: Paced,
    flood: flood::Flood,
    acked: Acked,
}

/// The bench's view of a server: where it is, and its pid when it is our child.
struct Target {
    url: String,
    pid: Option<u32>,
    /// Declared before `_data`: the server stops before its directory is removed.
    _child: Option<tokio::process::Child>,
    _data: Option<TempData>,
}

/// A data directory for a durable bench server, removed when dropped.
struct TempData(std::path::PathBuf);

impl Drop for TempData {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_server(durable: bool) -> Result<Target> {
    let exe = std::env::current_exe().wrap_err("cannot find the conclave binary")?;
    let mut command = tokio::process::Command::new(exe);
    command.args(["serve", "--bind", "127.0.0.1:0"]);
    let data = if durable {
        let mut tag = [0u8; 8];
        random_bytes(&mut tag)?;
        let dir = std::env::temp_dir().join(format!("conclave-bench-{}", u64::from_le_bytes(tag)));
        command.arg("--data-dir").arg(&dir);
        Some(TempData(dir))
    } else {
        command.arg("--ephemeral");
        None
    };
    let mut child = command
        // Every bench session is one user on one address: lift the caps meant for strangers.
        .args(["--max-sessions-per-user", "1000000"])
        .args(["--max-connections-per-address", "1000000"])
        .args(["--agent-sends-per-minute", "1000000000"])
        // Bench agents post in long runs on purpose; the turn budget would stop them.
        .args(["--agent-turns", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .wrap_err("cannot start the server")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| eyre!("no server stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .wrap_err("the server did not start")??
        .ok_or_else(|| eyre!("the server printed nothing"))?;
    let addr = first
        .strip_prefix("listening on ")
        .ok_or_else(|| eyre!("unexpected server output: {first}"))?;
    Ok(Target {
        url: format!("ws://{addr}"),
        pid: child.id(),
        _child: Some(child),
        _data: data,
    })
}

/// Resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| eyre!("no VmRSS for {pid}"))
}

/// Connected bench clients share one user; each gets its own handle.
struct Clients {
    url: String,
    identity: Arc<Identity>,
    /// Sessions of `kind` share the user's send budget (see `server::admission`).
    kind: SessionKind,
    next: usize,
}

impl Clients {
    /// Registers a new user whose links sign in as `kind` sessions.
    async fn new(url: String, kind: SessionKind) -> Result<(Self, LinkHandle)> {
        let identity = Arc::new(Identity::generate()?);
        let mut tag = [0u8; 4];
        random_bytes(&mut tag)?;
        let user = format!("bench-{:08x}", u32::from_le_bytes(tag));
        let login = Login::Register {
            username: Name::user(&user)?,
            machine: Name::machine("bench")?,
        };
        let mut clients = Self {
            url,
            identity,
            kind,
            next: 0,
        };
        let first = clients.connect_with(login).await?.0;
        Ok((clients, first))
    }

    async fn connect(&mut self) -> Result<(LinkHandle, tokio::sync::mpsc::Receiver<LinkEvent>)> {
        self.connect_with(Login::Key).await
    }

    /// A cheap subscriber to `channel` on its own socket (see `probe`), on the instances of
    /// the server in turn.
    async fn probe(&mut self, channel: &Name) -> Result<Probe> {
        self.next += 1;
        let handle = Name::handle(&format!("p{}", self.next))?;
        let instances = server_urls(&self.url);
        let url = instances
            .get(self.next % instances.len().max(1))
            .ok_or_else(|| eyre!("no server address in `{}`", self.url))?;
        Probe::connect(url, &self.identity, &handle, channel).await
    }

    async fn connect_with(
        &mut self,
        login: Login,
    ) -> Result<(LinkHandle, tokio::sync::mpsc::Receiver<LinkEvent>)> {
        self.next += 1;
        let (link, mut events) = spawn_link(LinkConfig {
            url: self.url.clone(),
            identity: self.identity.clone(),
            handle: Name::handle(&format!("c{}", self.next))?,
            handle_defaulted: true,
            kind: self.kind,
            login,
            persistent: false,
            ca_file: None,
            pin: Default::default(),
        });
        match events.recv().await {
            Some(LinkEvent::Connected { .. }) => Ok((link, events)),
            Some(LinkEvent::Closed { reason }) => bail!(reason),
            other => bail!("unexpected first event {other:?}"),
        }
    }
}

/// A body of `BODY_LEN` bytes stamped with the time it is sent.
fn body(origin: Instant) -> String {
    stamped_body(origin.elapsed(), BODY_LEN)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn channel(first: &LinkHandle, label: &str) -> Result<Name> {
    let mut tag = [0u8; 3];
    random_bytes(&mut tag)?;
    let name = Name::channel(&format!(
        "{label}-{:06x}",
        u32::from_le_bytes([tag[0], tag[1], tag[2], 0])
    ))?;
    // Creating makes the bench user a member, so every bench client (same user) may post
    // without joining, and only subscribers receive.
    first.create_channel(&name, Visibility::Public).await?;
    Ok(name)
}

type Subscribers = Vec<tokio::task::JoinHandle<Seen>>;

/// Connects `n` cheap subscribers to `name` and starts their receive loops.
async fn subscribers(
    clients: &mut Clients,
    name: &Name,
    n: usize,
    expected: u64,
    origin: Instant,
) -> Result<Subscribers> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let probe = clients.probe(name).await?;
        tasks.push(tokio::spawn(probe.receive(
            expected,
            origin,
            Duration::from_secs(10),
        )));
    }
    Ok(tasks)
}

/// Every subscriber's deliveries, added up; latencies sorted.
async fn gather(tasks: Subscribers) -> Seen {
    let mut all = Seen::default();
    for task in tasks {
        if let Ok(seen) = task.await {
            all.unique += seen.unique;
            all.duplicates += seen.duplicates;
            all.latencies.extend(seen.latencies);
            all.last = all.last.max(seen.last);
        }
    }
    all.latencies.sort_by(f64::total_cmp);
    all
}

async fn fan_out(
    clients: &mut Clients,
    first: &LinkHandle,
    server_pid: Option<u32>,
    subs: usize,
    messages: u64,
) -> Result<FanOut> {
    let name = channel(first, "fanout").await?;
    let origin = Instant::now();
    let tasks = subscribers(clients, &name, subs, messages, origin).await?;
    let (sender, _) = clients.connect().await?;
    let cpu_before = server_pid.map(cpu_seconds).transpose()?;
    let start = Instant::now();
    let failures = futures_util::stream::iter(0..messages)
        .map(|_| {
            let sender = sender.clone();
            let name = name.clone();
            async move { sender.send(&name, &body(origin)).await.is_err() }
        })
        .buffer_unordered(WINDOW)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failures > 0 {
        bail!("{failures} sends failed");
    }
    let seen = gather(tasks).await;
    let cpu = match (server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    let elapsed = seen
        .last
        .map_or(Duration::ZERO, |l| l - start)
        .as_secs_f64();
    Ok(FanOut {
        subscribers: subs,
        messages,
        deliveries: seen.unique,
        lost: messages * subs as u64 - seen.unique,
        duplicated: seen.duplicates,
        deliveries_per_sec: if elapsed > 0.0 {
            seen.unique as f64 / elapsed
        } else {
            0.0
        },
        server_cpu_us_per_delivery: cpu
            .filter(|_| seen.unique > 0)
            .map(|seconds| seconds * 1e6 / seen.unique as f64),
        p50_ms: percentile(&seen.latencies, 50.0),
        p99_ms: percentile(&seen.latencies, 99.0),
    })
}

async fn acked(clients: &mut Clients, first: &LinkHandle, senders: usize) -> Result<Acked> {
    let name = channel(first, "acked").await?;
    let per_sender: u64 = 5_000;
    let window = 16;
    let mut links = Vec::new();
    for _ in 0..senders {
        links.push(clients.connect().await?.0);
    }
    let origin = Instant::now();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for link in links {
        let name = name.clone();
        tasks.spawn(async move {
            futures_util::stream::iter(0..per_sender)
                .map(|_| {
                    let link = link.clone();
                    let name = name.clone();
                    async move { link.send(&name, &body(origin)).await.is_ok() }
                })
                .buffer_unordered(window)
                .fold((0u64, 0u64), |(ok, failed), acked| {
                    std::future::ready(if acked {
                        (ok + 1, failed)
                    } else {
                        (ok, failed + 1)
                    })
                })
                .await
        });
    }
    let (mut total, mut failed) = (0u64, 0u64);
    while let Some(done) = tasks.join_next().await {
        let (ok, lost) = done?;
        total += ok;
        failed += lost;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Acked {
        senders,
        window_per_sender: window,
        messages: total,
        failed,
        acked_per_sec: total as f64 / elapsed,
    })
}

async fn memory(clients: &mut Clients, pid: u32, sessions: usize) -> Result<Memory> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let mut links = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        links.push(clients.connect().await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid)?;
    drop(links);
    Ok(Memory {
        sessions,
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_session: after.saturating_sub(before) as f64 / sessions as f64,
    })
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let target = match &args.server {
        Some(url) => Target {
            url: url.clone(),
            pid: None,
            _child: None,
            _data: None,
        },
        None => start_server(args.durable).await?,
    };
    let (mut clients, first) = Clients::new(target.url.clone(), SessionKind::Agent).await?;
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };

    let memory = match target.pid {
        Some(pid) => {
            say(format!(
                "memory: connecting {} idle sessions...",
                args.sessions
            ));
            Some(memory(&mut clients, pid, args.sessions).await?)
        }
        None => None,
    };
    let mut fan = Vec::new();
    for &subs in &args.subscribers {
        say(format!(
            "fan-out: {} messages to {subs} subscribers...",
            args.messages
        ));
        fan.push(fan_out(&mut clients, &first, target.pid, subs, args.messages).await?);
    }
    say(format!(
        "paced: {} msg/s for {} s to {} subscribers...",
        args.rate, args.paced_seconds, args.paced_subscribers
    ));
    let paced = paced(
        &mut clients,
        &first,
        args.rate,
        args.paced_seconds,
        args.paced_subscribers,
    )
    .await?;
    say(format!(
        "flood: {} msg/s for {} s to {} subscribers, idle then while another user floods...",
        args.flood_rate, args.flood_seconds, args.flood_subscribers
    ));
    let flood = flood::flood(&mut clients, &first, &args).await?;
    say(format!("acked: {} concurrent senders...", args.senders));
    let acked = acked(&mut clients, &first, args.senders).await?;
    let report = Report {
        server: if args.durable {
            format!("{} (SQLite)", target.url)
        } else {
            target.url.clone()
        },
        memory,
        fan_out: fan,
        paced,
        flood,
        acked,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!("conclave bench against {}", r.server);
    if let Some(m) = &r.memory {
        println!(
            "memory      {} idle sessions: {:.1} KiB each (server RSS {} -> {} KiB)",
            m.sessions, m.kib_per_session, m.rss_before_kib, m.rss_after_kib
        );
    }
    for f in &r.fan_out {
        let cpu = f.server_cpu_us_per_delivery.map_or(String::new(), |us| {
            format!(", server CPU {us:.2} us/delivery")
        });
        println!(
            "fan-out     {:>3} subscribers x {} msgs: {:>9.0} deliveries/s{cpu}, lost {}, duplicated {}, p50 {:.2} ms, p99 {:.2} ms",
            f.subscribers,
            f.messages,
            f.deliveries_per_sec,
            f.lost,
            f.duplicated,
            f.p50_ms,
            f.p99_ms
        );
    }
    let p = &r.paced;
    println!(
        "paced       {} msg/s x {} subscribers: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, lost {}, duplicated {}, refused {}",
        p.rate, p.subscribers, p.p50_ms, p.p99_ms, p.max_ms, p.lost, p.duplicated, p.refused
    );
    println!("{}", r.flood);
    let a = &r.acked;
    println!(
        "acked       {} senders (window {}): {:.0} acknowledged sends/s ({} messages, {} failed)",
        a.senders, a.window_per_sender, a.acked_per_sec, a.messages, a.failed
    );
}
