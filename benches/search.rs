//! Search on the embedded store: latency over 1,000,000 stored messages (p50, p99) for a few
//! kinds of query, and what keeping the index costs stores (acknowledged appends a second with
//! the index kept, and with it taken out). With `SEARCH_POSTGRES=URL`, the same queries on a
//! PostgreSQL store holding the same messages too (in a schema of its own, dropped after).
//! Prints figures; asserts nothing.
//! Run: `cargo bench --bench search` (`SEARCH_MESSAGES=N` for another size).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave::net::names::{Name, SessionPath};
use conclave::net::protocol::{SessionKind, Visibility, search_terms};
use conclave::server::store::{Append, NewChannel, PostgresStore, Search, SqliteStore, Store};
use tokio::sync::Semaphore;

/// Queries timed per kind.
const QUERIES: usize = 200;

/// Appends timed per run of the insert cost, and how many wait at once.
const APPENDS: usize = 50_000;
const IN_FLIGHT: usize = 256;

const WORDS: [&str; 16] = [
    "deploy", "build", "green", "red", "agent", "review", "merge", "branch", "test", "flaky",
    "cache", "index", "query", "latency", "budget", "person",
];

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(Some(dir), Duration::from_secs(3600), Box::new(|_| {})).unwrap()
}

/// A server's database with one user in #general.
async fn prepare(dir: &Path) -> (SqliteStore, i64) {
    let store = open(dir);
    let user = prepare_store(&store).await;
    (store, user)
}

/// One user, alice, in #general: her user id.
async fn prepare_store(store: &impl Store) -> i64 {
    let alice = store
        .register(
            &Name::user("alice").unwrap(),
            &Name::machine("laptop").unwrap(),
            &[1; 32],
        )
        .await
        .unwrap();
    let general = NewChannel {
        name: Name::channel("general").unwrap(),
        visibility: Visibility::Public,
        creator: alice.user_id,
        max_per_creator: None,
        agent_turns: 0,
    };
    store.create_channel(&general).await.unwrap();
    alice.user_id
}

/// Message `n`'s text: a few common words, and one rare word in every 10,000th.
fn body(n: usize) -> String {
    let word = |k: usize| WORDS[(n * 7 + k * 13) % WORDS.len()];
    let rare = if n % 10_000 == 0 { " zanzibar" } else { "" };
    format!("{} {} {} note {n}{rare}", word(0), word(1), word(2))
}

