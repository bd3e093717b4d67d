//! `conclave serve`: the central server.
//!
//! `run` takes a bound listener and a cancel token (tests bind `127.0.0.1:0`); `serve` binds,
//! prints the address, and wires Ctrl-C/SIGTERM to the token. Layout: `ws` upgrades sockets and
//! pumps frames, `session` runs one connection's protocol, `hub` holds presence and fans out,
//! `store` owns the database. Depends only on `net`.

pub mod admission;
pub mod bus;
pub mod hub;
pub mod limit_flags;
pub mod outbox;
pub mod rules;
pub mod server_id;
pub mod session;
pub mod store;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::local::PidLock;
use crate::net::names::Name;

use self::admission::{Admission, Limits, MAX_REFUSING};
use self::bus::{Bus, Cluster};
use self::hub::Hub;
use self::session::Shared;
use self::store::{Appended, Backend, Location};

/// How long shutdown waits for connections to flush and close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything `serve` is told on the command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the database lives; `None` keeps everything in memory (or in `store`).
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL URL: the shared store, instead of SQLite in `data_dir` (which is then
    /// `None`). Several instances may run on one database, given a bus.
    pub store: Option<String>,
    /// A NATS URL: the bus between the instances sharing `store`.
    pub bus: Option<String>,
    /// Users with server-wide administration rights.
    pub admins: Vec<Name>,
    /// How long messages are kept.
    pub retention: Duration,
    /// Ping interval; a peer silent for three of them is reaped.
    pub heartbeat: Duration,
    /// Caps on connections, sessions, channels and registrations.
    pub limits: Limits,
}

/// The ping interval of a server nobody tuned.
pub const DEFAULT_HEARTBEAT: Duration = crate::net::protocol::HEARTBEAT;

impl ServerConfig {
    /// In memory, no admins, 30 days: for tests and benchmarks.
    pub fn ephemeral() -> Self {
        Self {
            data_dir: None,
            store: None,
            bus: None,
            admins: Vec::new(),
            retention: Duration::from_secs(30 * 24 * 3600),
            heartbeat: DEFAULT_HEARTBEAT,
            limits: Limits::default(),
        }
    }
}

/// A server whose store is open and identity settled, ready to accept connections.
pub struct Opened {
    shared: Shared,
    /// Stops the server's own tasks (the bus, the gap filler) once it stops accepting.
    tasks: CancellationToken,
}

/// Opens the store and settles the server's identity. Everything that can refuse to start
/// happens here, before anything is printed or accepted.
pub async fn open(config: ServerConfig) -> Result<Opened> {
    let hub = Arc::new(Hub::new(config.limits.max_sessions_per_user));
    let fan_out = hub.clone();
    let publish = Box::new(move |stored: Vec<Appended>| {
        fan_out.publish_all(stored.into_iter().map(|a| (a.channel_id, a.message)));
    });
    let location = match &config.store {
        Some(url) => Location::Postgres(url),
        None => Location::Sqlite(config.data_dir.as_deref()),
    };
    let store = Backend::open(location, config.retention, publish).await?;
    let server_id = server_id::server_id(&store, config.data_dir.as_deref()).await?;
    let tasks = CancellationToken::new();
    let bus = match &config.bus {
        Some(url) => {
            let bus = Cluster::start(url, &server_id, hub.clone(), store.clone(), tasks.clone());
            bus.await?
        }
        None => Bus::Local,
    };
    tokio::spawn(bus::gaps::fill_gaps(
        hub.clone(),
        store.clone(),
        tasks.clone(),
    ));
    let shared = Shared {
        hub,
        bus,
        store,
        server_id,
        admins: Arc::new(config.admins),
        heartbeat: config.heartbeat,
        admission: Admission::new(config.limits),
    };
    Ok(Opened { shared, tasks })
}

/// Opens the server (see `open`) and accepts connections on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    accept(listener, open(config).await?, shutdown).await
}

/// Accepts connections on `listener` until `shutdown` fires, then tells every session,
/// waits for them to flush (bounded by a timeout) and returns.
pub async fn accept(
    listener: TcpListener,
    opened: Opened,
    shutdown: CancellationToken,
) -> Result<()> {
    let Opened { shared, tasks } = opened;
    let _stop_tasks = tasks.drop_guard();
    let tracker = TaskTracker::new();
    // Refusals in progress: each costs a task while it says why; past this many, a refused
    // connection is simply closed.
    let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
    loop {
        // A full server stops accepting until a connection ends: a burst waits in the
        // backlog rather than being refused.
        tokio::select! {
            () = shared.admission.wait_for_room() => {}
            () = shutdown.cancelled() => break,
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => match shared.admission.admit(peer.ip()) {
                Ok(slot) => {
                    tracker.spawn(ws::serve_connection(
                        stream,
                        peer,
                        slot,
                        shared.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(refusal) => {
                    tracing::debug!(%peer, %refusal, "connection refused");
                    if let Ok(permit) = refusing.clone().try_acquire_owned() {
                        tracker.spawn(async move {
                            ws::refuse_connection(stream, refusal).await;
                            drop(permit);
                        });
                    }
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    Ok(())
}

/// `conclave serve`: binds, prints `listening on ADDR` as the first line of stdout, and runs
/// until Ctrl-C or SIGTERM.
pub async fn serve(bind: &str, mut config: ServerConfig) -> Result<()> {
    admission::fit_to_file_limit(&mut config.limits);
    let listener = TcpListener::bind(bind)
        .await
        .wrap_err_with(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    match &config.data_dir {
        Some(dir) => tracing::info!(data_dir = %dir.display(), "using data directory"),
        None if config.store.is_none() => {
            tracing::info!("ephemeral: nothing is written to disk")
        }
        None => {}
    }
    // Before the store opens: two servers on one database would hand out the same seqs.
    let _lock = match &config.data_dir {
        Some(dir) => Some(PidLock::acquire(dir, &addr.to_string())?),
        None => None,
    };
    let shared_store = config.store.is_some();
    let _claim = match &config.store {
        Some(url) => Some(store::postgres::InstanceClaim::claim(url, config.bus.is_some()).await?),
        None => None,
    };
    let opened = open(config).await?;
    if shared_store {
        // Only once it opened: a URL that does not work ends `serve` with one line.
        tracing::info!("using the shared PostgreSQL store");
    }
    // Only now: whoever waits for this line may rely on a working server.
    println!("listening on {addr}");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    accept(listener, opened, shutdown).await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(%e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
