//! The reconnecting client link, shared by the TUI, the agent and every one-shot verb.
//!
//! One task owns the connection. Callers hold a cheap, cloneable [`LinkHandle`] whose methods
//! return the server's answer, and read [`LinkEvent`]s from one stream. The task:
//! - connects through an injectable `connect` step (WebSocket in production, channel pairs in
//!   tests), performs the handshake, and backs off with jitter between attempts;
//! - re-joins every joined channel after a reconnect and fetches the gap from history, so each
//!   channel's messages reach the caller in sequence order, with no gap and no duplicate;
//! - keeps every unanswered request and resends it after a reconnect (sends carry a client id,
//!   so a resend never stores a second copy); requests made while offline wait in that queue.
//!
//! It knows nothing of terminals, MCP or databases.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::identity::{Identity, random_bytes};
use super::names::{Name, SessionPath};
use super::protocol::{
    Audience, ChannelInfo, ChatMessage, ClientFrame, CloseReason, ErrorCode, MAX_HISTORY_PAGE,
    MachineInfo, OnConflict, PROTOCOL_VERSION, PresenceEvent, ProtocolError, RelayBody,
    ServerFrame, SessionInfo, SessionKind, Visibility, WhisperMessage,
};
pub use super::transport::{CONN_QUEUE, Conn, ConnectError};

/// How long the server may take to answer each handshake step.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most requests held while offline. Past this, callers wait (the command channel is bounded),
/// so a long outage costs bounded memory.
const MAX_QUEUED_REQUESTS: usize = 4096;

/// Live messages held per channel while its gap is fetched from history. Past this, buffered
/// messages are dropped: the history fetch will return them anyway.
const MAX_GAP_BUFFER: usize = 10_000;

/// Events waiting for the caller. When the caller falls this far behind the link stops reading
/// the socket; the server then drops the session as too slow and the link catches up later.
const EVENT_QUEUE: usize = 1024;

const COMMAND_QUEUE: usize = 256;

/// How the link claims its identity on connect.
#[derive(Debug, Clone)]
pub enum Login {
    /// The key is enrolled already.
    Key,
    /// Claim a user name and enroll this key as `machine` on first connect.
    Register { username: Name, machine: Name },
    /// Enroll this key with a one-time code made on one of the user's machines.
    Enroll { code: String },
}

/// Everything the link needs to know about who it is and where it goes.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub url: String,
    pub identity: Arc<Identity>,
    pub handle: Name,
    /// A defaulted handle takes a suffix when taken; a chosen one fails instead.
    pub handle_defaulted: bool,
    pub kind: SessionKind,
    pub login: Login,
    /// Reconnect forever (TUI, agent, tail) or give up at the first failure (one-shot verbs).
    pub persistent: bool,
    /// A PEM file of CA certificates to trust for `wss://` instead of the public roots (a
    /// server with a private CA; `CONCLAVE_CA_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// What the caller hears from the link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Connected and authenticated as `path`.
    Connected {
        path: SessionPath,
        server_id: String,
        admin: bool,
    },
    /// The connection dropped; the next attempt is in `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// A channel message, in sequence order per channel, each exactly once.
    Message(ChatMessage),
    Whisper(WhisperMessage),
    Presence(PresenceEvent),
    /// A relay from another session of the same user (see `RelayBody`).
    Relay {
        from: SessionPath,
        from_kind: SessionKind,
        body: RelayBody,
    },
    /// A channel could not be re-joined after a reconnect (it was deleted or access revoked).
    ChannelLost {
        channel: Name,
        reason: String,
    },
    /// The link gave up for good; every later request fails with this reason.
    Closed {
        reason: String,
    },
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The server refused it.
    #[error("{0}")]
    Server(ProtocolError),
    /// The link is closed (or, for a one-shot link, the connection was lost).
    #[error("{0}")]
    Closed(String),
    /// The server answered with a frame that does not fit the request.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(&'static str),
}

impl LinkError {
    /// The server's error code, if it was the server that refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Where a newly joined channel starts delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Only messages sent from now on.
    Live,
    /// Every message after this sequence number.
    After(u64),
    /// The last `n` messages, then live.
    Last(u64),
}

