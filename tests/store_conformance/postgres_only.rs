//! What only the PostgreSQL store has to prove, beyond the suite: instances sharing one
//! database number a channel's messages without gaps or repeats and answer a resend from
//! either one; a lost database is `unavailable`, nothing is acknowledged that was not stored,
//! and the store serves again by itself once the database is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conclave::net::protocol::{ChannelAct, ChannelSetting, ErrorCode, ReplyMode, SessionKind};
use conclave::server::store::{HistoryRange, PostgresStore, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{act, actor, join, message, name, post, refused, seqs, setup, user};
use crate::test_postgres::{fresh_schema, test_url};

/// A store on `url`, with no publish hook.
async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, Duration::from_secs(3600), Box::new(|_| {}))
        .await
        .unwrap()
}

fn everything() -> HistoryRange {
    HistoryRange {
        after: Some(0),
        before: None,
        limit: 200,
        thread: None,
    }
}

#[tokio::test]
async fn instances_on_one_database_number_a_channel_without_gaps_or_repeats() {
    let Some(url) = test_url() else { return };
    let url = fresh_schema(&url).await;
    // Both migrate at once: one waits for the other.
    let (one, two) = tokio::join!(open(&url), open(&url));
    let alice = setup(&one).await;
    let bob = user(&two, "bob", 2).await;
    join(&two, &bob, "general").await;
    let mut outcomes = Vec::new();
    for n in 0..60 {
        let (store, who): (&PostgresStore, _) = if n % 2 == 0 {
            (&one, &alice)
        } else {
            (&two, &bob)
        };
        let (append, outcome) = message(who, SessionKind::Human, "general", &format!("c{n}"), "hi");
        store.append(append).await;
        outcomes.push(outcome);
    }
    let mut got = Vec::new();
    for outcome in outcomes {
        got.push(outcome.await.unwrap().unwrap().message.seq);
    }
    got.sort_unstable();
    assert_eq!(got, (1..=60).collect::<Vec<_>>());
    let page = two
        .history(&name("general"), bob.user_id, everything())
        .await
        .unwrap();
    assert_eq!(seqs(&page), got);
    // A resend after a lost acknowledgement, through the other instance: the same message.
    let first = post(&one, &alice, "general", "c0", "hi").await.unwrap();
    let again = post(&two, &alice, "general", "c0", "hi").await.unwrap();
    assert!(first.duplicate && again.duplicate);
    assert_eq!(again.message.seq, first.message.seq);
}

#[tokio::test]
async fn a_mention_made_through_another_instance_lets_the_agent_answer_here() {
    let Some(url) = test_url() else { return };
    let url = fresh_schema(&url).await;
    let (one, two) = tokio::join!(open(&url), open(&url));
    let alice = setup(&one).await;
    let mention_only = ChannelAct::Set {
        setting: ChannelSetting::ReplyMode {
            mode: ReplyMode::Mention,
        },
    };
    act(&one, &actor(&alice, false), "general", mention_only)
        .await
        .unwrap();
    let agent_posts = |store: &PostgresStore, client_id: &str| {
        let (append, outcome) = message(&alice, SessionKind::Agent, "general", client_id, "hi");
        let store = store.clone();
        async move {
            store.append(append).await;
            outcome.await.unwrap()
        }
    };
    refused(
        agent_posts(&two, "a1").await,
        ErrorCode::FloorClosed,
        "mentions only",
    );
    // The person mentions the agent through the other instance.
    post(&one, &alice, "general", "p1", "what do you think, @bot?")
        .await
        .unwrap();
    agent_posts(&two, "a2").await.unwrap();
    // That mention is answered: the next post waits for another.
    refused(
        agent_posts(&two, "a3").await,
        ErrorCode::FloorClosed,
        "mentions only",
    );
}

#[tokio::test]
async fn a_session_taken_over_on_another_instance_can_post_no_more() {
    let Some(url) = test_url() else { return };
    let url = fresh_schema(&url).await;
    let (one, two) = tokio::join!(open(&url), open(&url));
    let alice = setup(&one).await;
    let post_as = |store: &PostgresStore, client_id: &str, claim: Option<i64>| {
        let (mut append, outcome) = message(&alice, SessionKind::Human, "general", client_id, "hi");
        append.claim = claim;
        let store = store.clone();
        async move {
            store.append(append).await;
            outcome.await.unwrap()
        }
    };
    let path = conclave::net::names::SessionPath::parse("alice/laptop/cli").unwrap();
    let first = one.claim_path(&path).await.unwrap();
    assert_eq!(first, Some(1));
    post_as(&two, "c1", first).await.unwrap();
    // The path signs in again through the other instance: the first claim is over.
    let second = two.claim_path(&path).await.unwrap();
    assert_eq!(second, Some(2));
    refused(
        post_as(&one, "c2", first).await,
        ErrorCode::Conflict,
        "connected again from elsewhere",
    );
    post_as(&one, "c3", second).await.unwrap();
    // Unclaimed (a store of one instance) is never refused for it.
    post_as(&one, "c4", None).await.unwrap();
}

#[tokio::test]
async fn a_lost_database_is_unavailable_and_the_store_recovers_by_itself() {
    let Some(url) = test_url() else { return };
    let url = fresh_schema(&url).await;
    let config: tokio_postgres::Config = url.parse().unwrap();
    let target = match (&config.get_hosts()[0], config.get_ports()[0]) {
        (tokio_postgres::config::Host::Tcp(host), port) => format!("{host}:{port}"),
        other => panic!("the test database must be on TCP, not {other:?}"),
    };
    let proxy = Proxy::start(&target).await;
    let store = open(&url.replacen(&target, &proxy.addr, 1)).await;
    let alice = setup(&store).await;
    post(&store, &alice, "general", "c1", "before")
        .await
        .unwrap();

    proxy.cut();
    let lost = post(&store, &alice, "general", "c2", "during").await;
    refused(lost, ErrorCode::Unavailable, "cannot be reached");
    let read = store
        .history(&name("general"), alice.user_id, everything())
        .await;
    refused(read, ErrorCode::Unavailable, "cannot be reached");
    let signed_in = store.account_by_key(&[1; 32]).await;
    refused(signed_in, ErrorCode::Unavailable, "cannot be reached");

    proxy.restore();
    // The resend the client makes: it lands once, right after the one before the loss.
    let deadline = Instant::now() + Duration::from_secs(20);
    let resent = loop {
        match post(&store, &alice, "general", "c2", "during").await {
            Ok(appended) => break appended,
            Err(e) if e.code == ErrorCode::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert_eq!(resent.message.seq, 2);
    let page = store
        .history(&name("general"), alice.user_id, everything())
        .await
        .unwrap();
    assert_eq!(seqs(&page), [1, 2]);
}

/// A TCP proxy in front of the database that can lose it: `cut` drops every connection and
/// refuses new ones until `restore`.
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
    live: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let live = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (target, accepting, tokens) = (target.to_owned(), up.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(mut server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let cut = tokens.lock().unwrap().clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Self { addr, up, live }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut live = self.live.lock().unwrap();
        live.cancel();
        *live = CancellationToken::new();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
