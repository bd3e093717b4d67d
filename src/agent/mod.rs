//! `conclave agent`: a headless client for Claude Code (an MCP stdio server acting as a
//! channel, `mcp.rs`) and for any other program (JSON lines, `jsonl.rs`).
//!
//! This module owns the agent's live state (autonomy levels, read positions, each channel's
//! floor, open permission requests) and turns link events into what the front ends deliver.
//! Decisions without I/O are in `core.rs` and `gate.rs`; moderation acts in `moderation.rs`;
//! the operations both front ends offer are in `tools.rs`, their typed arguments in `args.rs`.
//! Reaches the server only through `net::link`; knows nothing of the server, the TUI or the
//! CLI.

mod args;
pub mod core;
pub mod gate;
pub mod jsonl;
pub mod launch;
pub mod mcp;
mod moderation;
mod relay;
pub mod tools;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr};

use crate::net::client::{self, Opening, Setup};
use crate::net::config::{AutonomyKey, ClientConfig};
use crate::net::link::{LinkEvent, LinkHandle, Resume};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Autonomy, SessionKind, WhisperMessage};

use self::core::{Inbound, Levels};
use self::gate::{FloodGate, Floor, FloorGate, Gate, Permissions};

pub use self::launch::{AgentArgs, main};

/// How often the config file is checked for autonomy changes made by `conclave perm set`.
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Most session kinds remembered; a cache, so it simply starts over when full.
const MAX_KNOWN_KINDS: usize = 256;

/// Which front end speaks on stdio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// MCP over stdio: a Claude Code channel.
    Mcp,
    /// One JSON command per stdin line, one JSON event or reply per stdout line.
    Jsonl,
}

/// `conclave agent`'s options.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub config_dir: PathBuf,
    pub server: Option<String>,
    pub handle: Option<String>,
    pub join: Vec<String>,
    pub perms: Vec<(AutonomyKey, Autonomy)>,
    pub format: Format,
    /// In a channel this session never read, only this many newest messages start unread.
    pub backlog: u64,
}

/// Where one joined channel's reading stands.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    /// This session handle's server-side read position.
    read_seq: u64,
    /// The newest sequence number seen.
    last_seq: u64,
    /// Whether the server closed the floor to this agent, and what was held since.
    floor: Floor,
    /// Whether a person gave this agent the floor (as far as the agent heard).
    holds_floor: bool,
}

struct State {
    levels: Levels,
    channels: BTreeMap<Name, Mark>,
    gate: FloodGate,
    permissions: Permissions,
    /// Kinds of this user's other sessions, seen in presence, relays and `who`: whether a
    /// whisper comes from a person.
    kinds: HashMap<SessionPath, SessionKind>,
    connection: String,
    config_mtime: Option<SystemTime>,
}

/// The running agent, shared by its front end and its event pump.
pub struct Agent {
    pub link: LinkHandle,
    pub me: SessionPath,
    pub server: String,
    config_dir: PathBuf,
    /// Whether autonomy gates replies (MCP: a model is answering; JSON lines: a program).
    gated: bool,
    /// How many newest messages of a never-read channel start unread.
    backlog: u64,
    state: Mutex<State>,
}

/// What the front end should do about a link event.
#[derive(Debug)]
pub enum Effect {
    /// Deliver this to the model (MCP) or the program (JSON lines).
    Deliver(Inbound),
    /// A whisper from another session of the agent's own user, not yet known to be a person
    /// or an agent: the front end awaits `Agent::resolve_whisper` off its event loop.
    Resolve(WhisperMessage),
    /// Tell Claude Code a person answered a permission request.
    Verdict {
        request_id: String,
        allow: bool,
    },
    None,
}

/// The handle used when `--as` is not given: the working directory's name.
pub fn default_handle() -> String {
    std::env::current_dir()
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .and_then(|name| Name::sanitize(&name))
        .map_or_else(|| "agent".to_owned(), |n| n.to_string())
}

/// `conclave agent`: connects (with zero set-up), joins, then serves the chosen front end
/// until stdin closes.
pub async fn run(options: AgentOptions) -> Result<()> {
    let opening = Opening {
        config_dir: options.config_dir.clone(),
        server: options.server.clone(),
        handle: options.handle.clone(),
        default_handle: default_handle(),
        kind: SessionKind::Agent,
        persistent: true,
        setup: Setup::Auto,
        identity: None,
        registry: None,
    };
    let session = client::open(opening, |reason, retry_in| {
        tracing::warn!(%reason, ?retry_in, "cannot connect yet");
    })
    .await?;
    if let Some(local) = &session.local_server {
        tracing::info!(pid = local.pid, log = %local.log.display(), "started a local server");
    }
    tracing::info!(path = %session.path, server = %session.server, "agent connected");
    let levels = Levels {
        flags: options.perms.iter().cloned().collect(),
        ..Levels::default()
    };
    let agent = Arc::new(Agent {
        link: session.link,
        me: session.path,
        server: session.server,
        config_dir: options.config_dir,
        gated: options.format == Format::Mcp,
        backlog: options.backlog,
        state: Mutex::new(State {
            levels,
            channels: BTreeMap::new(),
            gate: FloodGate::default(),
            permissions: Permissions::default(),
            kinds: HashMap::new(),
            connection: "connected".into(),
            config_mtime: None,
        }),
    });
    agent.reload_config();
    for channel in &options.join {
        let name = Name::channel(channel)?;
        agent
            .join(&name)
            .await
            .wrap_err_with(|| format!("cannot join #{name}"))?;
    }
    agent.report_autonomy(None).await;
    tokio::spawn(watch_config(Arc::downgrade(&agent)));
    match options.format {
        Format::Mcp => mcp::serve(agent, session.events).await,
        Format::Jsonl => jsonl::serve(agent, session.events).await,
    }
}

