//! Attacks on a server on loopback, each the reproduction of one that once worked: a client
//! that asks and never reads, one account taking every connection slot, mass registration and
//! channel creation, and a removal racing a join into a private channel.
#![allow(clippy::unwrap_used)]

mod inproc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use conclave::net::codec;
use conclave::net::identity::Identity;
use conclave::net::link::{LinkEvent, Login, Resume, new_client_id};
use conclave::net::names::Name;
use conclave::net::protocol::{
    ClientFrame, CloseReason, ErrorCode, MAX_HISTORY_PAGE, MAX_TEXT_BYTES, ServerFrame,
    SessionKind, Visibility,
};
use conclave::server::ServerConfig;
use conclave::server::admission::Limits;
use inproc::*;

fn with_limits(limits: Limits) -> ServerConfig {
    ServerConfig {
        limits,
        ..ServerConfig::ephemeral()
    }
}

/// Waits until `check` holds, polling; fails the test after `WAIT`.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_asks_and_never_reads_is_closed_after_a_few_mib() {
    let server = start().await;
    let alice = client(&server, "alice", "a").await;
    let general = Name::channel("general").unwrap();
    alice
        .link
        .create_channel(&general, Visibility::Public)
        .await
        .unwrap();
    alice.link.join(&general, Resume::Live).await.unwrap();
    unlimit_agent_turns(&server, &alice, &general).await;
    let big = "x".repeat(MAX_TEXT_BYTES - 100);
    for _ in 0..20 {
        alice.link.send(&general, &big).await.unwrap();
    }

    // Each answer is a ~250 KiB history page; 200 of them would be 50 MiB held for one peer.
    const ASKED: u64 = 200;
    let mut mallory = raw_login(&server, "mallory").await;
    for id in 1..=ASKED {
        let ask = ClientFrame::History {
            id,
            channel: general.clone(),
            after: Some(0),
            before: None,
            limit: MAX_HISTORY_PAGE,
            thread: None,
        };
        mallory
            .send(Message::Binary(codec::encode(&ask).unwrap().into()))
            .await
            .unwrap();
    }
    // Without reading a byte: the server gives up on mallory and says so to nobody else.
    eventually("mallory is dropped", || async {
        let who = alice.link.who(None).await.unwrap();
        !who.sessions
            .iter()
            .any(|s| s.path.user.as_str() == "mallory")
    })
    .await;

    let mut answers = 0;
    let mut closing = None;
    loop {
        match tokio::time::timeout(WAIT, mallory.next()).await.unwrap() {
            Some(Ok(Message::Binary(bytes))) => match codec::decode_limited(&bytes, 2 << 20) {
                Ok(ServerFrame::History { .. }) => answers += 1,
                Ok(ServerFrame::Closing { reason, .. }) => closing = Some(reason),
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        answers < ASKED,
        "all {answers} answers were held for a peer that never read"
    );
    // The farewell frame may be lost: the server closes with mallory's unread requests still
    // in its receive buffer, which resets the connection.
    assert!(
        matches!(closing, None | Some(CloseReason::TooSlow)),
        "{closing:?}"
    );
    // Everyone else carries on.
    alice.link.send(&general, "still here").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn one_account_cannot_take_every_slot_and_refusals_say_why() {
    let server = start_with(with_limits(Limits {
        max_sessions_per_user: 2,
        max_connections_per_address: 4,
        ..Limits::default()
    }))
    .await;
    let identity = Arc::new(Identity::generate().unwrap());
    let register = Login::Register {
        username: Name::user("alice").unwrap(),
        machine: Name::machine("m").unwrap(),
    };
    let (one, mut one_events) = connect(&server, identity.clone(), register, "one", false);
    assert!(matches!(
        next_event(&mut one_events).await,
        LinkEvent::Connected { .. }
    ));
    let (_two, mut two_events) = connect(&server, identity.clone(), Login::Key, "two", false);
    assert!(matches!(
        next_event(&mut two_events).await,
        LinkEvent::Connected { .. }
    ));
    let (_three, mut three_events) = connect(&server, identity.clone(), Login::Key, "three", false);
    match next_event(&mut three_events).await {
        LinkEvent::Closed { reason } | LinkEvent::Disconnected { reason, .. } => {
            assert!(reason.contains("alice already has 2 sessions"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Two connections are open from 127.0.0.1; two more fit, the fifth is told why.
    let _bob = client(&server, "bob", "b").await;
    let _carol = client(&server, "carol", "c").await;
    let mut refused = raw(&server).await;
    match raw_next(&mut refused).await {
        Some(ServerFrame::Error { code, message, .. }) => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(
                message.contains("127.0.0.1 already has 4 connections"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(raw_next(&mut refused).await.is_none());

    // A slot freed is a slot taken again: the server kept accepting.
    drop(one);
    let dan = async {
        loop {
            let handle = Name::handle("x").unwrap();
            if let (_, Some(ServerFrame::Challenge { .. })) = raw_hello(&server, &handle).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, dan).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn registrations_and_channels_are_capped_with_clear_refusals() {
    let server = start_with(with_limits(Limits {
        registrations_per_address_per_hour: 2,
        max_channels_per_user: 2,
        ..Limits::default()
    }))
    .await;
    let alice_key = Arc::new(Identity::generate().unwrap());
    let register_alice = || Login::Register {
        username: Name::user("alice").unwrap(),
        machine: Name::machine("m").unwrap(),
    };
    let (alice, mut alice_events) =
        connect(&server, alice_key.clone(), register_alice(), "a", false);
    assert!(matches!(
        next_event(&mut alice_events).await,
        LinkEvent::Connected { .. }
    ));
    let _bob = client(&server, "bob", "b").await;
    let login = Login::Register {
        username: Name::user("carol").unwrap(),
        machine: Name::machine("m").unwrap(),
    };
    let (_carol, mut events) = connect(
        &server,
        Arc::new(Identity::generate().unwrap()),
        login,
        "c",
        false,
    );
    match next_event(&mut events).await {
        LinkEvent::Closed { reason } | LinkEvent::Disconnected { reason, .. } => assert!(
            reason.contains("2 accounts were registered from 127.0.0.1 in the last hour"),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Re-running a registration with the enrolled key makes nothing, so the cap lets it be.
    let (_again, mut again) = connect(&server, alice_key, register_alice(), "again", false);
    assert!(matches!(
        next_event(&mut again).await,
        LinkEvent::Connected { .. }
    ));

    for name in ["one", "two"] {
        let channel = Name::channel(name).unwrap();
        alice
            .create_channel(&channel, Visibility::Public)
            .await
            .unwrap();
    }
    let third = Name::channel("three").unwrap();
    let refused = alice
        .create_channel(&third, Visibility::Public)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("you have created 2 channels"), "{refused}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_racing_a_join_always_wins() {
    let server = start().await;
    let alice = client(&server, "alice", "a")
        .await
        .person(&server, "tui")
        .await;
    let bob = client(&server, "bob", "b").await;
    let secret = Name::channel("secret").unwrap();
    let bob_name = Name::user("bob").unwrap();
    alice
        .link
        .create_channel(&secret, Visibility::Private)
        .await
        .unwrap();
    for round in 0..300 {
        alice.link.add_member(&secret, &bob_name).await.unwrap();
        let (joined, removed) = tokio::join!(
            bob.link.join(&secret, Resume::Live),
            alice.link.remove_member(&secret, &bob_name),
        );
        removed.unwrap();
        let who = alice.link.who(Some(&secret)).await.unwrap();
        let leaked = who.sessions.iter().any(|s| s.path.user == bob_name);
        assert!(
            !leaked,
            "round {round}: bob was removed but still receives #secret (join: {joined:?})"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_long_channel_list_comes_in_pages_no_answer_outgrows_a_frame() {
    let server = start_with(with_limits(Limits {
        max_channels_per_user: 2_000,
        ..Limits::default()
    }))
    .await;
    let alice = client(&server, "alice", "a").await;
    let made = 2 * conclave::net::protocol::MAX_CHANNEL_PAGE as usize + 7;
    for n in 0..made {
        let channel = Name::channel(&format!("room-{n:05}")).unwrap();
        alice
            .link
            .create_channel(&channel, Visibility::Public)
            .await
            .unwrap();
    }
    // Asking for everything at once gets one capped page and a way on.
    let page = alice
        .link
        .list_channels_page(None, Some(u32::MAX))
        .await
        .unwrap();
    assert_eq!(
        page.channels.len(),
        conclave::net::protocol::MAX_CHANNEL_PAGE as usize
    );
    assert!(page.more);
    let all = alice.link.list_channels().await.unwrap();
    assert_eq!(all.len(), made);
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    server.stop().await;
}

#[tokio::test]
async fn nobody_can_enroll_a_key_they_do_not_hold() {
    let server = start().await;
    // The victim's public key is public; the attacker tries to put it under their account,
    // so that the victim would be signed in as the attacker.
    let victim = Identity::generate().unwrap();
    let mut mallory = raw_login(&server, "mallory").await;
    let add = ClientFrame::AddMachine {
        id: 7,
        machine: Name::machine("trap").unwrap(),
        public_key: victim.public_key().to_vec(),
    };
    raw_send(&mut mallory, &add).await;
    match raw_next(&mut mallory).await {
        Some(ServerFrame::Error { code, message, .. }) => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("machine invite"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // With an invite code of mallory's, only a key whose holder signs can be enrolled: the
    // victim's key without its signature is refused.
    let invite = ClientFrame::InviteMachine {
        id: 8,
        machine: Name::machine("trap").unwrap(),
    };
    raw_send(&mut mallory, &invite).await;
    let Some(ServerFrame::MachineInvite { code, .. }) = raw_next(&mut mallory).await else {
        panic!("expected an invite")
    };
    let (mut ws, answer) = raw_hello(&server, &Name::handle("x").unwrap()).await;
    let Some(ServerFrame::Challenge { .. }) = answer else {
        panic!("expected a challenge")
    };
    let enroll = ClientFrame::Enroll {
        code,
        public_key: victim.public_key().to_vec(),
        signature: vec![0; 64],
    };
    raw_send(&mut ws, &enroll).await;
    match raw_next(&mut ws).await {
        Some(ServerFrame::Error { code, message, .. }) => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("signature does not match"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.stop().await;
}

/// A link signing in as `identity`, of `kind`, under `handle` (a one-shot: it gives up at the
/// first failure, so a refusal arrives as an event).
fn sign_in(
    server: &TestServer,
    identity: &Arc<Identity>,
    kind: SessionKind,
    handle: &str,
) -> (
    conclave::net::link::LinkHandle,
    tokio::sync::mpsc::Receiver<LinkEvent>,
) {
    conclave::net::ws::spawn_link(conclave::net::link::LinkConfig {
        url: server.url.clone(),
        identity: identity.clone(),
        handle: Name::handle(handle).unwrap(),
        handle_defaulted: true,
        kind,
        login: Login::Key,
        persistent: false,
        ca_file: None,
        pin: Default::default(),
    })
}

#[tokio::test]
async fn with_a_human_key_the_machine_key_can_no_longer_pose_as_the_person() {
    use conclave::net::human_key::registration_message;
    let server = start().await;
    let machine_key = Arc::new(Identity::generate().unwrap());
    let register = Login::Register {
        username: Name::user("alice").unwrap(),
        machine: Name::machine("m").unwrap(),
    };
    let (agent, mut agent_events) = connect(&server, machine_key.clone(), register, "agent", false);
    let LinkEvent::Connected { server_id, .. } = next_event(&mut agent_events).await else {
        panic!("expected the agent to connect")
    };
    // A human session on the machine key, from before the human key existed.
    let (_old_tui, mut old_tui_events) = sign_in(&server, &machine_key, SessionKind::Human, "tui");
    assert!(matches!(
        next_event(&mut old_tui_events).await,
        LinkEvent::Connected { .. }
    ));

    let human_key = Identity::generate().unwrap();
    let (alice, m) = (Name::user("alice").unwrap(), Name::machine("m").unwrap());
    let signed = registration_message(&server_id, &alice, &m, &human_key.public_key());
    // A signature by another key proves nothing.
    let forged = Identity::generate().unwrap().sign(&signed);
    assert!(
        agent
            .set_human_key(human_key.public_key(), forged)
            .await
            .is_err()
    );
    agent
        .set_human_key(human_key.public_key(), human_key.sign(&signed))
        .await
        .unwrap();
    // The old human session signed in with the machine key is ended.
    match next_event(&mut old_tui_events).await {
        LinkEvent::Closed { reason } | LinkEvent::Disconnected { reason, .. } => {
            assert!(reason.contains("keys of alice/m changed"), "{reason}")
        }
        other => panic!("expected the old human session to end, got {other:?}"),
    }
    // The machine key may no longer open a human session ...
    let (_posing, mut posing) = sign_in(&server, &machine_key, SessionKind::Human, "tui");
    match next_event(&mut posing).await {
        LinkEvent::Closed { reason } => assert!(reason.contains("uses human keys"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ... but the human key may, as alice/m, and the machine key still serves agents.
    let human_key = Arc::new(human_key);
    let (_tui, mut tui) = sign_in(&server, &human_key, SessionKind::Human, "tui");
    match next_event(&mut tui).await {
        LinkEvent::Connected { path, .. } => assert_eq!(path.to_string(), "alice/m/tui"),
        other => panic!("expected the person to connect, got {other:?}"),
    }
    // Nor can it mint a machine without a human key to pose as the person from there.
    let minted = agent
        .invite_machine(&Name::machine("ghost").unwrap())
        .await
        .unwrap_err();
    assert_eq!(minted.code(), Some(ErrorCode::Forbidden));
    // An agent cannot swap in a human key of its own.
    let own = Identity::generate().unwrap();
    let signed = registration_message(&server_id, &alice, &m, &own.public_key());
    let swap = agent
        .set_human_key(own.public_key(), own.sign(&signed))
        .await
        .unwrap_err();
    assert_eq!(swap.code(), Some(ErrorCode::Forbidden));
    server.stop().await;
}

#[tokio::test]
async fn a_flooding_agent_is_paced_loses_nothing_and_others_send_freely() {
    let server = start_with(with_limits(Limits {
        agent_sends_per_minute: 600,
        ..Limits::default()
    }))
    .await;
    let (alice, mut bob) = alice_and_bob_in_general(&server).await;
    let general = Name::channel("general").unwrap();
    alice.link.join(&general, Resume::Live).await.unwrap();

    // On the wire: past the burst (150), a send is refused and told when to come back.
    let mut mallory = raw_login(&server, "mallory").await;
    raw_send(
        &mut mallory,
        &ClientFrame::Join {
            id: 1,
            channel: general.clone(),
            invite: None,
        },
    )
    .await;
    for id in 2..200 {
        raw_send(&mut mallory, &flood_send(&general, id)).await;
    }
    let refusal = loop {
        match raw_next(&mut mallory).await {
            Some(ServerFrame::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                message,
                ..
            }) => break (retry_after_ms, message),
            Some(_) => {}
            None => panic!("never refused"),
        }
    };
    assert!(refusal.0.is_some_and(|ms| ms > 0), "{refusal:?}");
    assert!(refusal.1.contains("retry in"), "{refusal:?}");
    // After a refusal her connection is not read until a send could fit again: the sends she
    // pipelined behind it wait, instead of costing the server a refusal each.
    // (Acknowledgements of her stored sends may still arrive meanwhile: they were answered.)
    let refused_at = Instant::now();
    loop {
        match raw_next(&mut mallory).await {
            Some(ServerFrame::Error { .. }) => break,
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    let quiet = refused_at.elapsed();
    let expected = Duration::from_millis(refusal.0.unwrap().min(250)) / 2;
    assert!(quiet >= expected, "answered again after {quiet:?}");

    // Through the link: every send waits its turn and lands, once.
    const SENT: usize = 170;
    let sends = (0..SENT).map(|n| {
        let link = alice.link.clone();
        let general = general.clone();
        async move { link.send(&general, &format!("a{n}")).await }
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "a paced send failed");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < SENT {
        let m = bob.next_message().await;
        if m.text.starts_with('a') {
            assert!(seen.insert(m.text), "delivered twice");
        }
    }
    // While mallory keeps flooding, as fast as she can, another user's paced sends are none of
    // them refused and each delivered once: her budget is hers, and refusing her is cheap.
    let carol = client(&server, "carol", "c").await;
    carol.link.join(&general, Resume::Live).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let refused = Arc::new(AtomicU64::new(0));
    let flooding = flood(mallory, &general, stop.clone(), refused.clone());
    eventually("mallory is refused again", || {
        let refused = refused.clone();
        async move { refused.load(Ordering::Relaxed) > 0 }
    })
    .await;
    let before = refused.load(Ordering::Relaxed);
    const PACED: usize = 20;
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    for n in 0..PACED {
        pace.tick().await;
        let send = ClientFrame::Send {
            id: 0,
            channel: general.clone(),
            client_id: new_client_id(),
            text: format!("c{n}"),
            reply_to: None,
            change: None,
        };
        // `request`, not `send`: a refusal is reported here rather than waited out.
        let answer = carol.link.request(send).await;
        assert!(
            matches!(answer, Ok(ServerFrame::Sent { .. })),
            "carol's send {n}: {answer:?}"
        );
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < PACED {
        let m = bob.next_message().await;
        if m.text.starts_with('c') {
            assert!(seen.insert(m.text), "delivered twice");
        }
    }
    assert!(
        refused.load(Ordering::Relaxed) > before,
        "mallory stopped flooding while carol sent"
    );
    stop.cancel();
    flooding.await.unwrap();
    server.stop().await;
}

/// Mallory's send number `id`, each a new message.
fn flood_send(channel: &Name, id: u64) -> ClientFrame {
    ClientFrame::Send {
        id,
        channel: channel.clone(),
        client_id: format!("m{id}"),
        text: "flood".into(),
        reply_to: None,
        change: None,
    }
}

/// Sends into `channel` on `ws` as fast as it will take them until `stop`, reading the
/// answers meanwhile (a client that never reads is closed) and counting `rate_limited` ones.
fn flood(
    ws: RawSocket,
    channel: &Name,
    stop: tokio_util::sync::CancellationToken,
    refused: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let (mut sink, answers) = ws.split();
    let channel = channel.clone();
    let answers = answers.take_until(stop.clone().cancelled_owned());
    let reader = tokio::spawn(async move {
        let mut answers = std::pin::pin!(answers);
        while let Some(Ok(message)) = answers.next().await {
            if let Message::Binary(bytes) = message
                && let Ok(ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }) = codec::decode(&bytes)
            {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    tokio::spawn(async move {
        for id in 1_000.. {
            let bytes = codec::encode(&flood_send(&channel, id)).unwrap();
            tokio::select! {
                () = stop.cancelled() => break,
                sent = sink.send(Message::Binary(bytes.into())) => if sent.is_err() { break },
            }
        }
        reader.await.unwrap();
    })
}

#[tokio::test]
async fn idle_sockets_that_never_sign_in_cannot_fill_the_server() {
    let server = start_with(with_limits(Limits {
        max_connections: 40,
        max_handshakes_per_address: 8,
        ..Limits::default()
    }))
    .await;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("ws://").parse().unwrap();
    // Two thousand connections from another loopback address that never say a word.
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(stream) = socket.connect(addr).await {
            idle.push(stream);
        }
    }
    // Someone else still signs in (`client` fails the test unless the first event is a welcome).
    let alice = client(&server, "alice", "a").await;
    assert!(alice.link.who(None).await.is_ok());
    drop(idle);
    server.stop().await;
}

/// Opens a TCP connection from `from` (a loopback address) to the server, and says nothing.
async fn idle_socket(server: &TestServer, from: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = server.url.trim_start_matches("ws://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn silent_sockets_from_many_addresses_give_way_to_new_connections() {
    use tokio::io::AsyncReadExt;
    let server = start_with(with_limits(Limits {
        max_handshakes: 4,
        ..Limits::default()
    }))
    .await;
    let mut idle = Vec::new();
    for host in 2..6 {
        idle.push(idle_socket(&server, &format!("127.0.0.{host}")).await);
        // Accepted in this order, so the first is the oldest handshake.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every handshake slot is held; a real client still signs in at once, and the oldest
    // silent socket is closed to make room.
    let started = Instant::now();
    let alice = client(&server, "alice", "a").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for a silent socket"
    );
    assert!(alice.link.who(None).await.is_ok());
    let mut oldest = idle.remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, oldest.read(&mut byte))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_full_server_keeps_a_newcomer_waiting_instead_of_refusing_it() {
    let server = start_with(with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    }))
    .await;
    let alice = client(&server, "alice", "a").await;
    let _bob = client(&server, "bob", "b").await;
    let server = Arc::new(server);
    let carol = tokio::spawn({
        let server = server.clone();
        async move { client(&server, "carol", "c").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !carol.is_finished(),
        "a third connection got in past the cap"
    );
    drop(alice);
    let carol = tokio::time::timeout(WAIT, carol).await.unwrap().unwrap();
    assert!(carol.link.who(None).await.is_ok());
}
