//! Durable state in SQLite: users, machines, channels, memberships, messages, read positions.
//!
//! One thread owns the connection (rusqlite is blocking and not `Sync`); async callers send it
//! jobs and await the answer, so no tokio worker ever waits on the disk. Appends are grouped:
//! every append waiting when the thread wakes goes into one transaction, and each append's
//! continuation runs after the commit, in sequence order — that is what makes "persisted, then
//! acknowledged, then fanned out" cheap. Presence is not stored; the hub keeps it in memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{ChatMessage, ProtocolError, SessionKind, Visibility, from_name};

/// How often the writer thread purges messages older than the retention window.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

mod accounts;
mod audit;
mod brakes;
mod channels;
mod governance;
mod messages;
mod schema;

pub use accounts::{INVITE_TTL_MS, Signer};
pub use audit::{AuditRecord, AuditScope, ServerBan};
pub use governance::{Ban, until};

pub type UserId = i64;
pub type ChannelId = i64;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    pub user: Name,
    pub machine: Name,
    /// Some machine of the user has a human key: the user's `human` sessions must sign in
    /// with one.
    pub uses_human_keys: bool,
    /// The key looked up is that human key (not the machine key).
    pub is_human_key: bool,
    /// A server admin's ban in force.
    pub banned: Option<ServerBan>,
}

/// A channel row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub name: Name,
    pub visibility: Visibility,
    pub creator_id: UserId,
    pub last_seq: u64,
    pub topic: String,
    pub archived: bool,
}

/// What a join needs to know.
#[derive(Debug, Clone)]
pub struct Joining {
    pub channel: Channel,
    /// The user was not a member before.
    pub new_member: bool,
    pub read_seq: u64,
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<ChatMessage>,
    /// More messages match than this page holds.
    pub more: bool,
}

/// One message to store.
pub struct Append {
    pub channel: Name,
    pub sender_id: UserId,
    pub from: SessionPath,
    /// The brakes apply to `agent` sessions only.
    pub kind: SessionKind,
    pub client_id: String,
    pub text: String,
    /// Runs on the store thread after the commit (or the failure), in sequence order, before
    /// the commit's messages are published.
    pub then: Box<dyn FnOnce(Result<Appended, ProtocolError>) + Send>,
}

/// A stored message and whether this append stored it (false: an earlier one with the same
/// client id did).
#[derive(Debug, Clone)]
pub struct Appended {
    pub channel_id: ChannelId,
    pub message: ChatMessage,
    pub duplicate: bool,
}

type DbJob = Box<dyn FnOnce(&mut Db) + Send>;

enum Job {
    Call(DbJob),
    Append(Append),
}

/// A job and its share of the queue's bound, given back once the job is done.
type Queued = (Job, OwnedSemaphorePermit);

/// Bytes of work that may wait for the store thread across all connections. Past it callers
/// wait for room (and their connections stop being read), instead of growing the server.
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// What a job counts against the bound beside its message body.
const JOB_BYTES: usize = 256;

/// Where stored messages go after each commit (the hub's fan-out), once per commit with every
/// new message of it in sequence order, after each sender has been acknowledged.
pub type Publish = Box<dyn Fn(Vec<Appended>) + Send>;

/// The async face of the store. Cheap to clone; the thread stops when every clone is gone.
#[derive(Clone)]
pub struct Store {
    jobs: std_mpsc::Sender<Queued>,
    room: Arc<Semaphore>,
    /// The bound `room` started with: no single job may need more.
    max_queued_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot bring the database at {path} up to this version's schema: {source}")]
    Migrate {
        path: String,
        source: rusqlite_migration::Error,
    },
}

impl Store {
    /// Opens (or creates) the database in `dir`, or an in-memory one, and starts its thread.
    pub fn open(
        dir: Option<&Path>,
        retention: Duration,
        publish: Publish,
    ) -> Result<Self, StoreError> {
        Self::open_bounded(dir, retention, publish, MAX_QUEUED_BYTES)
    }

