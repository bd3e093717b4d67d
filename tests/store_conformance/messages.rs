//! Messages: seqs and idempotent appends, who may post, the brakes, history pages, read
//! positions and retention.

use conclave::net::protocol::{
    ChannelAct, ChannelSetting, ErrorCode, MAX_HISTORY_PAGE_BYTES, MAX_TEXT_BYTES, SessionKind,
    Visibility,
};
use conclave::server::store::{AuditRecord, HistoryRange, Page, Store, UserId, now_ms};

use crate::support::{act, actor, channel, join, message, name, post, refused, seqs, setup, user};

fn range(after: Option<u64>, before: Option<u64>, limit: u32) -> HistoryRange {
    HistoryRange {
        after,
        before,
        limit,
        thread: None,
    }
}

/// A page of #general as `user` reads it.
async fn page(
    store: &impl Store,
    user: UserId,
    after: Option<u64>,
    before: Option<u64>,
    limit: u32,
) -> Page {
    let range = range(after, before, limit);
    store.history(&name("general"), user, range).await.unwrap()
}

/// Where `handle`'s reading of #general stands, as a join tells it.
async fn read_seq(store: &impl Store, user: UserId, handle: &str) -> u64 {
    let joining = store
        .join(&name("general"), user, &name(handle), None)
        .await;
    joining.unwrap().read_seq
}

pub async fn a_resend_with_the_same_client_id_gets_the_same_seq(store: impl Store) {
    let alice = setup(&store).await;
    let one = post(&store, &alice, "general", "c1", "one").await.unwrap();
    let two = post(&store, &alice, "general", "c2", "two").await.unwrap();
    assert_eq!((one.message.seq, two.message.seq), (1, 2));
    assert!(!one.duplicate && !two.duplicate);
    assert_eq!(one.message.from_kind, Some(SessionKind::Human));
    let again = post(&store, &alice, "general", "c1", "one").await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.message.seq, again.message.ts), (1, one.message.ts));
    assert_eq!(again.channel_id, one.channel_id);
    let stored = page(&store, alice.user_id, None, None, 10).await;
    assert_eq!(seqs(&stored), [1, 2], "no row for the resend");
    let details = store
        .describe_channel(&name("general"), alice.user_id)
        .await
        .unwrap();
    assert_eq!(details.last_seq, 2);
}

pub async fn a_batch_of_appends_gets_gap_free_seqs_in_queue_order(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    let mut outcomes = Vec::new();
    for n in 0..40 {
        let who = if n % 3 == 0 { &bob } else { &alice };
        let (append, outcome) = message(who, SessionKind::Human, "general", &format!("c{n}"), "hi");
        store.append(append).await;
        outcomes.push(outcome);
    }
    let mut got = Vec::new();
    for outcome in outcomes {
        got.push(outcome.await.unwrap().unwrap().message.seq);
    }
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        seqs(&page(&store, bob.user_id, Some(0), None, 100).await),
        got
    );
}

pub async fn a_resend_queued_right_behind_its_first_send_is_stored_once(store: impl Store) {
    let alice = setup(&store).await;
    let (first, first_outcome) = message(&alice, SessionKind::Human, "general", "c1", "once");
    let (again, again_outcome) = message(&alice, SessionKind::Human, "general", "c1", "once");
    store.append(first).await;
    store.append(again).await;
    let (first, again) = (
        first_outcome.await.unwrap().unwrap(),
        again_outcome.await.unwrap().unwrap(),
    );
    assert!(!first.duplicate && again.duplicate);
    assert_eq!((first.message.seq, again.message.seq), (1, 1));
    assert_eq!(
        seqs(&page(&store, alice.user_id, Some(0), None, 10).await),
        [1]
    );
}

pub async fn non_members_cannot_post_and_private_channels_look_missing(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let stranger = post(&store, &bob, "general", "b1", "hi").await;
    refused(
        stranger,
        ErrorCode::Forbidden,
        "join #general before posting to it",
    );
    channel(&store, &alice, "secret", Visibility::Private).await;
    post(&store, &alice, "secret", "a1", "hush").await.unwrap();
    let hidden = post(&store, &bob, "secret", "b2", "hi").await;
    refused(hidden, ErrorCode::NotFound, "there is no channel #secret");
    let read = store
        .history(&name("secret"), bob.user_id, range(None, None, 10))
        .await;
    refused(read, ErrorCode::NotFound, "there is no channel #secret");
    let missing = post(&store, &alice, "nowhere", "a2", "hi").await;
    refused(missing, ErrorCode::NotFound, "there is no channel #nowhere");
    // A public channel's history is open to anyone who is not banned.
    post(&store, &alice, "general", "a3", "hello")
        .await
        .unwrap();
    let open = page(&store, bob.user_id, None, None, 10).await;
    assert_eq!(open.messages[0].text, "hello");
}

