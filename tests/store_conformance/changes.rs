//! Edits, deletes and reactions: events with seqs of their own, applied to their targets,
//! allowed by the rules, shown in history, kept in the audit log and out of search.

use conclave::net::names::Name;
use conclave::net::protocol::{Change, ChannelAct, ErrorCode, Role, SessionKind};
use conclave::server::store::{HistoryRange, Search, Store};

use crate::support::{act, actor, change, join, message, name, post, refused, setup, user};

fn everything() -> HistoryRange {
    HistoryRange {
        after: Some(0),
        before: None,
        limit: 50,
        thread: None,
    }
}

fn react(target: u64, removed: bool) -> Change {
    Change::React { target, removed }
}

pub async fn an_edit_is_an_event_that_rewrites_its_target_for_its_sender_only(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    post(&store, &alice, "general", "c1", "helo wrold")
        .await
        .unwrap();
    let theirs = change(
        &store,
        &bob,
        "general",
        Change::Edit { target: 1 },
        "mine now",
    )
    .await;
    refused(
        theirs,
        ErrorCode::Forbidden,
        "only its sender may edit #general:1",
    );
    let edit = change(
        &store,
        &alice,
        "general",
        Change::Edit { target: 1 },
        "hello world",
    )
    .await
    .unwrap();
    assert_eq!(edit.message.seq, 2, "an event takes the next seq");
    assert_eq!(edit.message.change, Some(Change::Edit { target: 1 }));
    let page = store
        .history(&name("general"), bob.user_id, everything())
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[0].text, "hello world");
    assert!(page.messages[0].edited.is_some());
    assert_eq!(page.messages[1].change, Some(Change::Edit { target: 1 }));
    // The old text stays in the audit log, for the channel's moderators.
    let (entries, _) = store
        .audit_page(&actor(&alice, false), Some(&name("general")), None, 10)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "edit" && e.detail.contains("helo wrold")),
        "{entries:?}"
    );
    // Search finds the message by its new words, once, and not by its old ones.
    let found = store
        .search(bob.user_id, &Search::terms(vec!["world".into()], 10))
        .await
        .unwrap();
    let seqs: Vec<u64> = found.hits.iter().map(|(_, m)| m.seq).collect();
    assert_eq!(seqs, [1]);
    let old = store
        .search(bob.user_id, &Search::terms(vec!["wrold".into()], 10))
        .await
        .unwrap();
    assert!(old.hits.is_empty());
    let event = change(&store, &alice, "general", Change::Edit { target: 2 }, "x").await;
    refused(event, ErrorCode::Invalid, "is an edit, delete or reaction");
    let missing = change(&store, &alice, "general", Change::Edit { target: 9 }, "x").await;
    refused(missing, ErrorCode::NotFound, "#general has no message 9");
}

pub async fn a_delete_leaves_a_tombstone_and_moderators_may_delete_any(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let carol = user(&store, "carol", 3).await;
    join(&store, &bob, "general").await;
    join(&store, &carol, "general").await;
    post(&store, &bob, "general", "b1", "a secret")
        .await
        .unwrap();
    change(
        &store,
        &bob,
        "general",
        Change::Edit { target: 1 },
        "a secret, again",
    )
    .await
    .unwrap();
    change(&store, &carol, "general", react(1, false), "👀")
        .await
        .unwrap();
    let member = change(&store, &carol, "general", Change::Delete { target: 1 }, "").await;
    refused(
        member,
        ErrorCode::Forbidden,
        "only its sender and the moderators",
    );
    let moderator = ChannelAct::Role {
        user: name("carol"),
        role: Role::Moderator,
    };
    act(&store, &actor(&alice, false), "general", moderator)
        .await
        .unwrap();
    change(&store, &carol, "general", Change::Delete { target: 1 }, "")
        .await
        .unwrap();
    let page = store
        .history(&name("general"), alice.user_id, everything())
        .await
        .unwrap();
    let gone = &page.messages[0];
    assert!(gone.deleted);
    assert_eq!(gone.text, "");
    assert!(gone.reactions.is_empty());
    assert_eq!(page.messages[1].text, "", "the edit's text goes too");
    assert_eq!(page.messages[3].change, Some(Change::Delete { target: 1 }));
    let again = change(&store, &bob, "general", Change::Edit { target: 1 }, "back").await;
    refused(again, ErrorCode::NotFound, "#general:1 was deleted");
    let found = store
        .search(alice.user_id, &Search::terms(vec!["secret".into()], 10))
        .await
        .unwrap();
    assert!(found.hits.is_empty());
}

