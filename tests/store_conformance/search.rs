//! Search: words and phrases, filters, pages newest first, and never a channel the user may
//! not read; the index follows purges.

use conclave::net::names::{Name, SessionPath};
use conclave::net::protocol::{SessionKind, Visibility, search_terms};
use conclave::server::store::{Found, Search, Sender, Store, now_ms};

use crate::support::{channel, join, message, name, post, setup, user};

fn search(query: &str) -> Search {
    Search::terms(search_terms(query).unwrap(), 10)
}

fn texts(found: &Found) -> Vec<&str> {
    found.hits.iter().map(|(_, m)| m.text.as_str()).collect()
}

pub async fn search_finds_words_and_phrases_newest_first(store: impl Store) {
    let alice = setup(&store).await;
    for (i, text) in [
        "the deploy is green",
        "green tea and a deploy",
        "Deploy failed: build is red",
        "nothing here",
    ]
    .iter()
    .enumerate()
    {
        post(&store, &alice, "general", &format!("c{i}"), text)
            .await
            .unwrap();
    }
    let found = store
        .search(alice.user_id, &search("DEPLOY"))
        .await
        .unwrap();
    assert_eq!(
        texts(&found),
        [
            "Deploy failed: build is red",
            "green tea and a deploy",
            "the deploy is green"
        ]
    );
    assert!(!found.more);
    let phrase = store
        .search(alice.user_id, &search(r#""deploy is green""#))
        .await
        .unwrap();
    assert_eq!(texts(&phrase), ["the deploy is green"]);
    let both = store
        .search(alice.user_id, &search("green deploy"))
        .await
        .unwrap();
    assert_eq!(texts(&both).len(), 2);
    // Query syntax of the index is only ever text to look for.
    let odd = store
        .search(alice.user_id, &search(r#"deploy" OR "NEAR(x"#))
        .await
        .unwrap();
    assert!(odd.hits.is_empty());
}

pub async fn search_pages_and_filters(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    join(&store, &bob, "general").await;
    for n in 0..5 {
        post(
            &store,
            &alice,
            "general",
            &format!("a{n}"),
            &format!("ping {n}"),
        )
        .await
        .unwrap();
    }
    post(&store, &bob, "general", "b0", "ping from bob")
        .await
        .unwrap();
    let (append, outcome) = message(&alice, SessionKind::Agent, "general", "bot0", "ping bot");
    store.append(append).await;
    outcome.await.unwrap().unwrap();

    let mut query = search("ping");
    query.limit = 3;
    let first = store.search(alice.user_id, &query).await.unwrap();
    assert_eq!(texts(&first), ["ping bot", "ping from bob", "ping 4"]);
    assert!(first.more);
    query.before = first.next();
    let second = store.search(alice.user_id, &query).await.unwrap();
    assert_eq!(texts(&second), ["ping 3", "ping 2", "ping 1"]);

    let mut by_bob = search("ping");
    by_bob.from = Some(Sender::User(Name::user("bob").unwrap()));
    assert_eq!(
        texts(&store.search(alice.user_id, &by_bob).await.unwrap()),
        ["ping from bob"]
    );
    let mut by_session = search("ping");
    let agent_path = SessionPath::parse("alice/laptop/bot").unwrap();
    by_session.from = Some(Sender::Session(agent_path));
    assert_eq!(
        texts(&store.search(alice.user_id, &by_session).await.unwrap()),
        ["ping bot"]
    );
    let mut agents = search("ping");
    agents.kind = Some(SessionKind::Agent);
    assert_eq!(
        texts(&store.search(alice.user_id, &agents).await.unwrap()),
        ["ping bot"]
    );
    let mut later = search("ping");
    later.since = Some(now_ms() + 60_000);
    assert!(
        store
            .search(alice.user_id, &later)
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    let mut earlier = search("ping");
    earlier.until = Some(now_ms() + 60_000);
    assert_eq!(
        store
            .search(alice.user_id, &earlier)
            .await
            .unwrap()
            .hits
            .len(),
        7
    );
}

pub async fn search_never_shows_a_channel_the_user_may_not_read(store: impl Store) {
    let alice = setup(&store).await;
    let bob = user(&store, "bob", 2).await;
    channel(&store, &alice, "secret", Visibility::Private).await;
    post(&store, &alice, "secret", "s1", "the launch code")
        .await
        .unwrap();
    post(&store, &alice, "general", "g1", "launch party")
        .await
        .unwrap();
    // Not a member anywhere: nothing, not even the public channel's.
    assert!(
        store
            .search(bob.user_id, &search("launch"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    join(&store, &bob, "general").await;
    let found = store.search(bob.user_id, &search("launch")).await.unwrap();
    assert_eq!(texts(&found), ["launch party"]);
    let mut inside = search("launch");
    inside.channel = Some(name("secret"));
    let refused = store.search(bob.user_id, &inside).await.unwrap_err();
    assert!(
        refused.message.contains("there is no channel #secret"),
        "{refused}"
    );
    let found = store.search(alice.user_id, &inside).await.unwrap();
    assert_eq!(texts(&found), ["the launch code"]);
}

pub async fn a_purged_message_is_no_longer_found(store: impl Store) {
    let alice = setup(&store).await;
    post(&store, &alice, "general", "c1", "ephemeral words")
        .await
        .unwrap();
    assert_eq!(
        store
            .search(alice.user_id, &search("ephemeral"))
            .await
            .unwrap()
            .hits
            .len(),
        1
    );
    store.purge(now_ms() + 1).await.unwrap();
    assert!(
        store
            .search(alice.user_id, &search("ephemeral"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}
