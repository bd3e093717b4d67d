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

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    ChannelInfo, ChatMessage, MAX_HISTORY_PAGE_BYTES, ProtocolError, Visibility, from_name,
};

/// How often the writer thread purges messages older than the retention window.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

mod accounts;
mod schema;

pub use accounts::INVITE_TTL_MS;

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
}

/// A channel row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub name: Name,
    pub visibility: Visibility,
    pub creator_id: UserId,
    pub last_seq: u64,
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
            match db.purge_older_than(now_ms() - retention.as_millis() as i64) {
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

    pub fn channel(&mut self, name: &Name) -> Result<Option<Channel>, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT id, name, visibility, creator_id, last_seq FROM channels WHERE name = ?1",
            )
            .and_then(|mut s| {
                s.query_row([name.as_str()], |r| {
                    Ok((
                        r.get::<_, ChannelId>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(internal)?
            .map(|(id, name, vis, creator_id, last_seq)| {
                Ok(Channel {
                    id,
                    name: name_from(name)?,
                    visibility: visibility_from(&vis),
                    creator_id,
                    last_seq: last_seq as u64,
                })
            })
            .transpose()
    }

    pub fn is_member(&mut self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM memberships WHERE channel_id = ?1 AND user_id = ?2)",
            )
            .and_then(|mut s| s.query_row(params![channel, user], |r| r.get(0)))
            .map_err(internal)
    }

    /// The channel, if it exists and `user` may see it. Private channels a user is not in are
    /// reported exactly like missing ones, so their names never leak.
    pub fn visible_channel(&mut self, name: &Name, user: UserId) -> Result<Channel, ProtocolError> {
        let not_found = || ProtocolError::not_found(format!("there is no channel #{name}"));
        let channel = self.channel(name)?.ok_or_else(not_found)?;
        if channel.visibility == Visibility::Private && !self.is_member(channel.id, user)? {
            return Err(not_found());
        }
        Ok(channel)
    }

    /// The channel as its manager sees it: server admins see every channel, private or not;
    /// anyone else what `visible_channel` shows them.
    pub fn managed_channel(
        &mut self,
        name: &Name,
        user: UserId,
        admin: bool,
    ) -> Result<Channel, ProtocolError> {
        if admin {
            return self
                .channel(name)?
                .ok_or_else(|| ProtocolError::not_found(format!("there is no channel #{name}")));
        }
        self.visible_channel(name, user)
    }

    pub fn create_channel(
        &mut self,
        name: &Name,
        visibility: Visibility,
        creator: UserId,
        max_per_creator: Option<usize>,
    ) -> Result<ChannelInfo, ProtocolError> {
        let tx = self.conn.transaction().map_err(internal)?;
        if let Some(max) = max_per_creator {
            let made: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM channels WHERE creator_id = ?1",
                    [creator],
                    |r| r.get(0),
                )
                .map_err(internal)?;
            if usize::try_from(made).unwrap_or(usize::MAX) >= max {
                return Err(ProtocolError::rate_limited(format!(
                    "you have created {made} channels, the most one user may; ask a server admin"
                )));
            }
        }
        let now = now_ms();
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO channels (name, visibility, creator_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name.as_str(), visibility.to_string(), creator, now],
            )
            .map_err(internal)?;
        if inserted == 0 {
            // The same words whether or not the caller may see the channel.
            return Err(ProtocolError::conflict(format!(
                "the name #{name} is not available"
            )));
        }
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO memberships (channel_id, user_id, joined_at) VALUES (?1, ?2, ?3)",
            params![id, creator, now],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(ChannelInfo {
            name: name.clone(),
            visibility,
            member: true,
            last_seq: 0,
        })
    }

    /// Public channels, plus every channel the user is a member of.
    /// One page of the channels `user` may see, by name after `after`; `more` says whether
    /// another page follows.
    pub fn list_channels(
        &mut self,
        user: UserId,
        after: Option<&Name>,
        limit: u32,
    ) -> Result<(Vec<ChannelInfo>, bool), ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.name, c.visibility, c.last_seq, m.user_id IS NOT NULL
                 FROM channels c LEFT JOIN memberships m ON m.channel_id = c.id AND m.user_id = ?1
                 WHERE (c.visibility = 'public' OR m.user_id IS NOT NULL) AND c.name > ?2
                 ORDER BY c.name LIMIT ?3",
            )
            .map_err(internal)?;
        let after = after.map(Name::as_str).unwrap_or("");
        let rows = stmt
            .query_map(params![user, after, i64::from(limit) + 1], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .map_err(internal)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, vis, last_seq, member) = row.map_err(internal)?;
            out.push(ChannelInfo {
                name: name_from(name)?,
                visibility: visibility_from(&vis),
                member,
                last_seq: last_seq as u64,
            });
        }
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    /// Makes `user` a member (public and unlisted channels admit anyone; private ones only
    /// their members) and reads this handle's read position.
    pub fn join(
        &mut self,
        name: &Name,
        user: UserId,
        handle: &Name,
    ) -> Result<Joining, ProtocolError> {
        let channel = self.visible_channel(name, user)?;
        let new_member = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO memberships (channel_id, user_id, joined_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![channel.id, user, now_ms()]))
            .map_err(internal)?
            > 0;
        let read_seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM read_positions WHERE user_id = ?1 AND handle = ?2 AND channel_id = ?3")
            .and_then(|mut s| s.query_row(params![user, handle.as_str(), channel.id], |r| r.get(0)).optional())
            .map_err(internal)?;
        Ok(Joining {
            channel,
            new_member,
            read_seq: read_seq.unwrap_or(0) as u64,
        })
    }

    pub fn remove_member(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<bool, ProtocolError> {
        self.conn
            .execute(
                "DELETE FROM memberships WHERE channel_id = ?1 AND user_id = ?2",
                params![channel, user],
            )
            .map(|n| n > 0)
            .map_err(internal)
    }

    pub fn user_id(&mut self, user: &Name) -> Result<UserId, ProtocolError> {
        self.conn
            .prepare_cached("SELECT id FROM users WHERE name = ?1")
            .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)).optional())
            .map_err(internal)?
            .ok_or_else(|| ProtocolError::not_found(format!("there is no user `{user}`")))
    }

    /// Adds a member by name; false if they were one already.
    pub fn add_member(&mut self, channel: ChannelId, user: UserId) -> Result<bool, ProtocolError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO memberships (channel_id, user_id, joined_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![channel, user, now_ms()]))
            .map(|n| n > 0)
            .map_err(internal)
    }

    pub fn members(&mut self, channel: ChannelId) -> Result<Vec<Name>, ProtocolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.name FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = ?1 ORDER BY u.name",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map([channel], |r| r.get::<_, String>(0))
            .map_err(internal)?;
        rows.map(|r| name_from(r.map_err(internal)?)).collect()
    }

    /// A page of history for someone allowed to read the channel (members of private ones,
    /// anyone for the others).
    /// A page of history for someone allowed to read the channel, oldest first, and whether
    /// more messages match. With `after` the page starts right after it; otherwise it ends
    /// right before `before` (or at the newest). Pages stop at `limit` messages or at
    /// `MAX_HISTORY_PAGE_BYTES` of text, whichever comes first (always at least one message).
    pub fn history(
        &mut self,
        channel: &Channel,
        after: Option<u64>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Page, ProtocolError> {
        let forward = after.is_some();
        let after = after.unwrap_or(0) as i64;
        let before = before.map_or(i64::MAX, |b| b as i64);
        let sql = if forward {
            "SELECT seq, ts, sender_path, body FROM messages WHERE channel_id = ?1 AND seq > ?2 AND seq < ?3
             ORDER BY seq ASC LIMIT ?4"
        } else {
            "SELECT seq, ts, sender_path, body FROM messages WHERE channel_id = ?1 AND seq > ?2 AND seq < ?3
             ORDER BY seq DESC LIMIT ?4"
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(internal)?;
        // One row beyond the limit tells whether there is more.
        let rows = stmt
            .query_map(
                params![channel.id, after, before, i64::from(limit) + 1],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .map_err(internal)?;
        let mut messages = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for row in rows {
            let (seq, ts, from, text) = row.map_err(internal)?;
            bytes += text.len();
            if messages.len() >= limit as usize
                || (bytes > MAX_HISTORY_PAGE_BYTES && !messages.is_empty())
            {
                more = true;
                break;
            }
            messages.push(ChatMessage {
                channel: channel.name.clone(),
                seq: seq as u64,
                ts,
                from: SessionPath::parse(&from)
                    .map_err(|e| ProtocolError::internal(e.to_string()))?,
                text,
            });
        }
        if !forward {
            messages.reverse();
        }
        Ok(Page { messages, more })
    }

    pub fn mark_read(
        &mut self,
        user: UserId,
        handle: &Name,
        channel: ChannelId,
        seq: u64,
    ) -> Result<(), ProtocolError> {
        self.conn
            .prepare_cached(
                "INSERT INTO read_positions (user_id, handle, channel_id, seq) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, handle, channel_id) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut s| s.execute(params![user, handle.as_str(), channel, seq as i64]))
            .map_err(internal)?;
        Ok(())
    }

    pub fn purge_older_than(&mut self, cutoff_ms: i64) -> Result<usize, ProtocolError> {
        self.conn
            .execute("DELETE FROM messages WHERE ts < ?1", [cutoff_ms])
            .map_err(internal)
    }

    /// Stores one message inside the caller's transaction.
    fn append_one(
        tx: &rusqlite::Transaction<'_>,
        a: &Append,
        now: i64,
    ) -> Result<Appended, ProtocolError> {
        let channel: Option<(ChannelId, String, i64)> = tx
            .prepare_cached("SELECT id, visibility, last_seq FROM channels WHERE name = ?1")
            .and_then(|mut s| {
                s.query_row([a.channel.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(internal)?;
        let Some((channel_id, visibility, last_seq)) = channel else {
            return Err(ProtocolError::not_found(format!(
                "there is no channel #{}",
                a.channel
            )));
        };
        let member: bool = tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM memberships WHERE channel_id = ?1 AND user_id = ?2)",
            )
            .and_then(|mut s| s.query_row(params![channel_id, a.sender_id], |r| r.get(0)))
            .map_err(internal)?;
        if !member {
            // A private channel a stranger names must look exactly like a missing one.
            if visibility_from(&visibility) == Visibility::Private {
                return Err(ProtocolError::not_found(format!(
                    "there is no channel #{}",
                    a.channel
                )));
            }
            return Err(ProtocolError::forbidden(format!(
                "join #{} before posting to it",
                a.channel
            )));
        }
        let earlier: Option<(i64, i64, String, String)> = tx
            .prepare_cached(
                "SELECT seq, ts, sender_path, body FROM messages
                 WHERE channel_id = ?1 AND sender_id = ?2 AND client_id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![channel_id, a.sender_id, a.client_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(internal)?;
        if let Some((seq, ts, from, text)) = earlier {
            return Ok(Appended {
                channel_id,
                message: ChatMessage {
                    channel: a.channel.clone(),
                    seq: seq as u64,
                    ts,
                    from: SessionPath::parse(&from)
                        .map_err(|e| ProtocolError::internal(e.to_string()))?,
                    text,
                },
                duplicate: true,
            });
        }
        let seq = last_seq + 1;
        tx.prepare_cached(
            "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                channel_id,
                seq,
                now,
                a.sender_id,
                a.from.to_string(),
                a.client_id,
                a.text
            ])
        })
        .map_err(internal)?;
        tx.prepare_cached("UPDATE channels SET last_seq = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![seq, channel_id]))
            .map_err(internal)?;
        Ok(Appended {
            channel_id,
            message: ChatMessage {
                channel: a.channel.clone(),
                seq: seq as u64,
                ts: now,
                from: a.from.clone(),
                text: a.text.clone(),
            },
            duplicate: false,
        })
    }

    /// Commits a group of appends in one transaction, then runs each continuation in order.
    /// A failed commit fails every append in the group: none of them is acknowledged.
    fn commit_appends(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        let now = now_ms();
        let outcome = (|| {
            let tx = self.conn.transaction().map_err(internal)?;
            let results: Vec<_> = appends
                .iter()
                .map(|a| Self::append_one(&tx, a, now))
                .collect();
            tx.commit().map_err(internal)?;
            Ok::<_, ProtocolError>(results)
        })();
        match outcome {
            Ok(results) => {
                let mut stored = Vec::with_capacity(results.len());
                for (append, result) in appends.into_iter().zip(results) {
                    if let Ok(appended) = &result {
                        if !appended.duplicate {
                            stored.push(appended.clone());
                        }
                    }
                    (append.then)(result);
                }
                if !stored.is_empty() {
                    (self.publish)(stored);
                }
            }
            Err(e) => {
                for append in appends {
                    (append.then)(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::protocol::MAX_CHANNEL_PAGE;
    use std::sync::{Arc, Mutex};

    pub(super) fn name(s: &str) -> Name {
        Name::parse("test", s).unwrap()
    }

    pub(super) fn setup() -> (Db, Account) {
        let mut db = Db::open(None).unwrap();
        let alice = db
            .register(&name("alice"), &name("laptop"), &[1; 32])
            .unwrap();
        db.create_channel(&name("general"), Visibility::Public, alice.user_id, None)
            .unwrap();
        (db, alice)
    }

    fn append(
        db: &mut Db,
        who: &Account,
        client_id: &str,
        text: &str,
    ) -> Result<Appended, ProtocolError> {
        let out = Arc::new(Mutex::new(None));
        let sink = out.clone();
        db.commit_appends(vec![Append {
            channel: name("general"),
            sender_id: who.user_id,
            from: SessionPath::new(who.user.clone(), who.machine.clone(), name("cli")),
            client_id: client_id.into(),
            text: text.into(),
            then: Box::new(move |r| *sink.lock().unwrap() = Some(r)),
        }]);
        out.lock().unwrap().take().unwrap()
    }

    #[test]
    fn sequence_numbers_count_up_and_client_ids_deduplicate() {
        let (mut db, alice) = setup();
        let a = append(&mut db, &alice, "c1", "one").unwrap();
        let b = append(&mut db, &alice, "c2", "two").unwrap();
        let again = append(&mut db, &alice, "c1", "one").unwrap();
        assert_eq!((a.message.seq, b.message.seq), (1, 2));
        assert!(again.duplicate);
        assert_eq!(again.message.seq, 1);
        let channel = db.channel(&name("general")).unwrap().unwrap();
        assert_eq!(channel.last_seq, 2);
        assert_eq!(
            db.history(&channel, None, None, 10).unwrap().messages.len(),
            2
        );
    }

    #[test]
    fn history_pages_forward_and_backward() {
        let (mut db, alice) = setup();
        for i in 0..10 {
            append(&mut db, &alice, &format!("c{i}"), &format!("m{i}")).unwrap();
        }
        let channel = db.channel(&name("general")).unwrap().unwrap();
        let seqs = |p: Page| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(db.history(&channel, Some(3), None, 3).unwrap()),
            [4, 5, 6]
        );
        assert_eq!(
            seqs(db.history(&channel, None, None, 3).unwrap()),
            [8, 9, 10]
        );
        assert_eq!(
            seqs(db.history(&channel, None, Some(5), 3).unwrap()),
            [2, 3, 4]
        );
        assert_eq!(
            seqs(db.history(&channel, Some(2), Some(5), 10).unwrap()),
            [3, 4]
        );
    }

    #[test]
    fn history_from_zero_pages_forward_and_says_when_more_remain() {
        let (mut db, alice) = setup();
        for i in 0..5 {
            append(&mut db, &alice, &format!("c{i}"), &format!("m{i}")).unwrap();
        }
        let channel = db.channel(&name("general")).unwrap().unwrap();
        let page = db.history(&channel, Some(0), None, 2).unwrap();
        assert_eq!(
            page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(page.more);
        let page = db.history(&channel, Some(3), None, 2).unwrap();
        assert_eq!(page.messages.len(), 2);
        assert!(!page.more);
    }

    #[test]
    fn history_pages_are_cut_by_size() {
        let (mut db, alice) = setup();
        let big = "x".repeat(crate::net::protocol::MAX_TEXT_BYTES);
        let count = MAX_HISTORY_PAGE_BYTES / big.len() + 3;
        for i in 0..count {
            append(&mut db, &alice, &format!("c{i}"), &big).unwrap();
        }
        let channel = db.channel(&name("general")).unwrap().unwrap();
        let page = db.history(&channel, Some(0), None, 200).unwrap();
        assert!(page.more);
        let bytes: usize = page.messages.iter().map(|m| m.text.len()).sum();
        assert!(bytes <= MAX_HISTORY_PAGE_BYTES, "{bytes}");
        assert_eq!(page.messages.len(), MAX_HISTORY_PAGE_BYTES / big.len());
    }

    #[test]
    fn non_members_cannot_post_and_private_channels_stay_hidden() {
        let (mut db, alice) = setup();
        let bob = db.register(&name("bob"), &name("desk"), &[2; 32]).unwrap();
        let e = append(&mut db, &bob, "b1", "hi").unwrap_err();
        assert_eq!(e.code, crate::net::protocol::ErrorCode::Forbidden);

        db.create_channel(&name("secret"), Visibility::Private, alice.user_id, None)
            .unwrap();
        db.create_channel(&name("quiet"), Visibility::Unlisted, alice.user_id, None)
            .unwrap();
        let listed: Vec<String> = db
            .list_channels(bob.user_id, None, MAX_CHANNEL_PAGE)
            .unwrap()
            .0
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        assert_eq!(listed, ["general"]);
        let e = db
            .join(&name("secret"), bob.user_id, &name("cli"))
            .unwrap_err();
        assert_eq!(e.message, "there is no channel #secret");
        assert!(
            db.join(&name("quiet"), bob.user_id, &name("cli"))
                .unwrap()
                .new_member
        );
        let listed = db
            .list_channels(alice.user_id, None, MAX_CHANNEL_PAGE)
            .unwrap()
            .0
            .len();
        assert_eq!(listed, 3);
    }

    #[test]
    fn read_positions_only_move_forward() {
        let (mut db, alice) = setup();
        let channel = db.channel(&name("general")).unwrap().unwrap();
        db.mark_read(alice.user_id, &name("tui"), channel.id, 5)
            .unwrap();
        db.mark_read(alice.user_id, &name("tui"), channel.id, 3)
            .unwrap();
        assert_eq!(
            db.join(&name("general"), alice.user_id, &name("tui"))
                .unwrap()
                .read_seq,
            5
        );
        assert_eq!(
            db.join(&name("general"), alice.user_id, &name("bot"))
                .unwrap()
                .read_seq,
            0
        );
    }

    #[test]
    fn purge_drops_only_old_messages() {
        let (mut db, alice) = setup();
        append(&mut db, &alice, "c1", "old").unwrap();
        assert_eq!(db.purge_older_than(now_ms() - 60_000).unwrap(), 0);
        assert_eq!(db.purge_older_than(now_ms() + 1).unwrap(), 1);
    }

    #[test]
    fn data_survives_reopening_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let mut db = Db::open(Some(dir.path())).unwrap();
            db.register(&name("alice"), &name("laptop"), &[1; 32])
                .unwrap();
            db.save_server_id("s1").unwrap();
            "s1"
        };
        let mut db = Db::open(Some(dir.path())).unwrap();
        assert_eq!(db.stored_server_id().unwrap().as_deref(), Some(id));
        assert!(db.account_by_key(&[1; 32]).unwrap().is_some());
    }

    #[tokio::test]
    async fn a_full_queue_makes_senders_wait_instead_of_growing() {
        let bound = 4 * (JOB_BYTES + 1000);
        let store =
            Store::open_bounded(None, Duration::from_secs(3600), Box::new(|_| {}), bound).unwrap();
        // Hold the store thread so nothing drains.
        let (release, held) = std_mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .call(move |_| {
                        let _ = started_tx.send(());
                        Ok(held.recv().is_ok())
                    })
                    .await
            }
        });
        started.await.unwrap();
        let mut queued = 0;
        loop {
            let append = Append {
                channel: name("general"),
                sender_id: 1,
                from: SessionPath::parse("a/m/s").unwrap(),
                client_id: format!("c{queued}"),
                text: "x".repeat(1000),
                then: Box::new(|_| {}),
            };
            let pending = tokio::time::timeout(Duration::from_millis(100), store.append(append));
            if pending.await.is_err() {
                break;
            }
            queued += 1;
            assert!(queued < 10, "the queue never filled");
        }
        assert_eq!(queued, 3, "the blocking call holds one job's share");
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
    }

    #[test]
    fn the_channel_list_comes_in_pages_by_name() {
        let (mut db, alice) = setup();
        for n in 0..5 {
            db.create_channel(
                &name(&format!("c{n}")),
                Visibility::Public,
                alice.user_id,
                None,
            )
            .unwrap();
        }
        let names = |page: &[ChannelInfo]| -> Vec<String> {
            page.iter().map(|c| c.name.to_string()).collect()
        };
        let (first, more) = db.list_channels(alice.user_id, None, 4).unwrap();
        assert_eq!(names(&first), ["c0", "c1", "c2", "c3"]);
        assert!(more);
        let last = first.last().map(|c| c.name.clone());
        let (second, more) = db.list_channels(alice.user_id, last.as_ref(), 4).unwrap();
        assert_eq!(names(&second), ["c4", "general"]);
        assert!(!more);
    }

    #[test]
    fn channels_per_creator_are_capped() {
        let (mut db, alice) = setup();
        // `setup` made #general: one more fits under a cap of two.
        db.create_channel(&name("c1"), Visibility::Public, alice.user_id, Some(2))
            .unwrap();
        let e = db
            .create_channel(&name("c2"), Visibility::Public, alice.user_id, Some(2))
            .unwrap_err();
        assert_eq!(e.code, crate::net::protocol::ErrorCode::RateLimited);
        assert!(e.message.contains("you have created 2 channels"), "{e}");
        db.create_channel(&name("c2"), Visibility::Public, alice.user_id, None)
            .unwrap();
    }

    #[tokio::test]
    async fn a_commit_publishes_its_messages_once_in_order_after_the_acks() {
        let events = Arc::new(Mutex::new(Vec::<String>::new()));
        let published = events.clone();
        let publish: Publish = Box::new(move |stored| {
            let seqs: Vec<String> = stored.iter().map(|a| a.message.seq.to_string()).collect();
            published
                .lock()
                .unwrap()
                .push(format!("publish {}", seqs.join(",")));
        });
        let store = Store::open(None, Duration::from_secs(3600), publish).unwrap();
        let (alice, _) = store
            .call(|db| {
                let alice = db.register(&name("alice"), &name("laptop"), &[1; 32])?;
                db.create_channel(&name("general"), Visibility::Public, alice.user_id, None)?;
                Ok((alice, ()))
            })
            .await
            .unwrap();
        // Hold the thread so three appends wait and commit together.
        let (release, held) = std_mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .call(move |_| {
                        let _ = started_tx.send(());
                        Ok(held.recv().is_ok())
                    })
                    .await
            }
        });
        started.await.unwrap();
        let (done_tx, done) = oneshot::channel::<()>();
        let mut done_tx = Some(done_tx);
        for n in 0..3 {
            let acked = events.clone();
            let last = if n == 2 { done_tx.take() } else { None };
            store
                .append(Append {
                    channel: name("general"),
                    sender_id: alice.user_id,
                    from: SessionPath::parse("alice/laptop/cli").unwrap(),
                    client_id: format!("c{n}"),
                    text: format!("m{n}"),
                    then: Box::new(move |result| {
                        let seq = result.unwrap().message.seq;
                        acked.lock().unwrap().push(format!("ack {seq}"));
                        if let Some(done) = last {
                            let _ = done.send(());
                        }
                    }),
                })
                .await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        done.await.unwrap();
        // The publish runs right after the last ack, on the same thread: ask once more so it
        // has surely run.
        store.call(|_| Ok(())).await.unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            ["ack 1", "ack 2", "ack 3", "publish 1,2,3"]
        );
    }
}
