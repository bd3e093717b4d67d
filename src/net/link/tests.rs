//! The link against a scripted fake server over channel pairs: no sockets, paused time.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The fake server's id (server ids are hex).
const FAKE_ID: &str = "fa4e";

/// The server's end of one fake connection.
struct FakeConn {
    rx: mpsc::Receiver<ClientFrame>,
    tx: mpsc::Sender<ServerFrame>,
}

impl FakeConn {
    async fn recv(&mut self) -> ClientFrame {
        tokio::time::timeout(Duration::from_secs(60), self.rx.recv())
            .await
            .expect("client frame in time")
            .expect("connection open")
    }

    async fn send(&self, frame: ServerFrame) {
        self.tx.send(frame).await.unwrap();
    }

    /// Plays the server's side of the handshake and returns the Hello's handle and policy.
    async fn accept(&mut self, path: &str) -> (Name, OnConflict) {
        self.accept_as(path, FAKE_ID).await
    }

    /// `accept` as the server with id `server_id`.
    async fn accept_as(&mut self, path: &str, server_id: &str) -> (Name, OnConflict) {
        let (handle, policy) = match self.recv().await {
            ClientFrame::Hello {
                handle,
                on_conflict,
                ..
            } => (handle, on_conflict),
            other => panic!("expected hello, got {other:?}"),
        };
        self.send(ServerFrame::Challenge {
            nonce: vec![0; 32],
            server_id: server_id.into(),
        })
        .await;
        assert!(matches!(self.recv().await, ClientFrame::Auth { .. }));
        self.send(ServerFrame::Welcome {
            path: SessionPath::parse(path).unwrap(),
            server_id: server_id.into(),
            version: PROTOCOL_VERSION,
            admin: false,
        })
        .await;
        (handle, policy)
    }
}

type ConnectFuture = std::pin::Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

/// A connector whose first `failures` attempts fail; later ones hand the server end to the test.
fn connector(
    failures: usize,
) -> (
    impl Fn(String) -> ConnectFuture + Send + 'static,
    mpsc::UnboundedReceiver<FakeConn>,
    Arc<AtomicUsize>,
) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let (accepted_tx, accepted) = mpsc::unbounded_channel();
    let counter = attempts.clone();
    let connect = move |_url: String| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let accepted_tx = accepted_tx.clone();
        Box::pin(async move {
            if n < failures {
                return Err(ConnectError::transient("refused"));
            }
            let (client_tx, server_rx) = mpsc::channel(64);
            let (server_tx, client_rx) = mpsc::channel(64);
            accepted_tx
                .send(FakeConn {
                    rx: server_rx,
                    tx: server_tx,
                })
                .unwrap();
            Ok(Conn {
                tx: client_tx,
                rx: client_rx,
            })
        }) as ConnectFuture
    };
    (connect, accepted, attempts)
}

fn config(persistent: bool) -> LinkConfig {
    LinkConfig {
        url: "ws://fake".into(),
        identity: Arc::new(Identity::generate().unwrap()),
        handle: Name::handle("tui").unwrap(),
        handle_defaulted: true,
        kind: SessionKind::Human,
        login: Login::Key,
        persistent,
        ca_file: None,
        pin: ServerPin::default(),
    }
}

fn general() -> Name {
    Name::channel("general").unwrap()
}

fn msg(seq: u64) -> ChatMessage {
    ChatMessage {
        from_kind: None,
        channel: general(),
        seq,
        ts: 0,
        from: SessionPath::parse("bob/desk/bot").unwrap(),
        text: format!("m{seq}"),
        reply_to: None,
        change: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
    }
}

fn joined(id: u64, last_seq: u64) -> ServerFrame {
    ServerFrame::Joined {
        id,
        channel: ChannelInfo {
            topic: String::new(),
            archived: false,
            name: general(),
            visibility: Visibility::Public,
            member: true,
            last_seq,
            members: 0,
        },
        read_seq: 0,
        new_member: false,
    }
}

/// Joins #general through the link while playing the server's answer (`last_seq`).
async fn join(
    link: &LinkHandle,
    server: &mut FakeConn,
    resume: Resume,
    last_seq: u64,
) -> JoinReceipt {
    let joining = tokio::spawn({
        let link = link.clone();
        async move { link.join(&general(), resume).await }
    });
    let ClientFrame::Join { id, .. } = server.recv().await else {
        panic!("expected join")
    };
    server.send(joined(id, last_seq)).await;
    joining.await.unwrap().unwrap()
}

