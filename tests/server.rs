//! The server in-process (bound to 127.0.0.1:0), driven through `net::link` and through raw
//! WebSocket connections that misbehave on purpose.
#![allow(clippy::unwrap_used)]

mod inproc;

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use conclave::net::codec;
use conclave::net::identity::Identity;
use conclave::net::link::{LinkConfig, LinkEvent, Login, Resume};
use conclave::net::names::Name;
use conclave::net::protocol::{
    ClientFrame, ErrorCode, MAX_FRAME_BYTES, OnConflict, PROTOCOL_VERSION, ServerFrame,
    SessionKind, Visibility,
};
use conclave::net::ws::spawn_link;
use conclave::server::ServerConfig;
use inproc::*;

#[tokio::test]
async fn messages_fan_out_in_order_and_sends_are_idempotent() {
    let server = start().await;
    let (alice, mut bob) = alice_and_bob_in_general(&server).await;
    alice.link.join(&general(), Resume::Live).await.unwrap();

    let sends: Vec<_> = (0..50)
        .map(|i| {
            let link = alice.link.clone();
            tokio::spawn(async move { link.send(&general(), &format!("m{i}")).await.unwrap() })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    let seqs: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..50 {
            v.push(bob.next_message().await.seq);
        }
        v
    };
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());

    // The same client id twice stores one row.
    let frame = ClientFrame::Send {
        id: 0,
        channel: general(),
        client_id: "fixed".into(),
        text: "once".into(),
        reply_to: None,
        change: None,
    };
    let first = alice.link.request(frame.clone()).await.unwrap();
    let again = alice.link.request(frame).await.unwrap();
    match (first, again) {
        (
            ServerFrame::Sent {
                seq: a,
                duplicate: false,
                ..
            },
            ServerFrame::Sent {
                seq: b,
                duplicate: true,
                ..
            },
        ) => {
            assert_eq!(a, b)
        }
        other => panic!("unexpected answers {other:?}"),
    }
    assert_eq!(bob.next_message().await.text, "once");
    let history = bob
        .link
        .history(&general(), Some(50), None, 10)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn defaulted_handles_take_a_suffix_and_chosen_ones_are_refused() {
    let server = start().await;
    let identity = Arc::new(Identity::generate().unwrap());
    let config = |handle_defaulted| LinkConfig {
        url: server.url.clone(),
        identity: identity.clone(),
        handle: Name::handle("api").unwrap(),
        handle_defaulted,
        kind: SessionKind::Agent,
        login: Login::Register {
            username: Name::user("alice").unwrap(),
            machine: Name::machine("m").unwrap(),
        },
        persistent: false,
        ca_file: None,
        pin: Default::default(),
    };
    let (_one, mut events_one) = spawn_link(config(true));
    let (_two, mut events_two) = spawn_link(config(true));
    let mut paths = Vec::new();
    for events in [&mut events_one, &mut events_two] {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            LinkEvent::Connected { path, .. } => paths.push(path.to_string()),
            other => panic!("{other:?}"),
        }
    }
    paths.sort();
    assert_eq!(paths, ["alice/m/api", "alice/m/api-2"]);
    // Only once both hold their paths: a chosen handle that is taken is refused.
    let (_three, mut events_three) = spawn_link(config(false));
    match tokio::time::timeout(WAIT, events_three.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LinkEvent::Closed { reason } => assert!(reason.contains("already connected"), "{reason}"),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn garbage_and_oversized_frames_get_errors_and_spare_other_clients() {
    let server = start().await;
    let (alice, mut bob) = alice_and_bob_in_general(&server).await;

    // Before authentication: garbage gets an error and the connection is closed.
    let mut ws = raw(&server).await;
    ws.send(Message::Binary(vec![0xc1, 0xff, 0x00].into()))
        .await
        .unwrap();
    match raw_next(&mut ws).await {
        Some(ServerFrame::Error { code, .. }) => assert_eq!(code, ErrorCode::Invalid),
        other => panic!("expected an error, got {other:?}"),
    }
    while raw_next(&mut ws).await.is_some() {}

    // A request before the handshake is refused the same way.
    let mut ws = raw(&server).await;
    let frame = codec::encode(&ClientFrame::ListChannels {
        id: 1,
        after: None,
        limit: None,
    })
    .unwrap();
    ws.send(Message::Binary(frame.into())).await.unwrap();
    assert!(matches!(
        raw_next(&mut ws).await,
        Some(ServerFrame::Error { .. })
    ));

    // A wrong protocol version is named as such.
    let mut ws = raw(&server).await;
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION + 1,
        handle: Name::handle("x").unwrap(),
        kind: SessionKind::Agent,
        on_conflict: OnConflict::Suffix,
        instance: None,
    };
    ws.send(Message::Binary(codec::encode(&hello).unwrap().into()))
        .await
        .unwrap();
    match raw_next(&mut ws).await {
        Some(ServerFrame::Error { code, .. }) => assert_eq!(code, ErrorCode::VersionMismatch),
        other => panic!("expected version mismatch, got {other:?}"),
    }

    // Text frames, truncated frames, unknown kinds: an error each.
    let mut ws = raw(&server).await;
    ws.send(Message::Text("hello?".into())).await.unwrap();
    assert!(matches!(
        raw_next(&mut ws).await,
        Some(ServerFrame::Error {
            code: ErrorCode::Invalid,
            ..
        })
    ));

    // Oversized (but readable) frames get TooLarge; past the wire limit the connection closes.
    let mut ws = raw(&server).await;
    ws.send(Message::Binary(vec![0x90; MAX_FRAME_BYTES + 1].into()))
        .await
        .unwrap();
    assert!(matches!(
        raw_next(&mut ws).await,
        Some(ServerFrame::Error {
            code: ErrorCode::TooLarge,
            ..
        })
    ));
    let mut ws = raw(&server).await;
    let _ = ws
        .send(Message::Binary(vec![0u8; 2 * 1024 * 1024].into()))
        .await;
    while raw_next(&mut ws).await.is_some() {}

    // After all that, the others still talk.
    alice.link.join(&general(), Resume::Live).await.unwrap();
    alice.link.send(&general(), "still here").await.unwrap();
    assert_eq!(bob.next_message().await.text, "still here");
    server.stop().await;
}

#[tokio::test]
async fn request_errors_are_typed() {
    let server = start().await;
    let alice = client(&server, "alice", "a").await;
    let e = alice
        .link
        .history(&general(), None, None, 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    let e = alice.link.send(&general(), "").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Invalid));
    let e = alice
        .link
        .send(&general(), &"x".repeat(20_000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooLarge));
    server.stop().await;
}

