//! What only the SQLite backend has to prove: the bounded queue, grouped commits and the
//! publish hook's order, a failed append leaving nothing behind, data on disk, and checks
//! that need the rows changed underneath. What every backend must do is the conformance
//! suite's (`tests/store_conformance`).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use super::*;
use crate::net::names::SessionPath;
use crate::net::protocol::{ChannelAct, SessionKind};
use crate::server::store::{
    Account, Actor, Appended, HistoryRange, INVITE_TTL_MS, Moderation, NewChannel, Signer, Store,
};

fn name(s: &str) -> Name {
    Name::parse("test", s).unwrap()
}

fn general(creator: &Account) -> NewChannel {
    NewChannel {
        name: name("general"),
        visibility: Visibility::Public,
        creator: creator.user_id,
        max_per_creator: None,
        agent_turns: 20,
    }
}

/// A database with alice, who made #general.
fn setup() -> (Db, Account) {
    let mut db = Db::open(None).unwrap();
    let alice = db
        .register(&name("alice"), &name("laptop"), &[1; 32])
        .unwrap();
    db.create_channel(&general(&alice)).unwrap();
    (db, alice)
}

/// Keeps the store thread busy until the returned sender sends (or drops), so jobs queue.
async fn hold(
    store: &SqliteStore,
) -> (
    std_mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<bool, ProtocolError>>,
) {
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
    (release, blocker)
}

fn message(
    who: &Account,
    client_id: &str,
    text: &str,
    then: impl FnOnce(Result<Appended, ProtocolError>) + Send + Sync + 'static,
) -> Append {
    Append {
        channel: name("general"),
        sender_id: who.user_id,
        from: SessionPath::new(who.user.clone(), who.machine.clone(), name("cli")),
        kind: SessionKind::Human,
        client_id: client_id.into(),
        text: text.into(),
        reply_to: None,
        change: None,
        admin: false,
        claim: None,
        then: Box::new(then),
    }
}

/// Commits one append on `db` directly and returns its outcome.
fn append(
    db: &mut Db,
    who: &Account,
    client_id: &str,
    text: &str,
) -> Result<Appended, ProtocolError> {
    let out = Arc::new(Mutex::new(None));
    let sink = out.clone();
    db.commit_appends(vec![message(who, client_id, text, move |r| {
        *sink.lock().unwrap() = Some(r);
    })]);
    out.lock().unwrap().take().unwrap()
}

#[test]
fn data_survives_reopening_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut db = Db::open(Some(dir.path())).unwrap();
        db.register(&name("alice"), &name("laptop"), &[1; 32])
            .unwrap();
        db.save_server_id("s1").unwrap();
    }
    let mut db = Db::open(Some(dir.path())).unwrap();
    assert_eq!(db.stored_server_id().unwrap().as_deref(), Some("s1"));
    assert!(db.account_by_key(&[1; 32]).unwrap().is_some());
}

