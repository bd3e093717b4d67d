//! The shared backend: PostgreSQL through tokio-postgres, for operators who run several
//! `serve` instances on one database (`conclave serve --store postgres://...`).
//!
//! Reads run on a pool of connections. Writes go to one writer task per instance, in the
//! order they were asked for, each unit of work one transaction; appends are grouped like the
//! SQLite store's: every append waiting when the writer wakes goes into one transaction, and
//! each append's continuation runs after the commit, in sequence order, before the publish
//! hook. Each message's seq comes from its channel's row (`last_seq`), raised under that row's
//! lock in the inserting transaction: other instances' appends to the channel wait for the
//! commit, so commit order is seq order and a rollback leaves no hole. The brakes' memory
//! lives with the writer, as it does on SQLite's store thread.
//!
//! A lost database is an `unavailable` answer, never an acknowledgement: the pool drops broken
//! connections and connects again on the next request, so the server recovers by itself.
//! Periodic work (retention) runs under an advisory lock, on one instance at a time.
//!
//! `api.rs` implements the `Store` API, `appends.rs` the group commit; the other files hold the
//! queries by concern, on `Db`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::brakes::Brakes;
use super::queue::{JOB_BYTES, MAX_QUEUED_BYTES, Room, stopped};
use super::{Append, Publish, now_ms};
use crate::net::names::Name;
use crate::net::protocol::{ProtocolError, Visibility, from_name};

mod accounts;
mod api;
mod appends;
mod audit;
mod changes;
mod channels;
mod claim;
mod governance;
mod messages;
mod moderation;
mod pins;
mod schema;
pub use claim::InstanceClaim;
mod search;

/// How often an instance tries to purge messages older than the retention window.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

/// Connections per instance for reads (the writer has one more of its own).
const READ_POOL_SIZE: usize = 16;

/// How long a request waits for a connection, or for one to be made, before it is answered
/// `unavailable`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers a unit's caller once its transaction is over, given how the commit went.
type Finish = Box<dyn FnOnce(Result<(), ProtocolError>) + Send>;

/// A unit of work for the writer: it runs in one transaction, given the brakes' memory, and
/// says whether it went well (then the writer commits) and how to answer its caller.
type WriteJob =
    Box<dyn for<'a> FnOnce(Db<'a>, &'a mut Brakes) -> BoxFuture<'a, (bool, Finish)> + Send>;

#[expect(
    clippy::large_enum_variant,
    reason = "appends are nearly every job; boxing them would allocate once per message"
)]
enum Job {
    Call(WriteJob),
    Append(Append),
}

/// A job and its share of the queue's bound, given back once the job is done.
type Queued = (Job, OwnedSemaphorePermit);

/// The PostgreSQL store. Cheap to clone; the writer stops when every clone is gone.
#[derive(Clone)]
pub struct PostgresStore {
    /// Connections for reads.
    pool: Pool,
    /// Work for the writer. Unbounded as a channel, bounded in bytes by `room`.
    jobs: mpsc::UnboundedSender<Queued>,
    room: Room,
}

/// Why a PostgreSQL store would not open. Each reads as one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("`{url}` is not a PostgreSQL URL (postgres://USER[:PASS]@HOST[:PORT]/DB): {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach the database {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the database {url} has schema version {found}, newer than this conclave's {ours}: run a newer conclave"
    )]
    Newer { url: String, found: i64, ours: i64 },
    #[error("cannot bring the database {url} up to this version's schema: {reason}")]
    Migrate { url: String, reason: String },
    #[error(
        "another conclave instance serves the database {url} without a bus: give every instance the same `--bus nats://HOST:PORT`"
    )]
    TakenAlone { url: String },
    #[error(
        "another conclave instance serves the database {url} with a bus: start this one with the same `--bus nats://HOST:PORT`"
    )]
    TakenByCluster { url: String },
}

/// Where a store is, as it may be shown: the URL without its password.
fn shown(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}{port}/{db}")
}