    /// `open` with another bound on queued work (tests make it small).
    pub fn open_bounded(
        dir: Option<&Path>,
        retention: Duration,
        publish: Publish,
        max_queued_bytes: usize,
    ) -> Result<Self, StoreError> {
        let mut db = Db::open(dir)?;
        db.publish = publish;
        let (jobs, rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("conclave-store".into())
            .spawn(move || writer_thread(db, rx, retention))
            .map_err(|source| StoreError::Dir {
                path: "store thread".into(),
                source,
            })?;
        Ok(Self {
            jobs,
            room: Arc::new(Semaphore::new(max_queued_bytes)),
            max_queued_bytes,
        })
    }

    /// Waits until `bytes` more fit in the queue.
    async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ProtocolError> {
        let bytes = u32::try_from(bytes.min(self.max_queued_bytes)).unwrap_or(u32::MAX);
        self.room
            .clone()
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| stopped())
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ProtocolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Db) -> Result<R, ProtocolError> + Send + 'static,
    {
        let permit = self.reserve(JOB_BYTES).await?;
        let (tx, rx) = oneshot::channel();
        let job: DbJob = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.jobs
            .send((Job::Call(job), permit))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Queues a message for storage, waiting for room in the queue first; `append.then` runs
    /// once it is committed or has failed.
    pub async fn append(&self, append: Append) {
        let permit = match self.reserve(JOB_BYTES + append.text.len()).await {
            Ok(permit) => permit,
            Err(e) => return (append.then)(Err(e)),
        };
        if let Err(std_mpsc::SendError((Job::Append(append), _))) =
            self.jobs.send((Job::Append(append), permit))
        {
            (append.then)(Err(stopped()));
        }
    }
}

fn stopped() -> ProtocolError {
    ProtocolError::internal("the store has stopped")
}

fn writer_thread(mut db: Db, jobs: std_mpsc::Receiver<Queued>, retention: Duration) {
    let mut next_purge = std::time::Instant::now();
    loop {
        if std::time::Instant::now() >= next_purge {
            let cutoff = now_ms() - retention.as_millis() as i64;
            if let Err(e) = db.purge_audit_older_than(cutoff) {
                tracing::warn!(%e, "audit purge failed");
            }
            match db.purge_older_than(cutoff) {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "purged messages past the retention window"),
                Err(e) => tracing::warn!(%e, "purge failed"),
            }
            next_purge = std::time::Instant::now() + PURGE_EVERY;
        }
        let first = match jobs.recv_timeout(PURGE_EVERY) {
            Ok(job) => job,
            Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut appends = Vec::new();
        // Given back after the commit, so queued-but-uncommitted appends still count.
        let mut permits = Vec::new();
        let mut job = Some(first);
        while let Some((next, permit)) = job.take() {
            match next {
                Job::Call(f) => {
                    // Keep order: appends queued before this call commit first.
                    db.commit_appends(std::mem::take(&mut appends));
                    permits.clear();
                    f(&mut db);
                    drop(permit);
                }
                Job::Append(a) => {
                    appends.push(a);
                    permits.push(permit);
                }
            }
            if appends.len() < MAX_GROUP {
                job = jobs.try_recv().ok();
            }
        }
        db.commit_appends(appends);
        drop(permits);
    }
}

/// The connection and every query. Only the store thread holds one (tests open their own).
pub struct Db {
    conn: Connection,
    publish: Publish,
    brakes: brakes::Brakes,
}

fn internal(e: rusqlite::Error) -> ProtocolError {
    tracing::error!(%e, "database error");
    ProtocolError::internal(format!("the server could not use its database: {e}"))
}

fn visibility_from(text: &str) -> Visibility {
    from_name(text).unwrap_or(Visibility::Public)
}

fn name_from(text: String) -> Result<Name, ProtocolError> {
    Name::parse("stored name", &text).map_err(|e| ProtocolError::internal(e.to_string()))
}

impl Db {
    pub fn open(dir: Option<&Path>) -> Result<Self, StoreError> {
        let (conn, label) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
                let path = dir.join("conclave.db");
                (Connection::open(&path), path.display().to_string())
            }
            None => (Connection::open_in_memory(), ":memory:".to_owned()),
        };
        let open_err = |source| StoreError::Open {
            path: label.clone(),
            source,
        };
        let conn = conn.map_err(open_err)?;
        // WAL + NORMAL: a commit survives the process being killed (the WAL is in the OS page
        // cache); only a power cut can lose the newest commits. foreign_keys for cascades.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(open_err)?;
        let mut conn = conn;
        schema::migrate(&mut conn).map_err(|source| StoreError::Migrate {
            path: label.clone(),
            source,
        })?;
        Ok(Self {
            conn,
            publish: Box::new(|_| {}),
            brakes: brakes::Brakes::default(),
        })
    }

    /// The id this database belongs to, if it was ever started (see `server::server_id`).
    pub fn stored_server_id(&mut self) -> Result<Option<String>, ProtocolError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(internal)
    }

    pub fn save_server_id(&mut self, id: &str) -> Result<(), ProtocolError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('server_id', ?1)",
                [id],
            )
            .map_err(internal)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
