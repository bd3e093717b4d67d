//! What the cases share: opening each backend, names, a first user with a channel, and
//! appends awaited to their outcome. Everything goes through the `Store` trait.
//! `postgres` needs a database (see `tests/common/postgres.rs`).

use std::time::Duration;

use conclave::net::names::{Name, SessionPath};
use conclave::net::protocol::{
    Change, ChannelAct, ErrorCode, ProtocolError, SessionKind, Visibility,
};
use conclave::server::store::{
    Account, Actor, Append, Appended, Moderated, Moderation, NewChannel, PostgresStore,
    SqliteStore, Store, now_ms,
};
use tokio::sync::oneshot;

/// A fresh SQLite store in memory.
pub async fn sqlite() -> Option<SqliteStore> {
    Some(SqliteStore::open(None, Duration::from_secs(3600), Box::new(|_| {})).unwrap())
}

/// A fresh PostgreSQL store on an empty schema of its own (so cases run in parallel on one
/// database), or `None` when no test database is configured.
pub async fn postgres() -> Option<PostgresStore> {
    let url = crate::test_postgres::fresh_schema(&crate::test_postgres::test_url()?).await;
    let store = PostgresStore::open(&url, Duration::from_secs(3600), Box::new(|_| {}))
        .await
        .unwrap();
    Some(store)
}

pub fn name(text: &str) -> Name {
    Name::parse("test", text).unwrap()
}

/// `code` and, when given, a part of the message, or a panic that shows both.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(result: Result<T, ProtocolError>, code: ErrorCode, says: &str) {
    let error = result.unwrap_err();
    assert_eq!(error.code, code, "{error}");
    assert!(error.message.contains(says), "{error}");
}

/// A user with one machine whose key is `[key; 32]`.
pub async fn user(store: &impl Store, user: &str, key: u8) -> Account {
    store
        .register(&name(user), &name("laptop"), &[key; 32])
        .await
        .unwrap()
}

/// A channel made by `creator`, with no cap and the default turn budget.
pub async fn channel(store: &impl Store, creator: &Account, channel: &str, visibility: Visibility) {
    let new = NewChannel {
        name: name(channel),
        visibility,
        creator: creator.user_id,
        max_per_creator: None,
        agent_turns: 20,
    };
    store.create_channel(&new).await.unwrap();
}

/// alice, who made the public #general.
pub async fn setup(store: &impl Store) -> Account {
    let alice = user(store, "alice", 1).await;
    channel(store, &alice, "general", Visibility::Public).await;
    alice
}

/// `who` joins `channel` from their `cli` session.
pub async fn join(store: &impl Store, who: &Account, channel: &str) {
    store
        .join(&name(channel), who.user_id, &name("cli"), None)
        .await
        .unwrap();
}

pub fn path(who: &Account, session: &str) -> SessionPath {
    SessionPath::new(who.user.clone(), who.machine.clone(), name(session))
}

/// `who`'s person session, as the author of acts.
pub fn actor(who: &Account, admin: bool) -> Actor {
    Actor {
        user_id: who.user_id,
        path: path(who, "tui"),
        admin,
    }
}

/// One message to `channel` whose outcome arrives on the receiver.
pub fn message(
    who: &Account,
    kind: SessionKind,
    channel: &str,
    client_id: &str,
    text: &str,
) -> (Append, oneshot::Receiver<Result<Appended, ProtocolError>>) {
    let (tx, rx) = oneshot::channel();
    let append = Append {
        channel: name(channel),
        sender_id: who.user_id,
        from: path(
            who,
            if kind == SessionKind::Agent {
                "bot"
            } else {
                "cli"
            },
        ),
        kind,
        client_id: client_id.into(),
        text: text.into(),
        reply_to: None,
        change: None,
        admin: false,
        claim: None,
        then: Box::new(move |result| {
            let _ = tx.send(result);
        }),
    };
    (append, rx)
}

/// A person's message, awaited until it is stored or refused.
pub async fn post(
    store: &impl Store,
    who: &Account,
    channel: &str,
    client_id: &str,
    text: &str,
) -> Result<Appended, ProtocolError> {
    let (append, outcome) = message(who, SessionKind::Human, channel, client_id, text);
    store.append(append).await;
    outcome.await.unwrap()
}

/// A person's edit, delete or reaction, awaited until it is stored or refused.
pub async fn change(
    store: &impl Store,
    who: &Account,
    channel: &str,
    change: Change,
    text: &str,
) -> Result<Appended, ProtocolError> {
    static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let client_id = format!("{}-{}-{n}", change.name(), change.target());
    let (mut append, outcome) = message(who, SessionKind::Human, channel, &client_id, text);
    append.change = Some(change);
    store.append(append).await;
    outcome.await.unwrap()
}

/// `by` does `act` in `channel` as a person, with no hook.
pub async fn act(
    store: &impl Store,
    by: &Actor,
    channel: &str,
    act: ChannelAct,
) -> Result<Moderated, ProtocolError> {
    store
        .moderate(Moderation {
            channel: name(channel),
            by: by.clone(),
            act,
            target_admin: false,
            reason: None,
            now: now_ms(),
            then: Box::new(|_| {}),
        })
        .await
}

/// The seqs of a page.
pub fn seqs(page: &conclave::server::store::Page) -> Vec<u64> {
    page.messages.iter().map(|m| m.seq).collect()
}

/// Names as text.
pub fn names(list: &[Name]) -> Vec<String> {
    list.iter().map(Name::to_string).collect()
}
