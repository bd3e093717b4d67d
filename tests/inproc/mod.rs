//! The server in-process (bound to 127.0.0.1:0) for integration tests: a running server,
//! clients on `net::link`, and raw WebSocket connections that misbehave on purpose.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use conclave::net::codec;
use conclave::net::identity::Identity;
use conclave::net::link::{LinkConfig, LinkEvent, LinkHandle, Login, Resume};
use conclave::net::names::Name;
use conclave::net::protocol::{
    ChannelAct, ChannelSetting, ClientFrame, OnConflict, PROTOCOL_VERSION, ServerFrame,
    SessionKind, Visibility,
};
use conclave::net::ws::spawn_link;
use conclave::server::{self, ServerConfig};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub url: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<color_eyre::Result<()>>,
}

/// A server with the default limits, except message rates: tests that burst on purpose are
/// not about pacing (those that are use `start_with`).
pub async fn start() -> TestServer {
    let mut config = ServerConfig::ephemeral();
    config.limits.human_sends_per_minute = 1_000_000;
    config.limits.agent_sends_per_minute = 1_000_000;
    config.limits.acts_per_minute = 1_000_000;
    start_with(config).await
}

pub async fn start_with(config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server::run(listener, config, shutdown.clone()));
    TestServer {
        url,
        shutdown,
        task,
    }
}

impl TestServer {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub struct Client {
    pub link: LinkHandle,
    pub events: tokio::sync::mpsc::Receiver<LinkEvent>,
    pub identity: Arc<Identity>,
}

/// Registers `user` with a fresh in-memory key and waits for the welcome.
pub async fn client(server: &TestServer, user: &str, handle: &str) -> Client {
    let identity = Arc::new(Identity::generate().unwrap());
    let login = Login::Register {
        username: Name::user(user).unwrap(),
        machine: Name::machine("m").unwrap(),
    };
    let (link, mut events) = connect(server, identity.clone(), login, handle, true);
    match next_event(&mut events).await {
        LinkEvent::Connected { .. } => Client {
            link,
            events,
            identity,
        },
        other => panic!("expected connected, got {other:?}"),
    }
}

impl Client {
    /// A person's session of the same user (as `handle`), for what only people may do.
    pub async fn person(&self, server: &TestServer, handle: &str) -> Client {
        let (link, mut events) = connect_as(
            server,
            self.identity.clone(),
            Login::Key,
            handle,
            true,
            SessionKind::Human,
        );
        match next_event(&mut events).await {
            LinkEvent::Connected { .. } => Client {
                link,
                events,
                identity: self.identity.clone(),
            },
            other => panic!("expected connected, got {other:?}"),
        }
    }
}

/// Lifts the agent turn budget of a channel `owner` owns: for tests whose agents post in a
/// row on purpose.
pub async fn unlimit_agent_turns(server: &TestServer, owner: &Client, channel: &Name) {
    let person = owner.person(server, "moderator").await;
    person
        .link
        .request(ClientFrame::Moderate {
            id: 0,
            channel: channel.clone(),
            act: ChannelAct::Set {
                setting: ChannelSetting::AgentTurns { turns: 0 },
            },
            reason: None,
        })
        .await
        .unwrap();
}

/// A link to the server as `identity`; `persistent` ones reconnect, others give up at once.
pub fn connect(
    server: &TestServer,
    identity: Arc<Identity>,
    login: Login,
    handle: &str,
    persistent: bool,
) -> (LinkHandle, tokio::sync::mpsc::Receiver<LinkEvent>) {
    connect_as(
        server,
        identity,
        login,
        handle,
        persistent,
        SessionKind::Agent,
    )
}

/// `connect` as a session of `kind`.
pub fn connect_as(
    server: &TestServer,
    identity: Arc<Identity>,
    login: Login,
    handle: &str,
    persistent: bool,
    kind: SessionKind,
) -> (LinkHandle, tokio::sync::mpsc::Receiver<LinkEvent>) {
    spawn_link(LinkConfig {
        url: server.url.clone(),
        identity,
        handle: Name::handle(handle).unwrap(),
        handle_defaulted: true,
        kind,
        login,
        persistent,
        ca_file: None,
        pin: Default::default(),
    })
}

pub async fn next_event(events: &mut tokio::sync::mpsc::Receiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap()
}

impl Client {
    pub async fn next_message(&mut self) -> conclave::net::protocol::ChatMessage {
        loop {
            match tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                LinkEvent::Message(m) => return m,
                LinkEvent::Presence(_) | LinkEvent::Moderation(_) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }
}

/// alice creates #general (as a member, not receiving it) for agents only (no turn budget);
/// bob receives it.
pub async fn alice_and_bob_in_general(server: &TestServer) -> (Client, Client) {
    let alice = client(server, "alice", "a").await;
    let bob = client(server, "bob", "b").await;
    alice
        .link
        .create_channel(&general(), Visibility::Public)
        .await
        .unwrap();
    unlimit_agent_turns(server, &alice, &general()).await;
    bob.link.join(&general(), Resume::Live).await.unwrap();
    (alice, bob)
}

pub fn general() -> Name {
    Name::channel("general").unwrap()
}

/// A raw WebSocket to the server, for sending what no well-behaved client would.
pub async fn raw(
    server: &TestServer,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    tokio_tungstenite::connect_async(server.url.as_str())
        .await
        .unwrap()
        .0
}

/// The next decodable frame from a raw socket, or `None` once it closes.
pub async fn raw_next(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<ServerFrame> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => return Some(codec::decode(&b).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one frame on a raw socket.
pub async fn raw_send(ws: &mut RawSocket, frame: &ClientFrame) {
    ws.send(Message::Binary(codec::encode(frame).unwrap().into()))
        .await
        .unwrap();
}

/// A raw socket that said `hello` as an agent under `handle`: the server's answer, a
/// `challenge` unless it refused.
pub async fn raw_hello(server: &TestServer, handle: &Name) -> (RawSocket, Option<ServerFrame>) {
    let mut ws = raw(server).await;
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        handle: handle.clone(),
        kind: SessionKind::Agent,
        on_conflict: OnConflict::Suffix,
        instance: None,
    };
    raw_send(&mut ws, &hello).await;
    let answer = raw_next(&mut ws).await;
    (ws, answer)
}

/// A raw socket that has registered `user` and been welcomed.
pub async fn raw_login(server: &TestServer, user: &str) -> RawSocket {
    let identity = Identity::generate().unwrap();
    let handle = Name::handle("raw").unwrap();
    let (mut ws, answer) = raw_hello(server, &handle).await;
    let Some(ServerFrame::Challenge { nonce, server_id }) = answer else {
        panic!("expected a challenge")
    };
    let register = ClientFrame::Register {
        username: Name::user(user).unwrap(),
        machine: Name::machine("m").unwrap(),
        public_key: identity.public_key().to_vec(),
        signature: identity
            .sign_challenge(&server_id, &nonce, &handle, SessionKind::Agent)
            .to_vec(),
    };
    raw_send(&mut ws, &register).await;
    assert!(matches!(
        raw_next(&mut ws).await,
        Some(ServerFrame::Welcome { .. })
    ));
    ws
}