pub async fn history_pages_forward_and_backward(store: impl Store) {
    let alice = setup(&store).await;
    for i in 0..10 {
        post(
            &store,
            &alice,
            "general",
            &format!("c{i}"),
            &format!("m{i}"),
        )
        .await
        .unwrap();
    }
    let me = alice.user_id;
    assert_eq!(seqs(&page(&store, me, Some(3), None, 3).await), [4, 5, 6]);
    assert_eq!(seqs(&page(&store, me, None, None, 3).await), [8, 9, 10]);
    assert_eq!(seqs(&page(&store, me, None, Some(5), 3).await), [2, 3, 4]);
    assert_eq!(seqs(&page(&store, me, Some(2), Some(5), 10).await), [3, 4]);
    let first = page(&store, me, Some(0), None, 2).await;
    assert_eq!((seqs(&first), first.more), (vec![1, 2], true));
    let last = page(&store, me, Some(8), None, 2).await;
    assert_eq!((seqs(&last), last.more), (vec![9, 10], false));
    let oldest = page(&store, me, None, Some(3), 5).await;
    assert_eq!((seqs(&oldest), oldest.more), (vec![1, 2], false));
    assert_eq!(first.messages[0].text, "m0");
    assert_eq!(first.messages[0].from.to_string(), "alice/laptop/cli");
}

pub async fn history_pages_are_cut_by_size(store: impl Store) {
    let alice = setup(&store).await;
    let big = "x".repeat(MAX_TEXT_BYTES);
    let count = MAX_HISTORY_PAGE_BYTES / big.len() + 3;
    for i in 0..count {
        post(&store, &alice, "general", &format!("c{i}"), &big)
            .await
            .unwrap();
    }
    let cut = page(&store, alice.user_id, Some(0), None, 200).await;
    assert!(cut.more);
    let bytes: usize = cut.messages.iter().map(|m| m.text.len()).sum();
    assert!(bytes <= MAX_HISTORY_PAGE_BYTES, "{bytes}");
    assert_eq!(cut.messages.len(), MAX_HISTORY_PAGE_BYTES / big.len());
}