/// Re-reads autonomy from the config file whenever it changes, while the agent lives.
async fn watch_config(agent: std::sync::Weak<Agent>) {
    loop {
        tokio::time::sleep(CONFIG_POLL).await;
        let Some(agent) = agent.upgrade() else { return };
        let reloaded = {
            let agent = agent.clone();
            tokio::task::spawn_blocking(move || agent.reload_config()).await
        };
        if reloaded.unwrap_or(false) {
            agent.report_autonomy(None).await;
        }
    }
}

impl Agent {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads the config file's autonomy table if the file changed; true if levels changed.
    fn reload_config(&self) -> bool {
        let path = self.config_dir.join("config.toml");
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut state = self.lock();
        if mtime == state.config_mtime {
            return false;
        }
        state.config_mtime = mtime;
        match ClientConfig::load(&self.config_dir) {
            Ok(config) => {
                let before = state.levels.clone();
                state.levels.config = config.autonomy;
                state.levels != before
            }
            Err(e) => {
                tracing::warn!(%e, "cannot read autonomy from the config file");
                false
            }
        }
    }

    pub fn level(&self, channel: &Name) -> Autonomy {
        self.lock().levels.channel(channel)
    }

    /// The whisper level with `peer` if it is already known (a stranger, or a session of this
    /// user whose kind was seen).
    fn known_whisper_level(&self, peer: &SessionPath) -> Option<Autonomy> {
        let state = self.lock();
        if peer.user != self.me.user {
            return Some(state.levels.whispers_with(false));
        }
        let kind = state.kinds.get(peer).copied()?;
        Some(state.levels.whispers_with(kind == SessionKind::Human))
    }

    /// The whisper level with `peer`, asking the server who `peer` is when it is one of this
    /// user's sessions not seen yet. Never call it from the loop that reads link events: the
    /// answer arrives through that same link.
    pub async fn whisper_level(&self, peer: &SessionPath) -> Autonomy {
        if let Some(level) = self.known_whisper_level(peer) {
            return level;
        }
        let kind = match self.link.who(None).await {
            Ok(report) => report
                .sessions
                .into_iter()
                .find(|s| &s.path == peer)
                .map(|s| s.kind),
            Err(e) => {
                tracing::debug!(%e, "cannot tell who whispered");
                None
            }
        };
        if let Some(kind) = kind {
            self.learn_kind(peer, kind);
        }
        self.lock()
            .levels
            .whispers_with(kind == Some(SessionKind::Human))
    }

    /// Remembers a session's kind (bounded: forgets everything past `MAX_KNOWN_KINDS`).
    fn learn_kind(&self, path: &SessionPath, kind: SessionKind) {
        if path.user != self.me.user {
            return;
        }
        let mut state = self.lock();
        if state.kinds.len() >= MAX_KNOWN_KINDS && !state.kinds.contains_key(path) {
            state.kinds.clear();
        }
        state.kinds.insert(path.clone(), kind);
    }

    /// The whisper's level, found out in the background, then gated like any inbound item.
    pub async fn resolve_whisper(&self, whisper: WhisperMessage) -> Effect {
        let level = self.whisper_level(&whisper.from).await;
        let from = whisper.from.clone();
        self.gate(level, &from, None, Inbound::Whisper { whisper, level })
    }

    /// Refuses a reply below `converse` (only when a model is answering).
    pub fn may_reply(&self, level: Autonomy, place: &str) -> Result<(), String> {
        if self.gated && level < Autonomy::Converse {
            return Err(format!(
                "You may not reply in {place}: your user set its autonomy to {}, which is read-only. \
                 Ask the person supervising you if you think you should reply.",
                level
            ));
        }
        Ok(())
    }

    /// Refuses reading a muted channel (only when a model is reading: mute means its text
    /// never reaches the model, pushed or pulled).
    pub fn may_read(&self, channel: &Name) -> Result<(), String> {
        if self.gated && self.level(channel) == Autonomy::Mute {
            return Err(format!(
                "#{channel} is muted by your user; its messages are not for you"
            ));
        }
        Ok(())
    }