pub async fn reactions_are_counted_once_per_user_and_taken_back(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    post(&store, &alice, "general", "c1", "deploying")
        .await
        .unwrap();
    let first = change(&store, &bob, "general", react(1, false), "👍")
        .await
        .unwrap();
    let again = change(&store, &bob, "general", react(1, false), "👍")
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.seq, first.message.seq, "no second event");
    change(&store, &alice, "general", react(1, false), "👍")
        .await
        .unwrap();
    change(&store, &alice, "general", react(1, false), "seen")
        .await
        .unwrap();
    let page = store
        .history(&name("general"), bob.user_id, everything())
        .await
        .unwrap();
    let reactions = &page.messages[0].reactions;
    assert_eq!(reactions.len(), 2);
    assert_eq!(reactions[0].reaction, "👍");
    assert_eq!(reactions[0].count, 2);
    assert_eq!(reactions[0].users, [name("bob"), name("alice")]);
    change(&store, &bob, "general", react(1, true), "👍")
        .await
        .unwrap();
    let never = change(&store, &bob, "general", react(1, true), "seen").await;
    refused(
        never,
        ErrorCode::NotFound,
        "you have not reacted seen to #general:1",
    );
    let page = store
        .history(&name("general"), bob.user_id, everything())
        .await
        .unwrap();
    assert_eq!(page.messages[0].reactions[0].count, 1);
    assert_eq!(page.messages.last().unwrap().change, Some(react(1, true)));
}

pub async fn moderators_pin_messages_that_a_delete_unpins(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    post(&store, &bob, "general", "b1", "freeze until Friday")
        .await
        .unwrap();
    post(&store, &bob, "general", "b2", "other").await.unwrap();
    let pin = |seq| ChannelAct::Pin { seq };
    let member = act(&store, &actor(&bob, false), "general", pin(1)).await;
    refused(member, ErrorCode::Forbidden, "may pin messages");
    let owner = actor(&alice, false);
    act(&store, &owner, "general", pin(1)).await.unwrap();
    act(&store, &owner, "general", pin(2)).await.unwrap();
    let missing = act(&store, &owner, "general", pin(9)).await;
    refused(
        missing,
        ErrorCode::NotFound,
        "#general has no message 9 to pin",
    );
    let details = store
        .describe_channel(&name("general"), bob.user_id)
        .await
        .unwrap();
    let pinned: Vec<(u64, &str, &str)> = details
        .pins
        .iter()
        .map(|p| (p.seq, p.text.as_str(), p.by.as_str()))
        .collect();
    assert_eq!(
        pinned,
        [(2, "other", "alice"), (1, "freeze until Friday", "alice")]
    );
    act(&store, &owner, "general", ChannelAct::Unpin { seq: 2 })
        .await
        .unwrap();
    let again = act(&store, &owner, "general", ChannelAct::Unpin { seq: 2 }).await;
    refused(again, ErrorCode::NotFound, "#general:2 is not pinned");
    change(&store, &bob, "general", Change::Delete { target: 1 }, "")
        .await
        .unwrap();
    let details = store
        .describe_channel(&name("general"), bob.user_id)
        .await
        .unwrap();
    assert!(details.pins.is_empty(), "{:?}", details.pins);
}