pub async fn read_positions_only_move_forward_and_stop_at_the_newest(store: impl Store) {
    let alice = setup(&store).await;
    for i in 0..6 {
        post(&store, &alice, "general", &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    let (me, tui) = (alice.user_id, name("tui"));
    store
        .mark_read(me, &tui, &name("general"), 5)
        .await
        .unwrap();
    store
        .mark_read(me, &tui, &name("general"), 3)
        .await
        .unwrap();
    assert_eq!(read_seq(&store, me, "tui").await, 5);
    assert_eq!(
        read_seq(&store, me, "bot").await,
        0,
        "each handle has its own"
    );
    store
        .mark_read(me, &tui, &name("general"), 100)
        .await
        .unwrap();
    assert_eq!(read_seq(&store, me, "tui").await, 6);
    let bob = user(&store, "bob", 2).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    let hidden = store.mark_read(bob.user_id, &tui, &name("secret"), 1).await;
    refused(hidden, ErrorCode::NotFound, "there is no channel #secret");
}

pub async fn a_purge_drops_only_what_is_past_the_cutoff(store: impl Store) {
    let alice = setup(&store).await;
    post(&store, &alice, "general", "c1", "old").await.unwrap();
    let record = AuditRecord::new(&actor(&alice, false), now_ms(), "autonomy", "set".into());
    store.record_audit(&record).await.unwrap();
    let kept = store.purge(now_ms() - 60_000).await.unwrap();
    assert_eq!((kept.messages, kept.audit), (0, 0));
    let purged = store.purge(now_ms() + 1).await.unwrap();
    assert_eq!((purged.messages, purged.audit), (1, 1));
    assert!(
        page(&store, alice.user_id, Some(0), None, 10)
            .await
            .messages
            .is_empty()
    );
    // The seq goes on from where it was: a resumed reader never sees a number twice.
    let next = post(&store, &alice, "general", "c2", "new").await.unwrap();
    assert_eq!(next.message.seq, 2);
}

pub async fn an_agent_run_stops_at_the_turn_budget_until_a_person_posts(store: impl Store) {
    let alice = setup(&store).await;
    let turns = ChannelAct::Set {
        setting: ChannelSetting::AgentTurns { turns: 2 },
    };
    act(&store, &actor(&alice, false), "general", turns)
        .await
        .unwrap();
    let agent = |client_id: &str| message(&alice, SessionKind::Agent, "general", client_id, "beep");
    for n in 0..3 {
        let (append, outcome) = agent(&format!("a{n}"));
        store.append(append).await;
        let outcome = outcome.await.unwrap();
        if n < 2 {
            assert_eq!(outcome.unwrap().message.from_kind, Some(SessionKind::Agent));
        } else {
            refused(outcome, ErrorCode::FloorClosed, "waiting for a person");
        }
    }
    post(&store, &alice, "general", "p1", "go on")
        .await
        .unwrap();
    let (append, outcome) = agent("a3");
    store.append(append).await;
    outcome.await.unwrap().unwrap();
}

pub async fn an_instance_catches_up_on_a_channel_by_seq_range(store: impl Store) {
    let alice = setup(&store).await;
    let mut id = 0;
    for i in 1..=5 {
        let stored = post(
            &store,
            &alice,
            "general",
            &format!("c{i}"),
            &format!("m{i}"),
        )
        .await;
        id = stored.unwrap().channel_id;
    }
    let missed = store.catch_up(id, 1, 4, 10).await.unwrap();
    let got: Vec<(u64, &str)> = missed.iter().map(|m| (m.seq, m.text.as_str())).collect();
    assert_eq!(got, [(2, "m2"), (3, "m3"), (4, "m4")]);
    assert_eq!(missed[0].channel, name("general"));
    let page = store.catch_up(id, 0, 5, 2).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.last_seqs(&[id, id + 1000]).await.unwrap(), [(id, 5)]);
    assert!(
        store
            .catch_up(id + 1000, 0, 5, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_reply_names_an_earlier_message_of_its_channel(store: impl Store) {
    let alice = setup(&store).await;
    post(&store, &alice, "general", "c1", "question")
        .await
        .unwrap();
    let reply = |client_id: &str, reply_to: u64| {
        let (mut append, outcome) =
            message(&alice, SessionKind::Human, "general", client_id, "answer");
        append.reply_to = Some(reply_to);
        (append, outcome)
    };
    let (append, outcome) = reply("c2", 1);
    store.append(append).await;
    let stored = outcome.await.unwrap().unwrap();
    assert_eq!((stored.message.seq, stored.message.reply_to), (2, Some(1)));
    let page = page(&store, alice.user_id, Some(0), None, 10).await;
    assert_eq!(page.messages[1].reply_to, Some(1));
    assert_eq!(page.messages[0].reply_to, None);
    for bad in [0, 3, 99] {
        let (append, outcome) = reply(&format!("bad{bad}"), bad);
        store.append(append).await;
        refused(outcome.await.unwrap(), ErrorCode::Invalid, "to reply to");
    }
}

pub async fn a_thread_pages_its_root_and_the_replies_to_it_only(store: impl Store) {
    let alice = setup(&store).await;
    let say = |client_id: &'static str, reply_to: Option<u64>| {
        let (mut append, outcome) =
            message(&alice, SessionKind::Human, "general", client_id, "words");
        append.reply_to = reply_to;
        (append, outcome)
    };
    for (client_id, reply_to) in [
        ("c1", None),
        ("c2", None),
        ("c3", Some(1)),
        ("c4", Some(2)),
        ("c5", Some(1)),
    ] {
        let (append, outcome) = say(client_id, reply_to);
        store.append(append).await;
        outcome.await.unwrap().unwrap();
    }
    let thread = |before, limit| HistoryRange {
        after: None,
        before,
        limit,
        thread: Some(1),
    };
    let newest = store
        .history(&name("general"), alice.user_id, thread(None, 2))
        .await
        .unwrap();
    assert_eq!((seqs(&newest), newest.more), (vec![3, 5], true));
    let older = store
        .history(&name("general"), alice.user_id, thread(Some(3), 2))
        .await
        .unwrap();
    assert_eq!((seqs(&older), older.more), (vec![1], false));
}