/// Writes `count` messages into #general straight through SQL; returns how long it took.
fn seed(dir: &Path, count: usize) -> Duration {
    let started = Instant::now();
    let db = rusqlite::Connection::open(dir.join("conclave.db")).unwrap();
    db.execute_batch("BEGIN").unwrap();
    {
        let mut insert = db
            .prepare(
                "INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind)
                 VALUES (1, ?1, ?2, 1, 'alice/laptop/cli', ?3, ?4, 'human')",
            )
            .unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for n in 1..=count {
            let ts = now - (count - n) as i64;
            insert
                .execute(rusqlite::params![n as i64, ts, format!("s{n}"), body(n)])
                .unwrap();
        }
    }
    db.execute(
        "UPDATE channels SET last_seq = ?1 WHERE id = 1",
        [count as i64],
    )
    .unwrap();
    db.execute_batch("COMMIT").unwrap();
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

async fn time_queries(store: &impl Store, user: i64, label: &str, make: impl Fn(usize) -> Search) {
    let mut took = Vec::with_capacity(QUERIES);
    let mut hits = 0;
    for i in 0..QUERIES {
        let search = make(i);
        let started = Instant::now();
        hits += store.search(user, &search).await.unwrap().hits.len();
        took.push(started.elapsed());
    }
    took.sort_unstable();
    println!(
        "search      {label:<34} p50 {:>6.2} ms, p99 {:>6.2} ms ({} hits a query)",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        hits / QUERIES
    );
}

fn query(text: &str) -> Search {
    Search::terms(search_terms(text).unwrap(), 20)
}

/// Acknowledged appends a second into #general through the store's writer.
async fn appends_per_second(store: Arc<SqliteStore>, user: i64) -> f64 {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut waiting = Vec::with_capacity(APPENDS);
    for n in 0..APPENDS {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let append = Append {
            channel: Name::channel("general").unwrap(),
            sender_id: user,
            from: SessionPath::parse("alice/laptop/cli").unwrap(),
            kind: SessionKind::Human,
            client_id: format!("b{n}"),
            text: body(n),
            reply_to: None,
            change: None,
            admin: false,
            claim: None,
            then: Box::new(move |result| {
                drop(permit);
                let _ = tx.send(result.is_ok());
            }),
        };
        store.append(append).await;
        waiting.push(rx);
    }
    for rx in waiting {
        assert!(rx.await.unwrap(), "an append failed");
    }
    APPENDS as f64 / started.elapsed().as_secs_f64()
}

/// Every kind of query, timed on `store`.
async fn time_all(store: &impl Store, user: i64) {
    time_queries(store, user, "a rare word (100 matches)", |_| {
        query("zanzibar")
    })
    .await;
    time_queries(store, user, "a common word, newest 20", |i| {
        query(WORDS[i % WORDS.len()])
    })
    .await;
    time_queries(store, user, "two words, newest 20", |i| {
        query(&format!(
            "{} {}",
            WORDS[i % WORDS.len()],
            WORDS[(i + 3) % WORDS.len()]
        ))
    })
    .await;
    time_queries(store, user, "a phrase, newest 20", |i| {
        query(&format!("\"note {}\"", 1 + i * 4999))
    })
    .await;
    time_queries(store, user, "a word from one sender, since", |i| {
        let mut search = query(WORDS[i % WORDS.len()]);
        search.from = Some(conclave::server::store::Sender::User(
            Name::user("alice").unwrap(),
        ));
        search.since = Some(chrono::Utc::now().timestamp_millis() - 500_000);
        search
    })
    .await;
}

/// The same queries on PostgreSQL, over the same `count` messages, in a schema of its own.
async fn on_postgres(url: &str, count: usize) {
    let schema = format!("bench_search_{}", std::process::id());
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let in_schema = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = PostgresStore::open(&in_schema, Duration::from_secs(3600), Box::new(|_| {}))
        .await
        .unwrap();
    let user = prepare_store(&store).await;
    let started = Instant::now();
    // The same texts as `body`, made by the database itself.
    let words = WORDS.map(|w| format!("'{w}'")).join(",");
    let word = |k: usize| format!("(ARRAY[{words}])[((n * 7 + {}) % 16) + 1]", k * 13);
    admin
        .batch_execute(&format!(
            "SET search_path = {schema};
             INSERT INTO messages (channel_id, seq, ts, sender_id, sender_path, client_id, body, sender_kind)
             SELECT 1, n, {now} - ({count} - n), {user}, 'alice/laptop/cli', 's' || n,
                    {} || ' ' || {} || ' ' || {} || ' note ' || n
                        || CASE WHEN n % 10000 = 0 THEN ' zanzibar' ELSE '' END,
                    'human'
             FROM generate_series(1, {count}) AS n;
             UPDATE channels SET last_seq = {count} WHERE id = 1;
             ANALYZE messages;",
            word(0),
            word(1),
            word(2),
            now = chrono::Utc::now().timestamp_millis(),
        ))
        .await
        .unwrap();
    println!(
        "postgres    {count} messages written and indexed: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    time_all(&store, user).await;
    drop(store);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("SEARCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let dir = tempfile::tempdir().unwrap();
    let (store, user) = prepare(dir.path()).await;
    drop(store);
    let seeded = seed(dir.path(), count);
    println!(
        "seed        {count} messages written: {:.1} s",
        seeded.as_secs_f64()
    );
    let store = open(dir.path());
    // The first search indexes what waits: here, every seeded message.
    let started = Instant::now();
    store.search(user, &query("zanzibar")).await.unwrap();
    println!(
        "index       {count} messages, in batches: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    time_all(&store, user).await;
    drop(store);
    if let Ok(url) = std::env::var("SEARCH_POSTGRES") {
        on_postgres(&url, count).await;
    }

    // The index's cost to stores: the same appends with and without its triggers.
    let with_index = {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = prepare(dir.path()).await;
        appends_per_second(Arc::new(store), user).await
    };
    let without_index = {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = prepare(dir.path()).await;
        drop(store);
        let db = rusqlite::Connection::open(dir.path().join("conclave.db")).unwrap();
        // With the index gone, the writer finds nothing to index.
        db.execute_batch(
            "DROP TRIGGER messages_fts_delete; DROP TRIGGER messages_fts_update;
             DROP TRIGGER channels_fts_delete; DROP TABLE messages_fts;
             DROP TABLE search_progress;",
        )
        .unwrap();
        drop(db);
        appends_per_second(Arc::new(open(dir.path())), user).await
    };
    println!(
        "appends     {APPENDS} acknowledged: {with_index:.0}/s with the index, {without_index:.0}/s without ({:+.1}%)",
        (with_index / without_index - 1.0) * 100.0
    );
}