/// An error and its causes on one line (the server's errors may carry a detail line, and the
/// pool's leave the cause to `source`).
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = inner.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `url` with its password, if it has one, blanked out.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    match authority.rsplit_once('@') {
        Some((credentials, _)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or("");
            let rest = rest.replacen(credentials, &format!("{user}:***"), 1);
            format!("{scheme}://{rest}")
        }
        _ => url.to_owned(),
    }
}

/// Parses a `--store` URL. Only `postgres://` and `postgresql://` URLs naming a host and a
/// database are taken (tokio-postgres would also take `key=value` strings).
fn parse_url(url: &str) -> Result<tokio_postgres::Config, OpenError> {
    let bad = |reason: &str| OpenError::BadUrl {
        url: redacted(url),
        reason: reason.to_owned(),
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad("it must start with postgres://"));
    }
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| bad(&one_line(&e)))?;
    if config.get_hosts().is_empty() {
        return Err(bad("it names no host"));
    }
    if config.get_dbname().is_none_or(str::is_empty) {
        return Err(bad("it names no database"));
    }
    // An acknowledgement means committed: whatever the database's default, a commit waits
    // for its WAL to be flushed. Options the URL gives (a search_path, say) are kept.
    let options = match config.get_options() {
        Some(given) => format!("{given} -c synchronous_commit=on"),
        None => "-c synchronous_commit=on".to_owned(),
    };
    config.options(&options);
    config.connect_timeout(CONNECT_TIMEOUT);
    // A database that vanished without closing the connection (a cable, a crashed host) is
    // noticed within about half a minute, not the system's two hours.
    config.keepalives_idle(Duration::from_secs(15));
    config.keepalives_interval(Duration::from_secs(5));
    config.keepalives_retries(3);
    config.application_name("conclave");
    Ok(config)
}

/// A pool of connections to the database `config` names.
fn pool_of(
    config: tokio_postgres::Config,
    size: usize,
) -> Result<Pool, deadpool_postgres::BuildError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A connection that died is dropped when it comes back to the pool; the next
            // request gets a new one.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
}

impl PostgresStore {
    /// Connects to the database at `url`, brings its schema up to date and starts the writer.
    pub async fn open(url: &str, retention: Duration, publish: Publish) -> Result<Self, OpenError> {
        let config = parse_url(url)?;
        let label = shown(&config);
        let unreachable = |e: &dyn std::error::Error| OpenError::Unreachable {
            url: label.clone(),
            reason: one_line(e),
        };
        // The writer has a connection of its own, so readers never keep it waiting.
        let pool = pool_of(config.clone(), READ_POOL_SIZE).map_err(|e| unreachable(&e))?;
        let writes = pool_of(config, 1).map_err(|e| unreachable(&e))?;
        let mut conn = writes.get().await.map_err(|e| unreachable(&e))?;
        schema::migrate(&mut conn, &label).await?;
        drop(conn);
        let (jobs, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            pool: writes,
            publish,
            brakes: Brakes::default(),
            down_until: None,
        };
        tokio::spawn(writer.run(rx, retention));
        Ok(Self {
            pool,
            jobs,
            room: Room::new(MAX_QUEUED_BYTES),
        })
    }

    /// A connection from the pool, for reads.
    async fn conn(&self) -> Result<Object, ProtocolError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs `f` on the writer, in one transaction, and returns its result once committed.
    async fn write<R, F>(&self, f: F) -> Result<R, ProtocolError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Db<'a>, &'a mut Brakes) -> BoxFuture<'a, Result<R, ProtocolError>>
            + Send
            + 'static,
    {
        self.write_then(f, |_| {}).await
    }

    /// `write`, with `after` run on the writer right after the commit, before anything the
    /// writer stores later is published.
    async fn write_then<R, F, A>(&self, f: F, after: A) -> Result<R, ProtocolError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(Db<'a>, &'a mut Brakes) -> BoxFuture<'a, Result<R, ProtocolError>>
            + Send
            + 'static,
        A: FnOnce(&R) + Send + 'static,
    {
        let permit = self.room.reserve(JOB_BYTES).await?;
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |db, brakes| {
            Box::pin(async move {
                let answer = f(db, brakes).await;
                let ok = answer.is_ok();
                let finish: Finish = Box::new(move |committed| {
                    let answer = committed.and(answer);
                    if let Ok(value) = &answer {
                        after(value);
                    }
                    let _ = tx.send(answer);
                });
                (ok, finish)
            })
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
        if let Err(mpsc::error::SendError((Job::Append(append), _))) =
            self.jobs.send((Job::Append(append), permit))
        {
            (append.then)(Err(stopped()));
        }
    }
}