async fn next_event(events: &mut mpsc::Receiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(120), events.recv())
        .await
        .expect("event in time")
        .expect("link alive")
}

/// Skips connection-state events and returns the next message's sequence number.
async fn next_seq(events: &mut mpsc::Receiver<LinkEvent>) -> u64 {
    loop {
        match next_event(events).await {
            LinkEvent::Message(m) => return m.seq,
            LinkEvent::Connected { .. } | LinkEvent::Disconnected { .. } => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[test]
fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let lows: Vec<u128> = (0..6).map(|_| b.next_with(0.0).as_millis()).collect();
    assert_eq!(lows, [50, 100, 200, 400, 500, 500]);
    b.reset();
    assert_eq!(b.next_with(0.999_999).as_millis(), 99);
    let mut b = Backoff::default();
    for _ in 0..100 {
        let d = b.next_delay();
        assert!(d <= Duration::from_secs(30), "{d:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn connects_after_failures_and_reports_the_retry() {
    let (connect, mut accepted, attempts) = connector(2);
    let (_link, mut events) = spawn_with(config(true), connect);
    for _ in 0..2 {
        match next_event(&mut events).await {
            LinkEvent::Disconnected { reason, retry_in } => {
                assert!(reason.contains("refused"));
                assert!(retry_in > Duration::ZERO);
            }
            other => panic!("expected disconnected, got {other:?}"),
        }
    }
    let mut server = accepted.recv().await.unwrap();
    let (handle, policy) = server.accept("alice/laptop/tui").await;
    assert_eq!((handle.as_str(), policy), ("tui", OnConflict::Suffix));
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Connected { .. }
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

/// Every address a connector dialled, in order.
type Tried = Arc<std::sync::Mutex<Vec<String>>>;

/// A connector for several addresses: those in `down` refuse; the others hand the server end
/// to the test, with the address dialled.
fn addresses(
    down: &'static [&'static str],
) -> (
    impl Fn(String) -> ConnectFuture + Send + Sync + 'static,
    mpsc::UnboundedReceiver<(String, FakeConn)>,
    Tried,
) {
    let tried = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (accepted_tx, accepted) = mpsc::unbounded_channel();
    let log = tried.clone();
    let connect = move |url: String| {
        log.lock().unwrap().push(url.clone());
        let accepted_tx = accepted_tx.clone();
        Box::pin(async move {
            if down.contains(&url.as_str()) {
                return Err(ConnectError::transient(format!("cannot reach {url}")));
            }
            let (client_tx, server_rx) = mpsc::channel(64);
            let (server_tx, client_rx) = mpsc::channel(64);
            let conn = FakeConn {
                rx: server_rx,
                tx: server_tx,
            };
            accepted_tx.send((url, conn)).unwrap();
            Ok(Conn {
                tx: client_tx,
                rx: client_rx,
            })
        }) as ConnectFuture
    };
    (connect, accepted, tried)
}

#[tokio::test(start_paused = true)]
async fn several_addresses_are_tried_in_turn_and_the_one_that_answered_first_next_time() {
    let (connect, mut accepted, tried) = addresses(&["ws://a"]);
    let config = LinkConfig {
        url: "ws://a, ws://b,ws://c".into(),
        ..config(true)
    };
    let (_link, mut events) = spawn_with(config, connect);
    let (url, mut server) = accepted.recv().await.unwrap();
    assert_eq!(url, "ws://b");
    server.accept("alice/laptop/tui").await;
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Connected { .. }
    ));
    // b goes away at once: the next round starts after it, with c.
    drop(server);
    let (url, mut server) = accepted.recv().await.unwrap();
    assert_eq!(url, "ws://c");
    server.accept("alice/laptop/tui").await;
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Disconnected { .. }
    ));
    // c stays up: after it drops, c is tried first again.
    tokio::time::sleep(Backoff::STABLE_AFTER).await;
    drop(server);
    let (url, _server) = accepted.recv().await.unwrap();
    assert_eq!(url, "ws://c");
    assert_eq!(
        *tried.lock().unwrap(),
        ["ws://a", "ws://b", "ws://c", "ws://c"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_link_to_a_server_another_link_reached_is_not_opened() {
    let registry = LinkRegistry::default();
    let pin = |alias: &str| ServerPin {
        registry: Some((registry.clone(), alias.into())),
        ..ServerPin::default()
    };
    assert_eq!(
        handshake_under(pin("work"), "1b1b", "1b1b").await,
        (true, "connected".into())
    );
    let (signed, why) = handshake_under(pin("office"), "1b1b", "1b1b").await;
    assert!(!signed, "it signed in a second time");
    assert!(
        why.contains("`office`") && why.contains("reaches the same server as `work`"),
        "{why}"
    );
    // The first one reconnecting is still itself; another server is its own.
    assert_eq!(
        handshake_under(pin("work"), "1b1b", "1b1b").await,
        (true, "connected".into())
    );
    assert_eq!(
        handshake_under(pin("home"), "2c2c", "2c2c").await,
        (true, "connected".into())
    );
}

/// A link whose handshake is answered with `challenge_id`, under `pin`: what it sends back
/// (an `auth` when it signs) and how it ends.
async fn handshake_under(pin: ServerPin, challenge_id: &str, welcome_id: &str) -> (bool, String) {
    handshake_as(Login::Key, pin, challenge_id, welcome_id).await
}

/// `handshake_under`, signing in the way `login` says.
async fn handshake_as(
    login: Login,
    pin: ServerPin,
    challenge_id: &str,
    welcome_id: &str,
) -> (bool, String) {
    let (connect, mut accepted, _) = addresses(&[]);
    let config = LinkConfig {
        pin,
        login,
        ..config(false)
    };
    let (_link, mut events) = spawn_with(config, connect);
    let (_, mut server) = accepted.recv().await.unwrap();
    assert!(matches!(server.recv().await, ClientFrame::Hello { .. }));
    server
        .send(ServerFrame::Challenge {
            nonce: vec![0; 32],
            server_id: challenge_id.into(),
        })
        .await;
    let signed = matches!(
        tokio::time::timeout(Duration::from_secs(5), server.rx.recv()).await,
        Ok(Some(
            ClientFrame::Auth { .. } | ClientFrame::Register { .. }
        ))
    );
    if signed {
        server
            .send(ServerFrame::Welcome {
                path: SessionPath::parse("alice/laptop/tui").unwrap(),
                server_id: welcome_id.into(),
                version: PROTOCOL_VERSION,
                admin: false,
            })
            .await;
    }
    match next_event(&mut events).await {
        LinkEvent::Closed { reason } => (signed, reason),
        LinkEvent::Connected { .. } => (signed, "connected".into()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_signed_for_a_server_that_is_not_the_one_registered() {
    let pin = |expected: Option<&str>| ServerPin {
        expected: expected.map(Into::into),
        others: vec![("0a0a".into(), "work".into())],
        registry: None,
    };
    // The registered id signs in.
    assert_eq!(
        handshake_under(pin(Some("1b1b")), "1b1b", "1b1b").await,
        (true, "connected".into())
    );
    // Another id, another server's id (a relayed challenge), or one that is no id at all:
    // refused before signing.
    let (signed, why) = handshake_under(pin(Some("1b1b")), "2c2c", "2c2c").await;
    assert!(
        !signed && why.contains("is not the server registered here"),
        "{why}"
    );
    assert_eq!(
        handshake_under(pin(None), "0a0a", "0a0a").await,
        (true, "connected".into()),
        "an unregistered address of a known server is another way to it"
    );
    // Registering somewhere new that answers as `work` is refused before signing.
    let register = Login::Register {
        username: Name::user("alice").unwrap(),
        machine: Name::machine("laptop").unwrap(),
    };
    let (signed, why) = handshake_as(register, pin(None), "0a0a", "0a0a").await;
    assert!(
        !signed && why.contains("answers as your server `work`"),
        "{why}"
    );
    let (signed, why) = handshake_under(pin(None), "x\u{1b}[2J", "x").await;
    assert!(!signed && why.contains("malformed server id"), "{why}");
    // A welcome that names another server than the challenge did.
    let (_, why) = handshake_under(pin(None), "1b1b", "2c2c").await;
    assert!(
        why.contains("another server id than its challenge"),
        "{why}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_address_that_reaches_another_server_is_refused() {
    let (connect, mut accepted, _) = addresses(&[]);
    let config = LinkConfig {
        url: "ws://a,ws://b".into(),
        ..config(true)
    };
    let (_link, mut events) = spawn_with(config, connect);
    let (_, mut server) = accepted.recv().await.unwrap();
    server.accept_as("alice/laptop/tui", "01").await;
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Connected { .. }
    ));
    drop(server);
    let (_, mut other) = accepted.recv().await.unwrap();
    assert!(matches!(other.recv().await, ClientFrame::Hello { .. }));
    other
        .send(ServerFrame::Challenge {
            nonce: vec![0; 32],
            server_id: "02".into(),
        })
        .await;
    loop {
        match next_event(&mut events).await {
            LinkEvent::Closed { reason } => {
                assert!(
                    reason.contains("is not the server registered here"),
                    "{reason}"
                );
                break;
            }
            LinkEvent::Disconnected { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn one_shot_link_gives_up_with_the_reason() {
    let (connect, _accepted, _) = connector(usize::MAX);
    let (link, mut events) = spawn_with(config(false), connect);
    assert!(
        matches!(next_event(&mut events).await, LinkEvent::Closed { reason } if reason.contains("refused"))
    );
    let e = link.who(None).await.unwrap_err();
    assert_eq!(e, LinkError::Closed("refused".into()));
}

#[tokio::test(start_paused = true)]
async fn reconnect_rejoins_fills_the_gap_and_drops_duplicates() {
    let (connect, mut accepted, _) = connector(0);
    let (link, mut events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;

    assert_eq!(
        join(&link, &mut server, Resume::Live, 2)
            .await
            .channel
            .last_seq,
        2
    );

    server.send(ServerFrame::Message(msg(3))).await;
    server.send(ServerFrame::Message(msg(3))).await; // duplicate
    assert_eq!(next_seq(&mut events).await, 3);

    // The connection drops; the server stores 4..=6 meanwhile.
    drop(server);
    let mut server = accepted.recv().await.unwrap();
    let (handle, policy) = server.accept("alice/laptop/tui").await;
    assert_eq!(
        policy,
        OnConflict::Suffix,
        "the instance id, not the policy, claims the path back"
    );
    assert_eq!(handle.as_str(), "tui");
    let ClientFrame::Join { id, channel, .. } = server.recv().await else {
        panic!("expected re-join")
    };
    assert_eq!(channel, general());
    // A live message overtakes the history fetch.
    server.send(joined(id, 6)).await;
    server.send(ServerFrame::Message(msg(7))).await;
    let ClientFrame::History { id, after, .. } = server.recv().await else {
        panic!("expected history")
    };
    assert_eq!(after, Some(3));
    server
        .send(ServerFrame::History {
            id,
            channel: general(),
            messages: vec![msg(4), msg(5), msg(6)],
            more: false,
        })
        .await;
    for expected in 4..=7 {
        assert_eq!(next_seq(&mut events).await, expected);
    }
    server.send(ServerFrame::Message(msg(5))).await;
    server.send(ServerFrame::Message(msg(8))).await;
    assert_eq!(next_seq(&mut events).await, 8);
}

#[tokio::test(start_paused = true)]
async fn last_n_starts_n_messages_back() {
    let (connect, mut accepted, _) = connector(0);
    let (link, mut events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tail").await;
    join(&link, &mut server, Resume::Last(2), 10).await;
    let ClientFrame::History { id, after, .. } = server.recv().await else {
        panic!("expected history")
    };
    assert_eq!(after, Some(8));
    // A page that says there is more makes the link ask for the next one.
    server
        .send(ServerFrame::History {
            id,
            channel: general(),
            messages: vec![msg(9)],
            more: true,
        })
        .await;
    assert_eq!(next_seq(&mut events).await, 9);
    let ClientFrame::History { id, after, .. } = server.recv().await else {
        panic!("expected the next page")
    };
    assert_eq!(after, Some(9));
    server
        .send(ServerFrame::History {
            id,
            channel: general(),
            messages: vec![msg(10)],
            more: false,
        })
        .await;
    assert_eq!(next_seq(&mut events).await, 10);
}

#[tokio::test(start_paused = true)]
async fn unanswered_sends_are_resent_with_the_same_client_id() {
    let (connect, mut accepted, _) = connector(0);
    let (link, mut events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;

    let sending = tokio::spawn({
        let link = link.clone();
        async move { link.send(&general(), "hello").await }
    });
    let ClientFrame::Send {
        client_id: first, ..
    } = server.recv().await
    else {
        panic!("expected send")
    };
    drop(server); // lost before the answer

    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;
    let ClientFrame::Send {
        id,
        client_id,
        text,
        ..
    } = server.recv().await
    else {
        panic!("expected resend")
    };
    assert_eq!((client_id, text.as_str()), (first, "hello"));
    server
        .send(ServerFrame::Sent {
            id,
            channel: general(),
            seq: 1,
            ts: 0,
            duplicate: true,
        })
        .await;
    let receipt = sending.await.unwrap().unwrap();
    assert!(receipt.duplicate);
    assert_eq!(receipt.seq, 1);
    // Nothing else is pending: the event stream only saw connection changes.
    while let Ok(event) = events.try_recv() {
        assert!(matches!(
            event,
            LinkEvent::Connected { .. } | LinkEvent::Disconnected { .. }
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_keeps_growing_while_connections_die_at_once() {
    let (connect, mut accepted, _) = connector(0);
    let (_link, mut events) = spawn_with(config(true), connect);
    let mut delays = Vec::new();
    for _ in 0..4 {
        let mut server = accepted.recv().await.unwrap();
        server.accept("alice/laptop/tui").await;
        drop(server);
        loop {
            if let LinkEvent::Disconnected { retry_in, .. } = next_event(&mut events).await {
                delays.push(retry_in);
                break;
            }
        }
    }
    // Had any of these short-lived connections reset the backoff, every delay would stay
    // within the first step (at most 250 ms); the fourth is at least half of 8 x 250 ms.
    assert!(delays[0] <= Duration::from_millis(250), "{delays:?}");
    assert!(delays[3] >= Duration::from_millis(1000), "{delays:?}");
}

#[tokio::test(start_paused = true)]
async fn server_refusals_are_final_and_explained() {
    let (connect, mut accepted, _) = connector(0);
    let (link, mut events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    assert!(matches!(server.recv().await, ClientFrame::Hello { .. }));
    server
        .send(ServerFrame::error(
            None,
            ProtocolError::new(ErrorCode::VersionMismatch, "too old"),
        ))
        .await;
    assert_eq!(
        next_event(&mut events).await,
        LinkEvent::Closed {
            reason: "too old".into()
        }
    );
    assert_eq!(
        link.list_channels().await.unwrap_err(),
        LinkError::Closed("too old".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_left_channel_is_not_rejoined_and_a_new_join_starts_fresh() {
    let (connect, mut accepted, _) = connector(0);
    let (link, mut events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;
    join(&link, &mut server, Resume::Live, 2).await;

    let leaving = tokio::spawn({
        let link = link.clone();
        async move { link.leave(&general()).await }
    });
    let ClientFrame::Leave { id, .. } = server.recv().await else {
        panic!("expected leave")
    };
    // A message already on its way is no longer delivered.
    server.send(ServerFrame::Message(msg(3))).await;
    server
        .send(ServerFrame::Left {
            id,
            channel: general(),
            membership_ended: true,
        })
        .await;
    assert!(leaving.await.unwrap().unwrap());

    drop(server);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;
    // Nothing is re-joined: the next frame is the caller's new join, which starts live.
    join(&link, &mut server, Resume::Live, 9).await;
    server.send(ServerFrame::Message(msg(10))).await;
    assert_eq!(next_seq(&mut events).await, 10, "no replay of 3..=9");
}

#[tokio::test(start_paused = true)]
async fn requests_that_may_have_been_done_fail_instead_of_repeating() {
    let (connect, mut accepted, _) = connector(0);
    let (link, _events) = spawn_with(config(true), connect);
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;
    let whisper = |text: &'static str| {
        let link = link.clone();
        tokio::spawn(async move {
            link.whisper(&SessionPath::parse("bob/desk/cli").unwrap(), text)
                .await
        })
    };
    let in_flight = whisper("in flight");
    assert!(matches!(server.recv().await, ClientFrame::Whisper { .. }));
    drop(server);
    let e = in_flight.await.unwrap().unwrap_err();
    assert!(
        e.to_string().contains("may or may not have been done"),
        "{e}"
    );

    // One made while offline waits and goes out once connected.
    let queued = whisper("queued");
    let mut server = accepted.recv().await.unwrap();
    server.accept("alice/laptop/tui").await;
    let ClientFrame::Whisper { id, text, .. } = server.recv().await else {
        panic!("expected the queued whisper")
    };
    assert_eq!(text, "queued");
    server.send(ServerFrame::Done { id }).await;
    queued.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_hello_carries_the_same_instance_id() {
    let (connect, mut accepted, _) = connector(0);
    let (_link, _events) = spawn_with(config(true), connect);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut server = accepted.recv().await.unwrap();
        let ClientFrame::Hello {
            instance,
            on_conflict,
            ..
        } = server.recv().await
        else {
            panic!("expected hello")
        };
        assert_eq!(
            on_conflict,
            OnConflict::Suffix,
            "a defaulted handle keeps its policy"
        );
        ids.push(instance.unwrap());
        drop(server);
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), 32);
}