    /// Joins a channel (messages from now on are pushed) and records its read position. A
    /// channel this session handle never read starts with only its newest `backlog` messages
    /// unread, not its whole history.
    pub async fn join(&self, channel: &Name) -> Result<(u64, u64), crate::net::link::LinkError> {
        let joined = self.link.join(channel, Resume::Live).await?;
        let last_seq = joined.channel.last_seq;
        let mut read_seq = joined.read_seq;
        let start = last_seq.saturating_sub(self.backlog);
        if read_seq == 0 && start > 0 {
            self.link.mark_read(channel, start).await?;
            read_seq = start;
        }
        let mut state = self.lock();
        let mark = state.channels.entry(channel.clone()).or_default();
        mark.read_seq = read_seq;
        mark.last_seq = last_seq;
        Ok((read_seq, last_seq))
    }

    pub async fn leave(&self, channel: &Name) -> Result<(), crate::net::link::LinkError> {
        self.link.leave(channel).await?;
        self.lock().channels.remove(channel);
        Ok(())
    }

    /// Joined channels with their read position and newest sequence number.
    fn marks(&self) -> Vec<(Name, u64, u64)> {
        self.lock()
            .channels
            .iter()
            .map(|(name, m)| (name.clone(), m.read_seq, m.last_seq))
            .collect()
    }

    fn set_read(&self, channel: &Name, seq: u64) {
        if let Some(mark) = self.lock().channels.get_mut(channel) {
            mark.read_seq = mark.read_seq.max(seq);
            mark.last_seq = mark.last_seq.max(seq);
        }
    }

    /// Turns a link event into what the front end should do. Channel messages update the read
    /// bookkeeping; muted ones and the agent's own are dropped; floods are held.
    pub fn on_event(self: &Arc<Self>, event: LinkEvent) -> Effect {
        match event {
            LinkEvent::Message(message) => {
                if message.from == self.me {
                    if let Some(mark) = self.lock().channels.get_mut(&message.channel) {
                        mark.last_seq = mark.last_seq.max(message.seq);
                    }
                    return Effect::None;
                }
                let (level, floor) = {
                    let mut state = self.lock();
                    let floor = match state.channels.get_mut(&message.channel) {
                        Some(mark) => {
                            mark.last_seq = mark.last_seq.max(message.seq);
                            mark.floor.check(&message, &self.me)
                        }
                        None => FloorGate::Pass,
                    };
                    (state.levels.channel(&message.channel), floor)
                };
                let reopened = match floor {
                    FloorGate::Pass => None,
                    FloorGate::Hold => return Effect::None,
                    FloorGate::Reopened { held } => Some(held),
                };
                let (from, channel) = (message.from.clone(), Some(message.channel.clone()));
                let item = Inbound::Message {
                    message,
                    level,
                    reopened,
                };
                self.gate(level, &from, channel, item)
            }
            LinkEvent::Whisper(whisper) => match self.known_whisper_level(&whisper.from) {
                Some(level) => {
                    let from = whisper.from.clone();
                    self.gate(level, &from, None, Inbound::Whisper { whisper, level })
                }
                None if self.gated => Effect::Resolve(whisper),
                None => Effect::Deliver(Inbound::Whisper {
                    level: self.lock().levels.whispers(),
                    whisper,
                }),
            },
            LinkEvent::Connected { .. } => {
                self.lock().connection = "connected".into();
                let agent = self.clone();
                tokio::spawn(async move { agent.report_autonomy(None).await });
                Effect::None
            }
            LinkEvent::Disconnected { reason, retry_in } => {
                self.lock().connection =
                    format!("reconnecting in {} s: {reason}", retry_in.as_secs().max(1));
                Effect::None
            }
            LinkEvent::ChannelLost { channel, reason } => {
                tracing::warn!(%channel, %reason, "channel lost");
                self.lock().channels.remove(&channel);
                Effect::None
            }
            LinkEvent::Closed { reason } => {
                self.lock().connection = format!("offline: {reason}");
                Effect::None
            }
            LinkEvent::Presence(presence) => {
                self.learn_kind(&presence.session.path, presence.session.kind);
                Effect::None
            }
            LinkEvent::Moderation(event) => self.on_moderation(event),
            LinkEvent::Relay {
                from,
                from_kind,
                body,
            } => {
                self.learn_kind(&from, from_kind);
                self.on_relay(from, from_kind, body)
            }
        }
    }

    /// Applies mute and flood control (when a model is reading) to one inbound item.
    fn gate(
        &self,
        level: Autonomy,
        from: &SessionPath,
        channel: Option<Name>,
        item: Inbound,
    ) -> Effect {
        if !self.gated {
            return Effect::Deliver(item);
        }
        if level == Autonomy::Mute {
            return Effect::None;
        }
        let mut state = self.lock();
        match state.gate.check(from, Instant::now()) {
            Gate::Pass => Effect::Deliver(item),
            Gate::Hold { first: true } => Effect::Deliver(Inbound::Held {
                channel,
                from: from.clone(),
                until_secs: state.gate.cooldown().as_secs(),
            }),
            Gate::Hold { first: false } => Effect::None,
        }
    }
}