/// The one answer to "the database cannot be reached": nothing was stored.
fn unavailable() -> ProtocolError {
    ProtocolError::unavailable(
        "the server's database cannot be reached; nothing was stored; retry in a moment",
    )
}

/// Whether a database error means the connection (or the server) is gone, rather than that
/// the statement failed.
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Connection exceptions, and the server shutting down or starting up.
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: the error came from the socket, not the server.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// A database error as an answer: `unavailable` when the database is out of reach,
/// `internal` otherwise.
fn db_error(e: tokio_postgres::Error) -> ProtocolError {
    if is_connection_error(&e) {
        tracing::warn!(e = %one_line(&e), "the database cannot be reached");
        return unavailable();
    }
    tracing::error!(e = %one_line(&e), "database error");
    ProtocolError::internal(format!(
        "the server could not use its database: {}",
        one_line(&e)
    ))
}

/// No connection could be had (none was free in time, or a new one failed): the database is
/// out of reach as far as this request can tell.
fn pool_error(e: PoolError) -> ProtocolError {
    tracing::warn!(e = %one_line(&e), "no database connection");
    unavailable()
}

fn visibility_from(text: &str) -> Visibility {
    from_name(text).unwrap_or(Visibility::Public)
}

fn name_from(text: String) -> Result<Name, ProtocolError> {
    Name::try_from(text).map_err(|e| ProtocolError::internal(e.to_string()))
}

/// A count or setting as it is stored (BIGINT), back in the width the API uses.
fn narrow<T: TryFrom<i64> + Default>(value: i64) -> T {
    T::try_from(value).unwrap_or_default()
}

/// After the writer failed to get a connection, how long it answers `unavailable` at once
/// instead of trying again: a queue that built up while the database was away drains in
/// moments, not one connect timeout per job.
const BACK_OFF: Duration = Duration::from_secs(1);