#[tokio::test]
async fn a_full_queue_makes_senders_wait_instead_of_growing() {
    let bound = 4 * (JOB_BYTES + 1000);
    let store = SqliteStore::open_bounded(None, Duration::from_secs(3600), Box::new(|_| {}), bound)
        .unwrap();
    let nobody = Account {
        user_id: 1,
        user: name("a"),
        machine: name("m"),
        uses_human_keys: false,
        is_human_key: false,
        banned: None,
    };
    // Hold the store thread so nothing drains.
    let (release, blocker) = hold(&store).await;
    let mut queued = 0;
    loop {
        let append = message(&nobody, &format!("c{queued}"), &"x".repeat(1000), |_| {});
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

/// A store whose publish hook writes what it saw into the returned log, with alice, who
/// made #general.
async fn logged_store() -> (SqliteStore, Arc<Mutex<Vec<String>>>, Account) {
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let published = events.clone();
    let publish: Publish = Box::new(move |stored| {
        let seqs: Vec<String> = stored.iter().map(|a| a.message.seq.to_string()).collect();
        published
            .lock()
            .unwrap()
            .push(format!("publish {}", seqs.join(",")));
    });
    let store = SqliteStore::open(None, Duration::from_secs(3600), publish).unwrap();
    let alice = store
        .register(&name("alice"), &name("laptop"), &[1; 32])
        .await
        .unwrap();
    store.create_channel(&general(&alice)).await.unwrap();
    (store, events, alice)
}

#[tokio::test]
async fn a_commit_publishes_its_messages_once_in_order_after_the_acks() {
    let (store, events, alice) = logged_store().await;
    // Hold the thread so three appends wait and commit together.
    let (release, blocker) = hold(&store).await;
    let (done_tx, done) = oneshot::channel::<()>();
    let mut done_tx = Some(done_tx);
    for n in 0..3 {
        let acked = events.clone();
        let last = if n == 2 { done_tx.take() } else { None };
        let then = move |result: Result<Appended, ProtocolError>| {
            let seq = result.unwrap().message.seq;
            acked.lock().unwrap().push(format!("ack {seq}"));
            if let Some(done) = last {
                let _ = done.send(());
            }
        };
        store
            .append(message(&alice, &format!("c{n}"), &format!("m{n}"), then))
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

#[tokio::test]
async fn a_moderation_reaches_the_room_before_any_message_stored_after_it() {
    let (store, events, alice) = logged_store().await;
    let (release, blocker) = hold(&store).await;
    let told = events.clone();
    let moderation = Moderation {
        channel: name("general"),
        by: Actor {
            user_id: alice.user_id,
            path: SessionPath::parse("alice/laptop/tui").unwrap(),
            admin: false,
        },
        act: ChannelAct::Topic {
            topic: "news".into(),
        },
        target_admin: false,
        reason: None,
        now: now_ms(),
        then: Box::new(move |_| told.lock().unwrap().push("moderated".into())),
    };
    let moderated = tokio::spawn({
        let store = store.clone();
        async move { store.moderate(moderation).await }
    });
    // The act is queued once its task waits for the answer.
    tokio::task::yield_now().await;
    store.append(message(&alice, "c1", "after", |_| {})).await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    moderated.await.unwrap().unwrap();
    store.call(|_| Ok(())).await.unwrap();
    assert_eq!(*events.lock().unwrap(), ["moderated", "publish 1"]);
}

#[test]
fn an_append_that_fails_halfway_leaves_nothing_behind() {
    let (mut db, alice) = setup();
    assert_eq!(append(&mut db, &alice, "c1", "one").unwrap().message.seq, 1);
    // The second message's row goes in, then moving `last_seq` fails.
    db.conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_two BEFORE UPDATE OF last_seq ON channels
             WHEN NEW.last_seq = 2 BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;",
        )
        .unwrap();
    assert!(append(&mut db, &alice, "c2", "two").is_err());
    db.conn.execute_batch("DROP TRIGGER fail_two").unwrap();
    // Nothing of it stayed: the next message takes seq 2, and history has no stray row.
    let three = append(&mut db, &alice, "c3", "three").unwrap();
    assert_eq!(three.message.seq, 2);
    let range = HistoryRange {
        after: Some(0),
        before: None,
        limit: 10,
        thread: None,
    };
    let page = db.history(&name("general"), alice.user_id, range).unwrap();
    let texts: Vec<&str> = page.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "three"]);
}

#[test]
fn a_machine_enrolled_long_ago_gets_no_first_human_key_from_its_machine_key() {
    let (mut db, alice) = setup();
    let user = alice.user_id;
    db.set_human_key(user, &name("laptop"), &[9; 32], &[1; 32])
        .unwrap();
    let soon = now_ms() + INVITE_TTL_MS;
    db.invite_machine(user, &name("box"), "c3", soon, Signer::HumanKey)
        .unwrap();
    db.enroll("c3", &[7; 32]).unwrap();
    db.conn
        .execute("UPDATE machines SET created_at = 0 WHERE name = 'box'", [])
        .unwrap();
    let late = db
        .set_human_key(user, &name("box"), &[8; 32], &[7; 32])
        .unwrap_err();
    assert!(late.message.contains("within 15 minutes"), "{late}");
}
