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
mod servers;
pub mod tools;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr};

use crate::net::config::{AutonomyKey, ClientConfig};
use crate::net::link::{LinkEvent, Resume};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::Change;
use crate::net::protocol::{Autonomy, SessionKind, WhisperMessage};

use self::core::{Inbound, Levels, Origin};
use self::gate::{FloodGate, Floor, FloorGate, Gate, Permissions};
pub use self::servers::{ChannelRef, Conn, Place};

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
    /// `--server`, each an alias or an address; empty: the default server (and the servers
    /// `join` names).
    pub servers: Vec<String>,
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
    channels: BTreeMap<Place, Mark>,
    gate: FloodGate,
    permissions: Permissions,
    /// Kinds of this user's other sessions on each server, seen in presence, relays and
    /// `who`: whether a whisper comes from a person.
    kinds: HashMap<(usize, SessionPath), SessionKind>,
    /// Each server's connection state, in words.
    connections: Vec<String>,
    config_mtime: Option<SystemTime>,
}

/// The running agent, shared by its front end and its event pump.
pub struct Agent {
    /// One per server, in the order opened.
    pub servers: Vec<Conn>,
    /// The server bare channel names mean.
    pub default: usize,
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
    /// Deliver this, from that server, to the model (MCP) or the program (JSON lines).
    Deliver(Origin, Inbound),
    /// A whisper, on server `.0`, from another session of the agent's own user, not yet known
    /// to be a person or an agent: the front end awaits `Agent::resolve_whisper` off its
    /// event loop.
    Resolve(usize, WhisperMessage),
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

/// `conclave agent`: connects (with zero set-up) to each of its servers, joins, then serves
/// the chosen front end until stdin closes.
pub async fn run(options: AgentOptions) -> Result<()> {
    let opened = servers::open_all(&options).await?;
    if let Some(local) = &opened.local_server {
        tracing::info!(pid = local.pid, log = %local.log.display(), "started a local server");
    }
    let levels = Levels {
        flags: options.perms.iter().cloned().collect(),
        ..Levels::default()
    };
    let connections = vec!["connected".to_owned(); opened.servers.len()];
    let agent = Arc::new(Agent {
        servers: opened.servers,
        default: opened.default,
        config_dir: options.config_dir,
        gated: options.format == Format::Mcp,
        backlog: options.backlog,
        state: Mutex::new(State {
            levels,
            channels: BTreeMap::new(),
            gate: FloodGate::default(),
            permissions: Permissions::default(),
            kinds: HashMap::new(),
            connections,
            config_mtime: None,
        }),
    });
    agent.reload_config();
    for channel in &options.join {
        let place = ChannelRef::parse(channel)
            .and_then(|c| agent.resolve(&c))
            .map_err(|e| color_eyre::eyre::eyre!("cannot join {channel}: {e}"))?;
        agent
            .join(&place)
            .await
            .wrap_err_with(|| format!("cannot join #{}", agent.label(&place)))?;
    }
    agent.report_autonomy(None).await;
    tokio::spawn(watch_config(Arc::downgrade(&agent)));
    match options.format {
        Format::Mcp => mcp::serve(agent, opened.events).await,
        Format::Jsonl => jsonl::serve(agent, opened.events).await,
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

    /// The whisper level with `peer` on `server` if it is already known (a stranger, or a
    /// session of this user whose kind was seen).
    fn known_whisper_level(&self, server: usize, peer: &SessionPath) -> Option<Autonomy> {
        let state = self.lock();
        if peer.user != self.conn(server).me.user {
            return Some(state.levels.whispers_with(false));
        }
        let kind = state.kinds.get(&(server, peer.clone())).copied()?;
        Some(state.levels.whispers_with(kind == SessionKind::Human))
    }

    /// The whisper level with `peer` on `server`, asking the server who `peer` is when it is
    /// one of this user's sessions not seen yet. Never call it from the loop that reads link
    /// events: the answer arrives through that same link.
    pub async fn whisper_level(&self, server: usize, peer: &SessionPath) -> Autonomy {
        if let Some(level) = self.known_whisper_level(server, peer) {
            return level;
        }
        let kind = match self.conn(server).link.who(None).await {
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
            self.learn_kind(server, peer, kind);
        }
        self.lock()
            .levels
            .whispers_with(kind == Some(SessionKind::Human))
    }

    /// Remembers a session's kind (bounded: forgets everything past `MAX_KNOWN_KINDS`).
    fn learn_kind(&self, server: usize, path: &SessionPath, kind: SessionKind) {
        if path.user != self.conn(server).me.user {
            return;
        }
        let key = (server, path.clone());
        let mut state = self.lock();
        if state.kinds.len() >= MAX_KNOWN_KINDS && !state.kinds.contains_key(&key) {
            state.kinds.clear();
        }
        state.kinds.insert(key, kind);
    }

    /// The whisper's level, found out in the background, then gated like any inbound item.
    pub async fn resolve_whisper(&self, server: usize, whisper: WhisperMessage) -> Effect {
        let level = self.whisper_level(server, &whisper.from).await;
        self.gate_whisper(server, level, whisper)
    }

    /// Gates a whisper of known level like any inbound item.
    fn gate_whisper(&self, server: usize, level: Autonomy, whisper: WhisperMessage) -> Effect {
        let from = whisper.from.clone();
        self.gate(
            server,
            level,
            &from,
            None,
            Inbound::Whisper { whisper, level },
        )
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
    pub async fn join(&self, place: &Place) -> Result<(u64, u64), crate::net::link::LinkError> {
        let link = &self.conn(place.server).link;
        let joined = link.join(&place.channel, Resume::Live).await?;
        let last_seq = joined.channel.last_seq;
        let mut read_seq = joined.read_seq;
        let start = last_seq.saturating_sub(self.backlog);
        if read_seq == 0 && start > 0 {
            link.mark_read(&place.channel, start).await?;
            read_seq = start;
        }
        let mut state = self.lock();
        let mark = state.channels.entry(place.clone()).or_default();
        mark.read_seq = read_seq;
        mark.last_seq = last_seq;
        Ok((read_seq, last_seq))
    }

    pub async fn leave(&self, place: &Place) -> Result<(), crate::net::link::LinkError> {
        self.conn(place.server).link.leave(&place.channel).await?;
        self.lock().channels.remove(place);
        Ok(())
    }

    /// Joined channels with their read position and newest sequence number.
    fn marks(&self) -> Vec<(Place, u64, u64)> {
        self.lock()
            .channels
            .iter()
            .map(|(place, m)| (place.clone(), m.read_seq, m.last_seq))
            .collect()
    }

    fn set_read(&self, place: &Place, seq: u64) {
        if let Some(mark) = self.lock().channels.get_mut(place) {
            mark.read_seq = mark.read_seq.max(seq);
            mark.last_seq = mark.last_seq.max(seq);
        }
    }

    /// Turns a link event of server `server` into what the front end should do. Channel
    /// messages update the read bookkeeping; muted ones and the agent's own are dropped;
    /// floods are held.
    pub fn on_event(self: &Arc<Self>, server: usize, event: LinkEvent) -> Effect {
        let me = &self.conn(server).me;
        match event {
            LinkEvent::Message(message) => {
                let place = Place {
                    server,
                    channel: message.channel.clone(),
                };
                if &message.from == me {
                    if let Some(mark) = self.lock().channels.get_mut(&place) {
                        mark.last_seq = mark.last_seq.max(message.seq);
                    }
                    return Effect::None;
                }
                let (level, floor) = {
                    let mut state = self.lock();
                    let floor = match state.channels.get_mut(&place) {
                        Some(mark) => {
                            mark.last_seq = mark.last_seq.max(message.seq);
                            mark.floor.check(&message)
                        }
                        None => FloorGate::Pass,
                    };
                    (state.levels.channel(&message.channel), floor)
                };
                // A reaction is an acknowledgement, not a turn: only agents that converse
                // hear of them.
                let reaction = matches!(message.change, Some(Change::React { .. }));
                if reaction && level < Autonomy::Converse {
                    return Effect::None;
                }
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
                self.gate(server, level, &from, channel, item)
            }
            LinkEvent::Whisper(whisper) => match self.known_whisper_level(server, &whisper.from) {
                Some(level) => self.gate_whisper(server, level, whisper),
                None if self.gated => Effect::Resolve(server, whisper),
                None => Effect::Deliver(
                    self.origin(server),
                    Inbound::Whisper {
                        level: self.lock().levels.whispers(),
                        whisper,
                    },
                ),
            },
            LinkEvent::Connected { .. } => {
                self.set_connection(server, "connected".into());
                let agent = self.clone();
                tokio::spawn(async move { agent.report_autonomy(None).await });
                Effect::None
            }
            LinkEvent::Disconnected { reason, retry_in } => {
                let secs = retry_in.as_secs().max(1);
                self.set_connection(server, format!("reconnecting in {secs} s: {reason}"));
                Effect::None
            }
            LinkEvent::ChannelLost { channel, reason } => {
                tracing::warn!(%channel, %reason, "channel lost");
                self.lock().channels.remove(&Place { server, channel });
                Effect::None
            }
            LinkEvent::Closed { reason } => {
                self.set_connection(server, format!("offline: {reason}"));
                Effect::None
            }
            LinkEvent::Presence(presence) => {
                self.learn_kind(server, &presence.session.path, presence.session.kind);
                Effect::None
            }
            LinkEvent::Moderation(event) => self.on_moderation(server, event),
            // A direct conversation is its person's: an agent joins one only when told to
            // (`--join`, its `join` tool), so a stranger cannot open one into a model.
            LinkEvent::Opened(_) => Effect::None,
            LinkEvent::Relay {
                from,
                from_kind,
                body,
            } => {
                self.learn_kind(server, &from, from_kind);
                self.on_relay(server, from, from_kind, body)
            }
        }
    }

    fn set_connection(&self, server: usize, state: String) {
        if let Some(slot) = self.lock().connections.get_mut(server) {
            *slot = state;
        }
    }

    /// Applies mute and flood control (when a model is reading) to one inbound item.
    fn gate(
        &self,
        server: usize,
        level: Autonomy,
        from: &SessionPath,
        channel: Option<Name>,
        item: Inbound,
    ) -> Effect {
        let origin = self.origin(server);
        if !self.gated {
            return Effect::Deliver(origin, item);
        }
        if level == Autonomy::Mute {
            return Effect::None;
        }
        let mut state = self.lock();
        match state.gate.check(from, Instant::now()) {
            Gate::Pass => Effect::Deliver(origin, item),
            Gate::Hold { first: true } => Effect::Deliver(
                origin,
                Inbound::Held {
                    channel,
                    from: from.clone(),
                    until_secs: state.gate.cooldown().as_secs(),
                },
            ),
            Gate::Hold { first: false } => Effect::None,
        }
    }
}
