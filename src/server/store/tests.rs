#![allow(clippy::unwrap_used)]
use super::*;
use crate::net::protocol::{ChannelInfo, MAX_CHANNEL_PAGE, MAX_HISTORY_PAGE_BYTES};
use std::sync::{Arc, Mutex};

pub(super) fn name(s: &str) -> Name {
    Name::parse("test", s).unwrap()
}

/// Keeps the store thread busy until the returned sender sends (or drops), so jobs queue.
async fn hold(
    store: &Store,
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

pub(super) fn setup() -> (Db, Account) {
    let mut db = Db::open(None).unwrap();
    let alice = db
        .register(&name("alice"), &name("laptop"), &[1; 32])
        .unwrap();
    db.create_channel(
        &name("general"),
        Visibility::Public,
        alice.user_id,
        None,
        20,
    )
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
        kind: SessionKind::Human,
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

    db.create_channel(
        &name("secret"),
        Visibility::Private,
        alice.user_id,
        None,
        20,
    )
    .unwrap();
    db.create_channel(
        &name("quiet"),
        Visibility::Unlisted,
        alice.user_id,
        None,
        20,
    )
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
        .join(&name("secret"), bob.user_id, &name("cli"), None)
        .unwrap_err();
    assert_eq!(e.message, "there is no channel #secret");
    assert!(
        db.join(&name("quiet"), bob.user_id, &name("cli"), None)
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
        db.join(&name("general"), alice.user_id, &name("tui"), None)
            .unwrap()
            .read_seq,
        5
    );
    assert_eq!(
        db.join(&name("general"), alice.user_id, &name("bot"), None)
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
    let (release, blocker) = hold(&store).await;
    let mut queued = 0;
    loop {
        let append = Append {
            channel: name("general"),
            sender_id: 1,
            from: SessionPath::parse("a/m/s").unwrap(),
            kind: SessionKind::Human,
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
            20,
        )
        .unwrap();
    }
    let names =
        |page: &[ChannelInfo]| -> Vec<String> { page.iter().map(|c| c.name.to_string()).collect() };
    let (first, more) = db.list_channels(alice.user_id, None, 4).unwrap();
    assert_eq!(names(&first), ["c0", "c1", "c2", "c3"]);
    assert!(
        first.iter().all(|c| c.members == 1),
        "the creator is a member"
    );
    assert!(more);
    let last = first.last().map(|c| c.name.clone());
    let (second, more) = db.list_channels(alice.user_id, last.as_ref(), 4).unwrap();
    assert_eq!(names(&second), ["c4", "general"]);
    assert!(!more);
}

#[test]
fn members_come_by_name_up_to_a_limit() {
    let (mut db, _alice) = setup();
    let general = db.channel(&name("general")).unwrap().unwrap();
    for (n, user) in ["bob", "carol", "dan"].iter().enumerate() {
        let account = db
            .register(&name(user), &name("m"), &[10 + n as u8; 32])
            .unwrap();
        db.add_member(general.id, account.user_id).unwrap();
    }
    let names = |list: Vec<Name>| -> Vec<String> { list.iter().map(Name::to_string).collect() };
    assert_eq!(names(db.members(general.id, 2).unwrap()), ["alice", "bob"]);
    assert_eq!(db.members(general.id, usize::MAX).unwrap().len(), 4);
}

#[test]
fn channels_per_creator_are_capped() {
    let (mut db, alice) = setup();
    // `setup` made #general: one more fits under a cap of two.
    db.create_channel(&name("c1"), Visibility::Public, alice.user_id, Some(2), 20)
        .unwrap();
    let e = db
        .create_channel(&name("c2"), Visibility::Public, alice.user_id, Some(2), 20)
        .unwrap_err();
    assert_eq!(e.code, crate::net::protocol::ErrorCode::RateLimited);
    assert!(e.message.contains("you have created 2 channels"), "{e}");
    db.create_channel(&name("c2"), Visibility::Public, alice.user_id, None, 20)
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
            db.create_channel(
                &name("general"),
                Visibility::Public,
                alice.user_id,
                None,
                20,
            )?;
            Ok((alice, ()))
        })
        .await
        .unwrap();
    // Hold the thread so three appends wait and commit together.
    let (release, blocker) = hold(&store).await;
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
                kind: SessionKind::Human,
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
    let general = db.channel(&name("general")).unwrap().unwrap();
    let page = db.history(&general, Some(0), None, 10).unwrap();
    let texts: Vec<&str> = page.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "three"]);
}