/// Answer to a successful send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    pub seq: u64,
    pub ts: i64,
    pub duplicate: bool,
}

/// Answer to a successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReceipt {
    pub channel: ChannelInfo,
    pub read_seq: u64,
    /// The join made this user a member.
    pub new_member: bool,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<ChatMessage>,
    /// More messages match than this page holds.
    pub more: bool,
}

/// Answer to `invite_machine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInvite {
    pub code: String,
    /// When the code stops working, in ms since the epoch.
    pub expires: i64,
}

/// A page of the channel list.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPage {
    pub channels: Vec<ChannelInfo>,
    /// More follow the last one.
    pub more: bool,
}

/// Answer to `who`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoReport {
    pub sessions: Vec<SessionInfo>,
    pub members: Vec<Name>,
    /// The server named only the first `MAX_WHO_ENTRIES` of a list.
    pub truncated: bool,
}

type Reply = oneshot::Sender<Result<ServerFrame, LinkError>>;

enum Command {
    Request {
        frame: ClientFrame,
        reply: Reply,
    },
    Join {
        channel: Name,
        resume: Resume,
        reply: Reply,
    },
    Leave {
        channel: Name,
        reply: Reply,
    },
}

/// The caller's end of a link. Cloning is cheap; the link runs until every clone is dropped.
#[derive(Clone)]
pub struct LinkHandle {
    commands: mpsc::Sender<Command>,
    closed: Arc<Mutex<Option<String>>>,
}