#[tokio::test]
async fn undecodable_requests_after_login_are_answered_by_id_and_the_connection_survives() {
    let server = start().await;
    let mut ws = raw_login(&server, "raw").await;

    for (id, value) in [
        (
            5,
            serde_json::json!({"type": "join", "id": 5, "channel": "bad name"}),
        ),
        (6, serde_json::json!({"type": "launch_rockets", "id": 6})),
        (7, serde_json::json!({"type": "send", "id": 7})),
    ] {
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        ws.send(Message::Binary(bytes.into())).await.unwrap();
        match raw_next(&mut ws).await {
            Some(ServerFrame::Error { id: got, code, .. }) => {
                assert_eq!((got, code), (Some(id), ErrorCode::Invalid));
            }
            other => panic!("expected an error for {id}, got {other:?}"),
        }
    }
    // Too large to accept, yet its id is still answered.
    let huge = ClientFrame::Send {
        id: 9,
        channel: general(),
        client_id: "c".into(),
        text: "x".repeat(MAX_FRAME_BYTES),
        reply_to: None,
        change: None,
    };
    ws.send(Message::Binary(codec::encode(&huge).unwrap().into()))
        .await
        .unwrap();
    match raw_next(&mut ws).await {
        Some(ServerFrame::Error { id, code, .. }) => {
            assert_eq!((id, code), (Some(9), ErrorCode::TooLarge));
        }
        other => panic!("expected too_large for 9, got {other:?}"),
    }
    let list = codec::encode(&ClientFrame::ListChannels {
        id: 8,
        after: None,
        limit: None,
    })
    .unwrap();
    ws.send(Message::Binary(list.into())).await.unwrap();
    assert!(matches!(
        raw_next(&mut ws).await,
        Some(ServerFrame::Channels { id: 8, .. })
    ));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_and_the_server_task_ends() {
    let server = start().await;
    let mut alice = client(&server, "alice", "a").await;
    server.stop().await;
    match tokio::time::timeout(WAIT, alice.events.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LinkEvent::Disconnected { reason, .. } => {
            assert!(reason.contains("shutting down"), "{reason}")
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_peers_are_reaped_and_leave_presence() {
    let mut config = ServerConfig::ephemeral();
    config.heartbeat = Duration::from_millis(100);
    let server = start_with(config).await;
    let alice = client(&server, "alice", "a").await;
    // Logs in, then never reads again: it answers no ping.
    let _silent = raw_login(&server, "mute").await;
    let online = |report: conclave::net::link::WhoReport| {
        report
            .sessions
            .iter()
            .map(|s| s.path.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        online(alice.link.who(None).await.unwrap()),
        ["alice/m/a", "mute/m/raw"]
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if online(alice.link.who(None).await.unwrap()) == ["alice/m/a"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent peer was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn read_positions_survive_a_server_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::ephemeral();
    config.data_dir = Some(data.path().to_path_buf());
    let identity = Arc::new(Identity::generate().unwrap());
    let connect = |server: &TestServer, login: Login| {
        spawn_link(LinkConfig {
            url: server.url.clone(),
            identity: identity.clone(),
            handle: Name::handle("tui").unwrap(),
            handle_defaulted: false,
            kind: SessionKind::Human,
            login,
            persistent: false,
            ca_file: None,
            pin: Default::default(),
        })
    };

    let server = start_with(config.clone()).await;
    let (link, _events) = connect(
        &server,
        Login::Register {
            username: Name::user("alice").unwrap(),
            machine: Name::machine("m").unwrap(),
        },
    );
    link.create_channel(&general(), Visibility::Public)
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        link.send(&general(), text).await.unwrap();
    }
    link.mark_read(&general(), 2).await.unwrap();
    link.mark_read(&general(), 1).await.unwrap(); // never moves back
    server.stop().await;

    let server = start_with(config).await;
    let (link, _events) = connect(&server, Login::Key);
    let joined = link.join(&general(), Resume::Live).await.unwrap();
    assert_eq!((joined.read_seq, joined.channel.last_seq), (2, 3));
    let unread = link
        .history(&general(), Some(joined.read_seq), None, 50)
        .await
        .unwrap()
        .messages;
    assert_eq!(
        unread.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["three"]
    );
    server.stop().await;
}

/// A TLS-terminating proxy in front of `server`, with the test certificate for localhost.
async fn tls_proxy(server: &TestServer) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs = CertificateDer::pem_file_iter(fixtures.join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixtures.join("key.pem")).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = server.url.trim_start_matches("ws://").to_owned();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn wss_works_through_tls_with_a_private_ca_and_refuses_an_unknown_one() {
    let server = start().await;
    let port = tls_proxy(&server).await;
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let config = |ca_file: Option<std::path::PathBuf>| LinkConfig {
        url: format!("wss://localhost:{port}"),
        identity: Arc::new(Identity::generate().unwrap()),
        handle: Name::handle("tls").unwrap(),
        handle_defaulted: true,
        kind: SessionKind::Human,
        login: Login::Register {
            username: Name::user("alice").unwrap(),
            machine: Name::machine("m").unwrap(),
        },
        persistent: false,
        ca_file,
        pin: Default::default(),
    };
    let (link, mut events) = spawn_link(config(Some(ca)));
    match tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LinkEvent::Connected { path, .. } => assert_eq!(path.to_string(), "alice/m/tls"),
        other => panic!("expected to connect over wss, got {other:?}"),
    }
    link.create_channel(&general(), Visibility::Public)
        .await
        .unwrap();
    assert_eq!(link.send(&general(), "over tls").await.unwrap().seq, 1);

    // The public roots do not know the test CA: a clear refusal, not a hang.
    let (_link, mut events) = spawn_link(config(None));
    match tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LinkEvent::Closed { reason } => {
            assert!(reason.contains("cannot reach wss://localhost"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.stop().await;
}