/// What the writer owns: its pool, the publish hook and the brakes' memory.
struct Writer {
    pool: Pool,
    publish: Publish,
    brakes: Brakes,
    /// Until when the database is taken to be out of reach (see `BACK_OFF`).
    down_until: Option<tokio::time::Instant>,
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Queued>, retention: Duration) {
        let mut next_purge = tokio::time::Instant::now();
        loop {
            let first = tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                () = tokio::time::sleep_until(next_purge) => {
                    self.purge_on_schedule(retention).await;
                    next_purge = tokio::time::Instant::now() + PURGE_EVERY;
                    continue;
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
                        self.commit_appends(std::mem::take(&mut appends)).await;
                        permits.clear();
                        self.call(f).await;
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
            self.commit_appends(appends).await;
            drop(permits);
        }
    }

    /// Runs one unit of work in a transaction of its own, commits it if it went well, then
    /// lets it answer: its caller hears `Ok` only once the commit is done.
    async fn call(&mut self, f: WriteJob) {
        let mut conn = match self.connect().await {
            Ok(conn) => conn,
            Err(e) => return fail_call(f, &e, &mut self.brakes).await,
        };
        let tx = match conn.transaction().await {
            Ok(tx) => tx,
            Err(e) => return fail_call(f, &db_error(e), &mut self.brakes).await,
        };
        let (ok, finish) = f(Db::in_tx(&tx), &mut self.brakes).await;
        let committed = if ok {
            tx.commit().await.map_err(db_error)
        } else {
            let _ = tx.rollback().await;
            Ok(())
        };
        finish(committed);
    }

    /// A connection for the next unit, unless the database was out of reach a moment ago.
    async fn connect(&mut self) -> Result<Object, ProtocolError> {
        let now = tokio::time::Instant::now();
        if self.down_until.is_some_and(|until| now < until) {
            return Err(unavailable());
        }
        match self.pool.get().await {
            Ok(conn) => {
                self.down_until = None;
                Ok(conn)
            }
            Err(e) => {
                self.down_until = Some(tokio::time::Instant::now() + BACK_OFF);
                Err(pool_error(e))
            }
        }
    }

    /// The periodic purge, on one instance at a time.
    async fn purge_on_schedule(&mut self, retention: Duration) {
        let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let done = async {
            let mut conn = self.connect().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            let purged = Db::in_tx(&tx).purge(cutoff, false).await?;
            tx.commit().await.map_err(db_error)?;
            Ok::<_, ProtocolError>(purged)
        };
        match done.await {
            Ok(purged) if purged.messages > 0 => tracing::info!(
                n = purged.messages,
                "purged messages past the retention window"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(%e, "purge failed"),
        }
    }
}

/// Answers a job whose transaction could not be opened: it runs against a `Db` that fails
/// every statement with `error`, so its caller hears exactly that, and nothing commits.
async fn fail_call(f: WriteJob, error: &ProtocolError, brakes: &mut Brakes) {
    let (_, finish) = f(Db::failed(error), brakes).await;
    finish(Ok(()));
}

/// Where a unit's statements go: a pool connection (reads), or the writer's transaction.
#[derive(Clone, Copy)]
enum Conn<'a> {
    Pool(&'a Object),
    Tx(&'a deadpool_postgres::Transaction<'a>),
    /// No transaction could be had: every statement fails with this error.
    Failed(&'a ProtocolError),
}

/// The queries, on one connection or transaction. `Copy`: units pass it around freely.
#[derive(Clone, Copy)]
pub(super) struct Db<'a> {
    conn: Conn<'a>,
}

impl<'a> Db<'a> {
    fn on(conn: &'a Object) -> Self {
        Self {
            conn: Conn::Pool(conn),
        }
    }

    fn in_tx(tx: &'a deadpool_postgres::Transaction<'a>) -> Self {
        Self { conn: Conn::Tx(tx) }
    }

    fn failed(error: &'a ProtocolError) -> Self {
        Self {
            conn: Conn::Failed(error),
        }
    }

    /// Runs a query (prepared once per connection) and returns its rows.
    async fn query(
        self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ProtocolError> {
        match self.conn {
            Conn::Pool(c) => {
                let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
                c.query(&stmt, params).await.map_err(db_error)
            }
            Conn::Tx(t) => {
                let stmt = t.prepare_cached(sql).await.map_err(db_error)?;
                t.query(&stmt, params).await.map_err(db_error)
            }
            Conn::Failed(e) => Err(e.clone()),
        }
    }

    /// The one row a query returns, if any.
    async fn query_opt(
        self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, ProtocolError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The one row a query must return.
    async fn query_one(
        self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, ProtocolError> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| ProtocolError::internal("a query returned no row"))
    }

    /// Runs a statement; the rows it changed.
    async fn execute(
        self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ProtocolError> {
        match self.conn {
            Conn::Pool(c) => {
                let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
                c.execute(&stmt, params).await.map_err(db_error)
            }
            Conn::Tx(t) => {
                let stmt = t.prepare_cached(sql).await.map_err(db_error)?;
                t.execute(&stmt, params).await.map_err(db_error)
            }
            Conn::Failed(e) => Err(e.clone()),
        }
    }

    /// The id this database belongs to, if it was ever started. A PostgreSQL store keeps it
    /// only here: there is no directory beside the database for `server::server_id` to keep
    /// a witness file in, and every instance must read the same id.
    pub async fn stored_server_id(self) -> Result<Option<String>, ProtocolError> {
        let row = self
            .query_opt("SELECT value FROM meta WHERE key = 'server_id'", &[])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records the id unless an instance that started at the same moment did first.
    pub async fn save_server_id(self, id: &str) -> Result<(), ProtocolError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ('server_id', $1) ON CONFLICT (key) DO NOTHING",
            &[&id],
        )
        .await?;
        Ok(())
    }
}