impl LinkHandle {
    fn closed_error(&self) -> LinkError {
        let reason = self
            .closed
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "the link is closed".to_owned());
        LinkError::Closed(reason)
    }

    async fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<ServerFrame, LinkError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(command(reply)).await.is_err() {
            return Err(self.closed_error());
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.closed_error()),
        }
    }

    /// Sends any request frame (its id is assigned by the link) and returns the answer; an
    /// `Error` answer becomes `LinkError::Server`.
    pub async fn request(&self, frame: ClientFrame) -> Result<ServerFrame, LinkError> {
        self.call(|reply| Command::Request { frame, reply }).await
    }

    /// Posts a message; resolves once the server has stored it.
    pub async fn send(&self, channel: &Name, text: &str) -> Result<SendReceipt, LinkError> {
        self.send_as(channel, text, &new_client_id()).await
    }

    /// Posts a message under a client id of the caller's (see `new_client_id`): sending it
    /// again with the same id, on this link or another, never stores it twice.
    pub async fn send_as(
        &self,
        channel: &Name,
        text: &str,
        client_id: &str,
    ) -> Result<SendReceipt, LinkError> {
        let frame = ClientFrame::Send {
            id: 0,
            channel: channel.clone(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
        };
        match self.request(frame).await? {
            ServerFrame::Sent {
                seq, ts, duplicate, ..
            } => Ok(SendReceipt { seq, ts, duplicate }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn whisper(&self, to: &SessionPath, text: &str) -> Result<(), LinkError> {
        let frame = ClientFrame::Whisper {
            id: 0,
            to: to.clone(),
            text: text.to_owned(),
        };
        self.expect_done(frame).await
    }

    /// Joins a channel and starts delivering its messages as `LinkEvent::Message`, from
    /// `resume` on. The link re-joins it after every reconnect.
    pub async fn join(&self, channel: &Name, resume: Resume) -> Result<JoinReceipt, LinkError> {
        let channel = channel.clone();
        match self
            .call(|reply| Command::Join {
                channel,
                resume,
                reply,
            })
            .await?
        {
            ServerFrame::Joined {
                channel,
                read_seq,
                new_member,
                ..
            } => Ok(JoinReceipt {
                channel,
                read_seq,
                new_member,
            }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Leaves a channel: its messages stop at once and it is not re-joined on reconnect.
    /// Returns whether the user's membership ended (false: another of the user's sessions
    /// still receives the channel, so the user stays a member).
    pub async fn leave(&self, channel: &Name) -> Result<bool, LinkError> {
        let channel = channel.clone();
        match self.call(|reply| Command::Leave { channel, reply }).await? {
            ServerFrame::Left {
                membership_ended, ..
            } => Ok(membership_ended),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Passes `body` to this user's own sessions (see `ClientFrame::Relay`).
    pub async fn relay(
        &self,
        to: Option<SessionPath>,
        audience: Audience,
        body: RelayBody,
    ) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::Relay {
            id: 0,
            to,
            audience: Some(audience),
            body,
        })
        .await
    }

    pub async fn create_channel(
        &self,
        channel: &Name,
        visibility: Visibility,
    ) -> Result<ChannelInfo, LinkError> {
        let frame = ClientFrame::CreateChannel {
            id: 0,
            channel: channel.clone(),
            visibility,
        };
        match self.request(frame).await? {
            ServerFrame::ChannelCreated { channel, .. } => Ok(channel),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// Makes `user` a member of `channel` (creator or server admin only).
    pub async fn add_member(&self, channel: &Name, user: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::AddMember {
            id: 0,
            channel: channel.clone(),
            user: user.clone(),
        })
        .await
    }

    /// Ends `user`'s membership of `channel`; their sessions stop receiving it at once.
    pub async fn remove_member(&self, channel: &Name, user: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::RemoveMember {
            id: 0,
            channel: channel.clone(),
            user: user.clone(),
        })
        .await
    }

    /// Every channel this user may see, fetched a page at a time.
    pub async fn list_channels(&self) -> Result<Vec<ChannelInfo>, LinkError> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map(|c: &ChannelInfo| c.name.clone());
            let page = self.list_channels_page(after, None).await?;
            all.extend(page.channels);
            if !page.more {
                return Ok(all);
            }
        }
    }

    /// One page of the channels this user may see: those named after `after`.
    pub async fn list_channels_page(
        &self,
        after: Option<Name>,
        limit: Option<u32>,
    ) -> Result<ChannelPage, LinkError> {
        match self
            .request(ClientFrame::ListChannels {
                id: 0,
                after,
                limit,
            })
            .await?
        {
            ServerFrame::Channels { channels, more, .. } => Ok(ChannelPage { channels, more }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    /// One page of history, oldest first (see `ClientFrame::History`).
    pub async fn history(
        &self,
        channel: &Name,
        after: Option<u64>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage, LinkError> {
        let frame = ClientFrame::History {
            id: 0,
            channel: channel.clone(),
            after,
            before,
            limit,
        };
        match self.request(frame).await? {
            ServerFrame::History { messages, more, .. } => Ok(HistoryPage { messages, more }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn who(&self, channel: Option<&Name>) -> Result<WhoReport, LinkError> {
        let frame = ClientFrame::Who {
            id: 0,
            channel: channel.cloned(),
        };
        match self.request(frame).await? {
            ServerFrame::Who {
                sessions,
                members,
                truncated,
                ..
            } => Ok(WhoReport {
                sessions,
                members,
                truncated,
            }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn mark_read(&self, channel: &Name, seq: u64) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::MarkRead {
            id: 0,
            channel: channel.clone(),
            seq,
        })
        .await
    }

    /// Registers this machine's human key (see `ClientFrame::SetHumanKey`).
    pub async fn set_human_key(
        &self,
        public_key: [u8; 32],
        signature: [u8; 64],
    ) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::SetHumanKey {
            id: 0,
            public_key: public_key.to_vec(),
            signature: signature.to_vec(),
        })
        .await
    }

    /// A one-time code with which a new machine enrolls its own key as `machine`.
    pub async fn invite_machine(&self, machine: &Name) -> Result<MachineInvite, LinkError> {
        let frame = ClientFrame::InviteMachine {
            id: 0,
            machine: machine.clone(),
        };
        match self.request(frame).await? {
            ServerFrame::MachineInvite { code, expires, .. } => Ok(MachineInvite { code, expires }),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn list_machines(&self) -> Result<Vec<MachineInfo>, LinkError> {
        match self.request(ClientFrame::ListMachines { id: 0 }).await? {
            ServerFrame::Machines { machines, .. } => Ok(machines),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }

    pub async fn remove_machine(&self, machine: &Name) -> Result<(), LinkError> {
        self.expect_done(ClientFrame::RemoveMachine {
            id: 0,
            machine: machine.clone(),
        })
        .await
    }

    async fn expect_done(&self, frame: ClientFrame) -> Result<(), LinkError> {
        match self.request(frame).await? {
            ServerFrame::Done { .. } => Ok(()),
            other => Err(LinkError::Unexpected(other.kind())),
        }
    }
}

/// A random idempotency id for one send.
pub fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness a time-based id still keeps concurrent senders apart in practice.
    if random_bytes(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = now.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exponential backoff with jitter and a cap. The caller resets it only after a connection
/// stayed up for [`Backoff::STABLE_AFTER`], so a server that accepts and then drops at once
/// keeps being backed off from.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    /// How long a connection must last before it counts as a success.
    pub const STABLE_AFTER: Duration = Duration::from_secs(10);

    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay, with `unit` in [0, 1) choosing where in the upper half of the current
    /// step it lands ("equal jitter": never less than half the step, so retries stay spread
    /// out without collapsing to zero).
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(self.attempt.min(16)))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    pub fn next_delay(&mut self) -> Duration {
        let mut b = [0u8; 4];
        let unit = match random_bytes(&mut b) {
            Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
            Err(_) => 0.5,
        };
        self.next_with(unit)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What an unanswered request is for.
enum Purpose {
    /// A caller waits for the answer.
    Caller(Reply),
    /// A join, the caller's first one or the link's own after a reconnect.
    Join {
        channel: Name,
        caller: Option<Reply>,
    },
    /// A page of history the link fetches to fill a gap.
    GapFill { channel: Name },
}

struct Pending {
    frame: ClientFrame,
    purpose: Purpose,
    /// Handed to a connection (which may have died before the answer came).
    sent: bool,
}

/// Per joined channel: where delivery stands.
struct ChannelState {
    resume: Resume,
    /// The last sequence number delivered to the caller; `None` until the first `Joined`.
    delivered: Option<u64>,
    /// Live messages that arrived ahead of a gap being filled.
    ahead: BTreeMap<u64, ChatMessage>,
    /// A history fetch for this channel is in flight.
    filling: bool,
    /// The server answered a join at least once (so a reconnect must re-join it).
    joined: bool,
}

/// Starts a link over any connector (tests hand in channel pairs).
pub fn spawn_with<C, F>(config: LinkConfig, connect: C) -> (LinkHandle, mpsc::Receiver<LinkEvent>)
where
    C: Fn(String) -> F + Send + 'static,
    F: Future<Output = Result<Conn, ConnectError>> + Send + 'static,
{
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let closed = Arc::new(Mutex::new(None));
    let handle = LinkHandle {
        commands: commands_tx,
        closed: closed.clone(),
    };
    let on_conflict = if config.handle_defaulted {
        OnConflict::Suffix
    } else {
        OnConflict::Refuse
    };
    let task = LinkTask {
        handle: config.handle.clone(),
        on_conflict,
        instance: new_client_id(),
        config,
        commands,
        events,
        closed,
        next_id: 1,
        pending: BTreeMap::new(),
        channels: HashMap::new(),
        backoff: Backoff::default(),
    };
    tokio::spawn(task.run(connect));
    (handle, events_rx)
}

/// How one connection ended.
enum Ended {
    /// Every handle is gone: stop.
    HandlesDropped,
    /// Try again (after a backoff) unless the link is one-shot.
    Lost(String),
    /// Do not try again.
    Fatal(String),
}

struct LinkTask {
    config: LinkConfig,
    /// The handle to ask for: the configured one, then the one the server granted.
    handle: Name,
    on_conflict: OnConflict,
    /// Random id of this link, sent in every `Hello`.
    instance: String,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<LinkEvent>,
    closed: Arc<Mutex<Option<String>>>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    channels: HashMap<Name, ChannelState>,
    backoff: Backoff,
}

impl LinkTask {
    async fn run<C, F>(mut self, connect: C)
    where
        C: Fn(String) -> F,
        F: Future<Output = Result<Conn, ConnectError>>,
    {
        let reason = loop {
            let attempt = tokio::select! {
                result = connect(self.config.url.clone()) => result,
                () = self.queue_commands_until_closed() => return,
            };
            let ended = match attempt {
                Err(e) if e.fatal => Ended::Fatal(e.message),
                Err(e) => Ended::Lost(e.message),
                Ok(conn) => self.serve(conn).await,
            };
            let reason = match ended {
                Ended::HandlesDropped => return,
                Ended::Fatal(reason) => break reason,
                Ended::Lost(reason) if !self.config.persistent => break reason,
                Ended::Lost(reason) => reason,
            };
            self.forget_connection_state();
            let retry_in = self.backoff.next_delay();
            tracing::debug!(%reason, ?retry_in, "link down");
            let _ = self
                .events
                .send(LinkEvent::Disconnected { reason, retry_in })
                .await;
            let sleep = tokio::time::sleep(retry_in);
            tokio::select! {
                () = sleep => {}
                () = self.queue_commands_until_closed() => return,
            }
        };
        self.close(reason).await;
    }

    /// Accepts commands into the pending queue while there is no connection. Returns only
    /// when every handle is dropped; callers race it against the thing they wait for.
    async fn queue_commands_until_closed(&mut self) {
        loop {
            if self.pending.len() >= MAX_QUEUED_REQUESTS {
                // Stop draining: callers now wait on the bounded command channel.
                std::future::pending::<()>().await;
            }
            match self.commands.recv().await {
                Some(command) => {
                    self.accept(command);
                }
                None => return,
            }
        }
    }

    /// Gives up: fails every waiting caller with `reason` and tells the event stream.
    async fn close(mut self, reason: String) {
        if let Ok(mut closed) = self.closed.lock() {
            *closed = Some(reason.clone());
        }
        for (_, pending) in std::mem::take(&mut self.pending) {
            pending.fail(LinkError::Closed(reason.clone()));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            let (Command::Request { reply, .. }
            | Command::Join { reply, .. }
            | Command::Leave { reply, .. }) = command;
            let _ = reply.send(Err(LinkError::Closed(reason.clone())));
        }
        let _ = self.events.send(LinkEvent::Closed { reason }).await;
    }

    /// Registers a command as pending and returns its id (the frame goes out when connected).
    fn accept(&mut self, command: Command) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let pending = match command {
            Command::Request { frame, reply } => Pending {
                frame: frame.with_id(id),
                purpose: Purpose::Caller(reply),
                sent: false,
            },
            Command::Leave { channel, reply } => {
                // Stop delivering now, and never re-join it after a reconnect.
                self.channels.remove(&channel);
                self.pending.retain(|_, p| match &p.purpose {
                    Purpose::Join {
                        channel: c,
                        caller: None,
                    }
                    | Purpose::GapFill { channel: c } => c != &channel,
                    _ => true,
                });
                Pending {
                    frame: ClientFrame::Leave { id, channel },
                    purpose: Purpose::Caller(reply),
                    sent: false,
                }
            }
            Command::Join {
                channel,
                resume,
                reply,
            } => {
                self.channels
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelState {
                        resume,
                        delivered: None,
                        ahead: BTreeMap::new(),
                        filling: false,
                        joined: false,
                    });
                Pending {
                    frame: ClientFrame::Join {
                        id,
                        channel: channel.clone(),
                    },
                    purpose: Purpose::Join {
                        channel,
                        caller: Some(reply),
                    },
                    sent: false,
                }
            }
        };
        self.pending.insert(id, pending);
        id
    }

    fn queue_internal(&mut self, frame: ClientFrame, purpose: Purpose) -> ClientFrame {
        let id = self.next_id;
        self.next_id += 1;
        let frame = frame.with_id(id);
        self.pending.insert(
            id,
            Pending {
                frame: frame.clone(),
                purpose,
                sent: false,
            },
        );
        frame
    }

    /// Drops what only made sense on the last connection: gap buffers and the link's own
    /// history fetches and re-joins (they are redone after the next re-join). Requests that
    /// reached the server unanswered are resent only when repeating them is harmless; the
    /// others fail, since they may or may not have been done.
    fn forget_connection_state(&mut self) {
        for state in self.channels.values_mut() {
            state.ahead.clear();
            state.filling = false;
        }
        self.pending.retain(|_, p| {
            !matches!(
                p.purpose,
                Purpose::GapFill { .. } | Purpose::Join { caller: None, .. }
            )
        });
        let uncertain: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent && !safe_to_repeat(&p.frame))
            .map(|(id, _)| *id)
            .collect();
        for id in uncertain {
            if let Some(pending) = self.pending.remove(&id) {
                pending.fail(LinkError::Closed(
                    "the connection dropped before the server answered; it may or may not have been done"
                        .into(),
                ));
            }
        }
        for pending in self.pending.values_mut() {
            pending.sent = false;
        }
    }

    /// Handshake, catch-up, then pump frames until the connection ends.
    async fn serve(&mut self, mut conn: Conn) -> Ended {
        let welcome = match tokio::time::timeout(HANDSHAKE_TIMEOUT * 2, self.handshake(&mut conn))
            .await
        {
            Ok(Ok(welcome)) => welcome,
            Ok(Err(ended)) => return ended,
            Err(_) => return Ended::Lost("the server did not finish the handshake in time".into()),
        };
        let up_since = Instant::now();
        let Welcome {
            path,
            server_id,
            admin,
        } = welcome;
        // Reconnects ask for the path granted now; the instance id lets the server hand it
        // back even before it notices the old connection is gone.
        self.handle = path.session.clone();
        if !matches!(self.config.login, Login::Key) {
            self.config.login = Login::Key;
        }
        let _ = self
            .events
            .send(LinkEvent::Connected {
                path,
                server_id,
                admin,
            })
            .await;

        // Queue a re-join of every channel joined before, then (re)send everything pending in
        // id order: older unanswered requests first, the re-joins after them.
        let mut rejoin: Vec<Name> = self
            .channels
            .iter()
            .filter(|(_, s)| s.joined)
            .map(|(name, _)| name.clone())
            .collect();
        rejoin.sort();
        for channel in rejoin {
            let frame = ClientFrame::Join {
                id: 0,
                channel: channel.clone(),
            };
            self.queue_internal(
                frame,
                Purpose::Join {
                    channel,
                    caller: None,
                },
            );
        }
        let mut outbox: VecDeque<ClientFrame> =
            self.pending.values().map(|p| p.frame.clone()).collect();

        let ended = loop {
            tokio::select! {
                permit = conn.tx.reserve(), if !outbox.is_empty() => match (permit, outbox.pop_front()) {
                    (Ok(permit), Some(frame)) => {
                        if let Some(p) = frame.request_id().and_then(|id| self.pending.get_mut(&id)) {
                            p.sent = true;
                        }
                        permit.send(frame);
                    }
                    _ => break Ended::Lost("connection closed".into()),
                },
                command = self.commands.recv(), if outbox.is_empty() && self.pending.len() < MAX_QUEUED_REQUESTS => match command {
                    Some(command) => {
                        let id = self.accept(command);
                        if let Some(p) = self.pending.get(&id) {
                            outbox.push_back(p.frame.clone());
                        }
                    }
                    None => break Ended::HandlesDropped,
                },
                inbound = conn.rx.recv() => match inbound {
                    Some(frame) => {
                        if let Err(ended) = self.on_frame(frame, &mut outbox).await {
                            break ended;
                        }
                    }
                    None => break Ended::Lost("connection closed".into()),
                },
            }
        };
        if up_since.elapsed() >= Backoff::STABLE_AFTER {
            self.backoff.reset();
        }
        ended
    }

    async fn handshake(&mut self, conn: &mut Conn) -> Result<Welcome, Ended> {
        let lost = |what: &str| Ended::Lost(format!("connection closed during {what}"));
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            handle: self.handle.clone(),
            kind: self.config.kind,
            on_conflict: self.on_conflict,
            instance: Some(self.instance.clone()),
        };
        conn.tx.send(hello).await.map_err(|_| lost("hello"))?;
        let (nonce, server_id) = match conn.rx.recv().await {
            Some(ServerFrame::Challenge { nonce, server_id }) => (nonce, server_id),
            Some(ServerFrame::Error { code, message, .. }) => {
                return Err(handshake_error(code, message));
            }
            Some(other) => {
                return Err(Ended::Fatal(format!(
                    "server sent {} instead of a challenge",
                    other.kind()
                )));
            }
            None => return Err(lost("the handshake")),
        };
        let identity = &self.config.identity;
        let signature = identity
            .sign_challenge(&server_id, &nonce, &self.handle, self.config.kind)
            .to_vec();
        let public_key = identity.public_key().to_vec();
        let answer = match &self.config.login {
            Login::Key => ClientFrame::Auth {
                public_key,
                signature,
            },
            Login::Register { username, machine } => ClientFrame::Register {
                username: username.clone(),
                machine: machine.clone(),
                public_key,
                signature,
            },
            Login::Enroll { code } => ClientFrame::Enroll {
                code: code.clone(),
                public_key,
                signature,
            },
        };
        conn.tx
            .send(answer)
            .await
            .map_err(|_| lost("authentication"))?;
        match conn.rx.recv().await {
            Some(ServerFrame::Welcome {
                path,
                server_id,
                admin,
                ..
            }) => Ok(Welcome {
                path,
                server_id,
                admin,
            }),
            Some(ServerFrame::Error { code, message, .. }) => Err(handshake_error(code, message)),
            Some(other) => Err(Ended::Fatal(format!(
                "server sent {} instead of welcome",
                other.kind()
            ))),
            None => Err(lost("authentication")),
        }
    }

    /// Handles one frame from the server. Frames to send in answer go to `outbox`.
    async fn on_frame(
        &mut self,
        frame: ServerFrame,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        if let Some(id) = frame.reply_to() {
            let Some(pending) = self.pending.remove(&id) else {
                tracing::debug!(id, kind = frame.kind(), "answer to no pending request");
                return Ok(());
            };
            return self.on_reply(pending.purpose, frame, outbox).await;
        }
        match frame {
            ServerFrame::Message(message) => self.on_message(message, outbox).await,
            ServerFrame::Whisper(w) => self.emit(LinkEvent::Whisper(w)).await,
            ServerFrame::Presence(p) => self.emit(LinkEvent::Presence(p)).await,
            ServerFrame::Relay {
                from,
                from_kind,
                body,
            } => {
                self.emit(LinkEvent::Relay {
                    from,
                    from_kind,
                    body,
                })
                .await
            }
            ServerFrame::Closing { reason, message } => match reason {
                CloseReason::Revoked | CloseReason::Replaced => Err(Ended::Fatal(message)),
                CloseReason::Shutdown | CloseReason::TooSlow | CloseReason::Protocol => {
                    Err(Ended::Lost(message))
                }
            },
            ServerFrame::Error { code, message, .. } => {
                tracing::warn!(?code, %message, "server reported a connection error");
                Ok(())
            }
            other => {
                tracing::debug!(kind = other.kind(), "ignored frame");
                Ok(())
            }
        }
    }

    async fn on_reply(
        &mut self,
        purpose: Purpose,
        frame: ServerFrame,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        let result = match frame {
            ServerFrame::Error { code, message, .. } => Err(ProtocolError { code, message }),
            frame => Ok(frame),
        };
        match purpose {
            Purpose::Caller(reply) => {
                let _ = reply.send(result.map_err(LinkError::Server));
                Ok(())
            }
            Purpose::Join { channel, caller } => {
                match &result {
                    Ok(ServerFrame::Joined { channel: info, .. }) => {
                        if let Some(state) = self.channels.get_mut(&channel) {
                            state.joined = true;
                            let delivered = *state.delivered.get_or_insert(match state.resume {
                                Resume::Live => info.last_seq,
                                Resume::After(seq) => seq.min(info.last_seq),
                                Resume::Last(n) => info.last_seq.saturating_sub(n),
                            });
                            if delivered < info.last_seq && !state.filling {
                                self.fill_gap(&channel, outbox);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.channels.remove(&channel);
                        if caller.is_none() {
                            let event = LinkEvent::ChannelLost {
                                channel,
                                reason: e.message.clone(),
                            };
                            self.emit(event).await?;
                        }
                    }
                }
                if let Some(reply) = caller {
                    let _ = reply.send(result.map_err(LinkError::Server));
                }
                Ok(())
            }
            Purpose::GapFill { channel } => {
                let (messages, more) = match result {
                    Ok(ServerFrame::History { messages, more, .. }) => (messages, more),
                    Ok(other) => {
                        tracing::warn!(kind = other.kind(), "unexpected answer to a history fetch");
                        (Vec::new(), false)
                    }
                    Err(e) => {
                        tracing::warn!(%channel, %e, "history fetch failed");
                        (Vec::new(), false)
                    }
                };
                for message in messages {
                    self.deliver_in_order(message).await?;
                }
                let Some(state) = self.channels.get_mut(&channel) else {
                    return Ok(());
                };
                state.filling = false;
                if more {
                    self.fill_gap(&channel, outbox);
                    return Ok(());
                }
                // History has nothing more before the buffered live messages: anything still
                // missing was purged by retention, so deliver what was buffered.
                let ahead = std::mem::take(&mut state.ahead);
                for (_, message) in ahead {
                    self.deliver_in_order(message).await?;
                }
                Ok(())
            }
        }
    }

    async fn on_message(
        &mut self,
        message: ChatMessage,
        outbox: &mut VecDeque<ClientFrame>,
    ) -> Result<(), Ended> {
        let Some(state) = self.channels.get_mut(&message.channel) else {
            return Ok(());
        };
        let Some(delivered) = state.delivered else {
            // Not joined yet on this connection's terms: the join answer sets the start.
            return Ok(());
        };
        if message.seq <= delivered {
            return Ok(());
        }
        if state.filling || message.seq > delivered + 1 {
            if state.ahead.len() < MAX_GAP_BUFFER {
                state.ahead.insert(message.seq, message.clone());
            }
            if !state.filling {
                let channel = message.channel.clone();
                self.fill_gap(&channel, outbox);
            }
            return Ok(());
        }
        self.deliver_in_order(message).await
    }

    /// Delivers `message` if it is the next one of its channel, dropping duplicates.
    async fn deliver_in_order(&mut self, message: ChatMessage) -> Result<(), Ended> {
        let Some(state) = self.channels.get_mut(&message.channel) else {
            return Ok(());
        };
        let delivered = state.delivered.unwrap_or(0);
        if message.seq <= delivered {
            return Ok(());
        }
        state.delivered = Some(message.seq);
        state.ahead.remove(&message.seq);
        self.emit(LinkEvent::Message(message)).await
    }

    fn fill_gap(&mut self, channel: &Name, outbox: &mut VecDeque<ClientFrame>) {
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        state.filling = true;
        let frame = ClientFrame::History {
            id: 0,
            channel: channel.clone(),
            after: state.delivered,
            before: None,
            limit: MAX_HISTORY_PAGE,
        };
        let frame = self.queue_internal(
            frame,
            Purpose::GapFill {
                channel: channel.clone(),
            },
        );
        outbox.push_back(frame);
    }

    /// Hands an event to the caller. A caller that dropped its event stream still gets answers
    /// to its requests, so a closed stream is not an error.
    async fn emit(&self, event: LinkEvent) -> Result<(), Ended> {
        let _ = self.events.send(event).await;
        Ok(())
    }
}

impl Pending {
    fn fail(self, error: LinkError) {
        match self.purpose {
            Purpose::Caller(reply)
            | Purpose::Join {
                caller: Some(reply),
                ..
            } => {
                let _ = reply.send(Err(error));
            }
            Purpose::Join { caller: None, .. } | Purpose::GapFill { .. } => {}
        }
    }
}

struct Welcome {
    path: SessionPath,
    server_id: String,
    admin: bool,
}

/// Whether a request may be sent again after its connection died unanswered: reads, joins,
/// read positions, and sends (their client id makes the server store them once).
fn safe_to_repeat(frame: &ClientFrame) -> bool {
    matches!(
        frame,
        ClientFrame::Send { .. }
            | ClientFrame::Join { .. }
            | ClientFrame::ListChannels { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Who { .. }
            | ClientFrame::MarkRead { .. }
            | ClientFrame::ListMachines { .. }
    )
}

/// Handshake refusals are final, except a server that is busy or broken for a moment.
fn handshake_error(code: ErrorCode, message: String) -> Ended {
    match code {
        ErrorCode::Internal | ErrorCode::RateLimited => Ended::Lost(message),
        _ => Ended::Fatal(message),
    }
}

#[cfg(test)]
mod tests;