pub async fn agents_edits_are_turns_and_deletes_forget_the_edited_text(store: impl Store) {
    let alice = setup(&store).await;
    let set = ChannelAct::Set {
        setting: conclave::net::protocol::ChannelSetting::AgentTurns { turns: 1 },
    };
    act(&store, &actor(&alice, false), "general", set)
        .await
        .unwrap();
    let (mut first, outcome) = message(&alice, SessionKind::Agent, "general", "a1", "draft one");
    first.kind = SessionKind::Agent;
    store.append(first).await;
    outcome.await.unwrap().unwrap();
    // The budget is spent: an agent's edit waits for a person like a post would.
    let (mut edit, outcome) = message(&alice, SessionKind::Agent, "general", "a2", "draft two");
    edit.change = Some(Change::Edit { target: 1 });
    store.append(edit).await;
    refused(
        outcome.await.unwrap(),
        ErrorCode::FloorClosed,
        "waiting for a person",
    );
    // A person's edit, then a delete: the replaced text leaves the audit log too.
    post(&store, &alice, "general", "h1", "secret token 42")
        .await
        .unwrap();
    change(
        &store,
        &alice,
        "general",
        Change::Edit { target: 2 },
        "oops",
    )
    .await
    .unwrap();
    change(&store, &alice, "general", Change::Delete { target: 2 }, "")
        .await
        .unwrap();
    let (entries, _) = store
        .audit_page(&actor(&alice, false), Some(&name("general")), None, 10)
        .await
        .unwrap();
    assert!(
        entries.iter().all(|e| !e.detail.contains("secret")),
        "{entries:?}"
    );
    assert!(entries.iter().any(|e| e.action == "edit"), "{entries:?}");
}

pub async fn a_direct_conversation_is_made_once_and_leaving_it_keeps_the_other_out(
    store: impl Store,
) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    let dm = Name::channel("alice+bob").unwrap();
    let made = store.open_direct(&dm, alice.user_id, 20).await.unwrap();
    assert_eq!(made.map(|info| info.members), Some(2));
    assert!(
        store
            .open_direct(&dm, bob.user_id, 20)
            .await
            .unwrap()
            .is_none()
    );
    let carol = user(&store, "carol", 3).await;
    let stranger = store.open_direct(&dm, carol.user_id, 20).await;
    refused(
        stranger,
        ErrorCode::NotFound,
        "there is no channel #alice+bob",
    );
    let nobody = store
        .open_direct(&Name::channel("alice+zed").unwrap(), alice.user_id, 20)
        .await;
    refused(nobody, ErrorCode::NotFound, "there is no user zed");
    // Bob leaves; alice writing again does not bring him back, his own use does.
    store.leave(&dm, bob.user_id).await.unwrap();
    store.open_direct(&dm, alice.user_id, 20).await.unwrap();
    let (_, members) = store.members(&dm, alice.user_id, 10).await.unwrap();
    assert_eq!(members, [name("alice")]);
    store.open_direct(&dm, bob.user_id, 20).await.unwrap();
    let (_, members) = store.members(&dm, alice.user_id, 10).await.unwrap();
    assert_eq!(members, [name("alice"), name("bob")]);
}

pub async fn one_user_starts_at_most_sixty_direct_conversations_an_hour(store: impl Store) {
    let alice = setup(&store).await;
    for n in 0..61u8 {
        let peer = format!("peer{n:02}");
        user(&store, &peer, n + 10).await;
        let dm = Name::channel(&format!("alice+{peer}")).unwrap();
        let opened = store.open_direct(&dm, alice.user_id, 20).await;
        if n < 60 {
            assert!(opened.unwrap().is_some(), "conversation {n}");
        } else {
            refused(
                opened,
                ErrorCode::RateLimited,
                "60 direct conversations in the last hour",
            );
        }
    }
}
