//! The embedded backend: SQLite through rusqlite, in the data directory or in memory.
//!
//! One thread owns the connection (rusqlite is blocking and not `Sync`); async callers send it
//! jobs and await the answer, so no tokio worker ever waits on the disk. Appends are grouped:
//! every append waiting when the thread wakes goes into one transaction, and each append's
//! continuation runs after the commit, in sequence order — that is what makes "persisted, then
//! acknowledged, then fanned out" cheap. `api.rs` implements the `Store` API, one job per
//! unit of work; the other files hold the queries by concern, on `Db`.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::brakes;
use super::queue::{JOB_BYTES, MAX_QUEUED_BYTES, Room, stopped};
use super::{Append, Publish, now_ms};
use crate::net::names::Name;
use crate::net::protocol::{ProtocolError, Visibility, from_name};

/// How often the writer thread purges messages older than the retention window.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

mod accounts;
mod api;
mod audit;
mod changes;
mod channels;
mod governance;
mod messages;
mod moderation;
mod pins;
mod schema;
mod search;

type DbJob = Box<dyn FnOnce(&mut Db) + Send>;

#[expect(
    clippy::large_enum_variant,
    reason = "appends are nearly every job; boxing them would allocate once per message"
)]
enum Job {
    Call(DbJob),
    Append(Append),
}

/// A job and its share of the queue's bound, given back once the job is done.
type Queued = (Job, OwnedSemaphorePermit);

/// The SQLite store. Cheap to clone; the thread stops when every clone is gone.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: std_mpsc::Sender<Queued>,
    room: Room,
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

impl SqliteStore {
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
            room: Room::new(max_queued_bytes),
        })
    }

    /// Runs `f` on the store thread and returns its result.
    async fn call<R, F>(&self, f: F) -> Result<R, ProtocolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Db) -> Result<R, ProtocolError> + Send + 'static,
    {
        let permit = self.room.reserve(JOB_BYTES).await?;
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
    async fn queue_append(&self, append: Append) {
        let permit = match self.room.reserve(JOB_BYTES + append.text.len()).await {
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

fn writer_thread(mut db: Db, jobs: std_mpsc::Receiver<Queued>, retention: Duration) {
    let mut next_purge = std::time::Instant::now();
    // The search index trails what is stored (see `search.rs`): it catches up whenever the
    // queue is empty, and after every `INDEX_BATCH` messages under a steady load.
    let mut unindexed = true;
    let mut stored_since_index = 0;
    loop {
        if std::time::Instant::now() >= next_purge {
            let cutoff = now_ms() - retention.as_millis() as i64;
            match db.purge(cutoff) {
                Ok(purged) if purged.messages > 0 => tracing::info!(
                    n = purged.messages,
                    "purged messages past the retention window"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(%e, "purge failed"),
            }
            next_purge = std::time::Instant::now() + PURGE_EVERY;
        }
        let first = if unindexed {
            match jobs.try_recv() {
                Ok(job) => job,
                Err(std_mpsc::TryRecvError::Empty) => {
                    unindexed = index_a_batch(&mut db);
                    stored_since_index = 0;
                    continue;
                }
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        } else {
            match jobs.recv_timeout(PURGE_EVERY) {
                Ok(job) => job,
                Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
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
        if !appends.is_empty() {
            unindexed = true;
            stored_since_index += appends.len();
        }
        db.commit_appends(appends);
        drop(permits);
        if stored_since_index >= search::INDEX_BATCH {
            unindexed = index_a_batch(&mut db);
            stored_since_index = 0;
        }
    }
}

/// Indexes a batch of stored messages for search; whether more may wait.
fn index_a_batch(db: &mut Db) -> bool {
    match db.index_pending(search::INDEX_BATCH) {
        Ok(covered) => covered > 0,
        Err(e) => {
            // Searches index what waits before they run, so nothing is lost by waiting.
            tracing::warn!(%e, "cannot index messages for search now");
            false
        }
    }
}

/// The connection and every query. Only the store thread holds one (tests open their own).
struct Db {
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
    Name::try_from(text).map_err(|e| ProtocolError::internal(e.to_string()))
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
