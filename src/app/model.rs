//! All TUI state. `update.rs` is the only mutator; `view.rs` only reads (render-time memos
//! such as a pane's height sit in `Cell`s).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};

use ratatui_textarea::TextArea;

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Autonomy, Pin, Reaction, SessionInfo};

use super::settings::Settings;

/// Most entries a room keeps loaded. Older ones are dropped while following live messages
/// and fetched again from the server when scrolled to, so memory stays bounded.
pub const MAX_LOADED: usize = 100_000;

/// Messages fetched per history request.
pub const PAGE: u32 = 100;

/// What a room shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoomId {
    /// The status room: connection notes, answers to commands.
    Home,
    Channel(Name),
    /// A whisper conversation with one session.
    Whisper(SessionPath),
    /// A channel's audit log, oldest at the top like a conversation (`/audit`).
    Audit(Name),
    /// A message of a channel and the replies to it (`/thread SEQ`); what is typed here
    /// answers it.
    Thread(Name, u64),
}

impl RoomId {
    pub fn label(&self) -> String {
        self.label_for(None)
    }

    /// The label `me` reads: a direct conversation is named by the other user (`@bob`).
    pub fn label_for(&self, me: Option<&Name>) -> String {
        match self {
            Self::Home => "conclave".into(),
            Self::Channel(name) if name.is_direct() => {
                match me.and_then(|me| name.direct_peer(me)) {
                    Some(peer) => format!("@{peer}"),
                    None => format!("@{name}"),
                }
            }
            Self::Channel(name) => format!("#{name}"),
            Self::Whisper(path) => format!("@{path}"),
            Self::Audit(name) => format!("audit #{name}"),
            Self::Thread(name, seq) => format!("thread #{name}:{seq}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Message,
    /// A whisper; `outgoing` when this session sent it.
    Whisper {
        outgoing: bool,
    },
    /// A note from the client (presence, answers to commands).
    Note,
    /// An error, in words a person understands.
    Error,
}

/// Where something I typed stands between the input box and the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Stored by the server (or not mine to send).
    #[default]
    Done,
    /// Queued or on its way; `id` matches the `Cmd` that carries it.
    Pending { id: u64 },
    /// The server or the link refused it; the text stays on screen.
    Failed { id: u64, reason: String },
}

/// One line of a conversation, before wrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Channel messages only; in an audit room, the entry's id (the log's order).
    pub seq: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub from: Option<SessionPath>,
    pub text: String,
    pub kind: EntryKind,
    /// It mentions me.
    pub mention: bool,
    /// Something I typed that the server has not acknowledged yet (or refused).
    pub delivery: Delivery,
    /// The seq of the message (in the same room) this one answers.
    pub reply_to: Option<u64>,
    /// Its sender changed its text since it was sent.
    pub edited: bool,
    /// Deleted: the text is gone.
    pub deleted: bool,
    pub reactions: Vec<Reaction>,
    /// Render memo: (pane width, wrapped lines) at the last draw, so a long scroll-back adds
    /// up heights instead of wrapping everything below the screen again.
    pub height: Cell<(u16, u16)>,
}

/// A conversation.
#[derive(Debug)]
pub struct Room {
    pub id: RoomId,
    /// Which of `App::servers` it is on (the status room: the first).
    pub server: usize,
    pub entries: VecDeque<Entry>,
    pub unread: usize,
    pub mentions: usize,
    /// This session's read position on the server.
    pub read_seq: u64,
    /// Newest sequence number known.
    pub last_seq: u64,
    /// The unread marker line sits above the first message after this sequence number.
    pub marker: Option<u64>,
    /// Nothing older than the loaded entries exists.
    pub older_exhausted: bool,
    /// Newer messages were dropped to bound memory while scrolled far back.
    pub newer_dropped: bool,
    pub loading: bool,
    /// Every member user (channels).
    pub members: Vec<Name>,
    /// Live sessions receiving the room (channels).
    pub online: Vec<SessionInfo>,
    /// The channel's topic, shown in the pane title; empty when none.
    pub topic: String,
    /// Pinned messages, newest pin first; the newest shows at the top of the pane.
    pub pins: Vec<Pin>,
    /// The channel is read-only for everyone.
    pub archived: bool,
    /// Why this session no longer receives the channel (kicked, banned, deleted, lost): the
    /// history stays on screen, but nothing can be sent until a `/join` succeeds.
    pub closed: Option<String>,
}

impl Room {
    pub fn new(id: RoomId) -> Self {
        Self {
            id,
            server: 0,
            entries: VecDeque::new(),
            unread: 0,
            mentions: 0,
            read_seq: 0,
            last_seq: 0,
            marker: None,
            older_exhausted: false,
            newer_dropped: false,
            loading: false,
            members: Vec::new(),
            online: Vec::new(),
            topic: String::new(),
            pins: Vec::new(),
            archived: false,
            closed: None,
        }
    }

    pub fn channel(&self) -> Option<&Name> {
        match &self.id {
            RoomId::Channel(name) => Some(name),
            _ => None,
        }
    }

    /// The channel a command typed here is about: a channel's own, or the one whose audit
    /// log this room shows.
    pub fn about(&self) -> Option<&Name> {
        match &self.id {
            RoomId::Channel(name) | RoomId::Audit(name) | RoomId::Thread(name, _) => Some(name),
            _ => None,
        }
    }

    /// The entry of the message I typed with this id, while unacknowledged.
    pub fn pending_index(&self, id: u64) -> Option<usize> {
        self.entries.iter().rposition(|e| match &e.delivery {
            Delivery::Pending { id: p } | Delivery::Failed { id: p, .. } => *p == id,
            Delivery::Done => false,
        })
    }

    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().find_map(|e| e.seq)
    }

    pub fn newest_seq(&self) -> Option<u64> {
        self.entries.iter().rev().find_map(|e| e.seq)
    }

    /// Inserts a channel message in sequence order, and in time order among the local notes
    /// between its neighbours; false if it was there already.
    pub fn insert_message(&mut self, entry: Entry) -> bool {
        let Some(seq) = entry.seq else {
            self.entries.push_back(entry);
            return true;
        };
        self.last_seq = self.last_seq.max(seq);
        // Most messages are the newest: look from the back. `low..high` ends up holding only
        // notes: after the last older message, before the first newer one.
        let mut low = self.entries.len();
        let mut high = low;
        while low > 0 {
            match self.entries[low - 1].seq {
                Some(s) if s == seq => return false,
                Some(s) if s < seq => break,
                Some(_) => {
                    low -= 1;
                    high = low;
                }
                None => low -= 1,
            }
        }
        let index = (low..high)
            .find(|&i| self.entries[i].ts > entry.ts)
            .unwrap_or(high);
        self.entries.insert(index, entry);
        true
    }

    /// Drops the oldest entries beyond `MAX_LOADED` (they can be fetched again).
    pub fn trim_oldest(&mut self) {
        while self.entries.len() > MAX_LOADED {
            self.entries.pop_front();
            self.older_exhausted = false;
        }
    }

    /// Drops the newest entries beyond `MAX_LOADED` while the person reads far back.
    pub fn trim_newest(&mut self) {
        while self.entries.len() > MAX_LOADED {
            self.entries.pop_back();
            self.newer_dropped = true;
        }
    }
}

/// One view onto a room.
#[derive(Debug)]
pub struct Pane {
    pub room: usize,
    /// Wrapped lines scrolled up from the newest; 0 follows new messages.
    pub scroll: usize,
    /// Messages that arrived while scrolled up.
    pub unseen: usize,
    /// Height of the message area at the last draw.
    pub viewport: Cell<u16>,
    /// Width of the message area at the last draw.
    pub width: Cell<u16>,
    /// The oldest loaded entry was visible at the last draw.
    pub at_top: Cell<bool>,
    /// The largest useful `scroll` found at the last draw, once the whole room was wrapped.
    pub max_scroll: Cell<Option<usize>>,
}

impl Pane {
    pub fn new(room: usize) -> Self {
        Self {
            room,
            scroll: 0,
            unseen: 0,
            viewport: Cell::new(10),
            width: Cell::new(80),
            at_top: Cell::new(false),
            max_scroll: Cell::new(None),
        }
    }
}

/// How panes share the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Side by side (`/split v`).
    SideBySide,
    /// One above the other (`/split h`).
    Stacked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected,
    /// Waiting to retry at `until_ms` (milliseconds since the epoch).
    Reconnecting {
        reason: String,
        until_ms: i64,
    },
    Offline(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// Keys and commands, scrolled `scroll` lines down.
    Help { scroll: usize },
    /// Permission requests and agents' autonomy; `selected` indexes the requests.
    Agents { selected: usize },
}

/// A permission request from one of my agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub agent: SessionPath,
    pub request_id: String,
    pub tool_name: String,
    pub description: String,
    pub input_preview: String,
    pub received: i64,
    /// After this (ms) the agent takes no verdict: Claude Code's own dialog may have
    /// settled it.
    pub expires: i64,
    /// The verdict this session sent, waiting for the agent to confirm.
    pub sent: Option<bool>,
    /// The verdict the agent applied, who gave it, and when (ms).
    pub answer: Option<(bool, SessionPath, i64)>,
}

/// How long a request from an agent that does not say is taken to stay open (ms).
pub const DEFAULT_REQUEST_TTL_MS: i64 = 300_000;

impl Approval {
    /// Waiting for a verdict, and still able to take one at `now`.
    pub fn open(&self, now: i64) -> bool {
        self.answer.is_none() && self.sent.is_none() && now < self.expires
    }

    /// Never answered here or by another of my sessions, and past its time.
    pub fn lapsed(&self, now: i64) -> bool {
        self.answer.is_none() && now >= self.expires
    }
}

/// One of my agents as it reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub levels: BTreeMap<Name, Autonomy>,
    pub default: Autonomy,
    /// False for a program (`agent --format jsonl`): it acts as its user, has no level to
    /// show and takes no change.
    pub applies: bool,
}

impl AgentInfo {
    pub fn level(&self, channel: &Name) -> Autonomy {
        self.levels.get(channel).copied().unwrap_or(self.default)
    }
}

/// Searching the focused pane.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    pub query: String,
    /// Index of the entry matched last.
    pub hit: Option<usize>,
    pub failed: bool,
}

/// Cycling through completions of one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Byte offset where the word starts in the input line.
    pub start: usize,
    pub candidates: Vec<String>,
    pub next: usize,
}

/// What the empty input box says.
pub const PLACEHOLDER: &str = "Type a message, or /help";

/// An input box holding `lines`: soft-wrapped at words (long words at characters), so a long
/// draft grows downwards instead of scrolling sideways.
pub fn new_input(lines: Vec<String>) -> TextArea<'static> {
    let mut input = TextArea::new(lines);
    input.set_placeholder_text(PLACEHOLDER);
    input.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
    input
}

/// One server the TUI has a link to.
#[derive(Debug)]
pub struct ServerView {
    /// Its alias in the config (its address when it has none).
    pub alias: String,
    /// The address the link dials.
    pub server: String,
    pub me: Option<SessionPath>,
    pub connection: Connection,
    /// The first connect has happened (later ones are reconnects).
    pub was_connected: bool,
    /// Channels the server listed, for completion.
    pub known_channels: Vec<Name>,
    /// When the channels were last asked for (ms), to keep refreshes for Tab rare.
    pub channels_listed_at: Option<i64>,
    /// The last `/search` with older hits left: its query and where the next page starts.
    pub search_next: Option<(String, String)>,
}

impl ServerView {
    pub fn new(alias: String, server: String) -> Self {
        Self {
            alias,
            server,
            me: None,
            connection: Connection::Connecting,
            was_connected: false,
            known_channels: Vec::new(),
            channels_listed_at: None,
            search_next: None,
        }
    }
}

/// A row of the sidebar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidebarRow {
    /// A server's name and connection state (shown with more than one server).
    Server(usize),
    Room(usize),
}

/// The whole TUI.
pub struct App {
    pub settings: Settings,
    /// Every server with a link, the default first.
    pub servers: Vec<ServerView>,
    /// The server the message being handled is about: rooms are looked up and made on it,
    /// and the commands `update` returns go to it.
    pub active: usize,
    pub rooms: Vec<Room>,
    pub panes: Vec<Pane>,
    pub split: Split,
    pub focus: usize,
    pub input: TextArea<'static>,
    /// What I sent, for Up/Down on an empty box.
    pub sent: Vec<String>,
    pub sent_pos: Option<usize>,
    pub overlay: Option<Overlay>,
    pub approvals: Vec<Approval>,
    pub agents: BTreeMap<SessionPath, AgentInfo>,
    pub search: Option<Search>,
    pub completion: Option<Completion>,
    /// Offset of local time, fixed at start (tests use UTC).
    pub utc_offset: chrono::FixedOffset,
    pub quit: bool,
    /// The clock as of the last tick, for countdowns (ms since the epoch).
    pub now_ms: i64,
    /// A channel the person just asked to join: shown once the join is answered.
    pub focus_on_join: Option<Name>,
    /// The id the next message I type gets, to match its acknowledgement.
    pub next_send_id: u64,
    /// Rows of text the open box showed at the last draw, so scrolling stops at its end.
    pub overlay_rows: Cell<u16>,
    /// Where the sidebar was drawn last, so a click there picks a room.
    pub sidebar_area: Cell<ratatui::layout::Rect>,
    /// Whether the TUI takes the mouse (wheel, clicks); off lets the terminal select text.
    pub mouse_capture: bool,
    /// The user name zero set-up is claiming, and whether it came from `$USER` (if not,
    /// the person hears which name was picked once it is theirs).
    pub claiming: Option<(Name, bool)>,
    /// The name claimed was taken (which one, if known): the input box asks for another.
    pub name_taken: Option<String>,
}

impl App {
    /// A TUI on one server, known by its address.
    pub fn new(settings: Settings, server: String, utc_offset: chrono::FixedOffset) -> Self {
        Self::on_servers(
            settings,
            vec![ServerView::new(server.clone(), server)],
            utc_offset,
        )
    }

    /// A TUI on several servers, the default first.
    pub fn on_servers(
        settings: Settings,
        servers: Vec<ServerView>,
        utc_offset: chrono::FixedOffset,
    ) -> Self {
        let input = new_input(vec![String::new()]);
        Self {
            settings,
            servers,
            active: 0,
            rooms: vec![Room::new(RoomId::Home)],
            panes: vec![Pane::new(0)],
            split: Split::SideBySide,
            focus: 0,
            input,
            sent: Vec::new(),
            sent_pos: None,
            overlay: None,
            approvals: Vec::new(),
            agents: BTreeMap::new(),
            search: None,
            completion: None,
            utc_offset,
            quit: false,
            now_ms: 0,
            focus_on_join: None,
            next_send_id: 1,
            overlay_rows: Cell::new(10),
            sidebar_area: Cell::new(ratatui::layout::Rect::default()),
            mouse_capture: true,
            claiming: None,
            name_taken: None,
        }
    }

    pub fn focused_pane(&self) -> &Pane {
        &self.panes[self.focus.min(self.panes.len() - 1)]
    }

    pub fn focused_room(&self) -> &Room {
        &self.rooms[self.focused_pane().room]
    }

    /// The server the message being handled is about.
    pub fn srv(&self) -> &ServerView {
        &self.servers[self.active.min(self.servers.len() - 1)]
    }

    pub fn srv_mut(&mut self) -> &mut ServerView {
        let active = self.active.min(self.servers.len() - 1);
        &mut self.servers[active]
    }

    /// The server of the room in the focused pane.
    pub fn focused_server(&self) -> &ServerView {
        &self.servers[self.focused_room().server.min(self.servers.len() - 1)]
    }

    /// The server with this alias.
    pub fn server_by_alias(&self, alias: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.alias == alias)
    }

    /// The room `id` on the active server (the status room is on every server).
    pub fn room_index(&self, id: &RoomId) -> Option<usize> {
        self.rooms
            .iter()
            .position(|r| &r.id == id && (r.server == self.active || *id == RoomId::Home))
    }

    /// The room holding the message I typed with this id, and where in it: found by the id,
    /// since the room may have been renamed while the message was on its way.
    pub fn pending_entry(&self, id: u64) -> Option<(usize, usize)> {
        self.rooms
            .iter()
            .enumerate()
            .find_map(|(room, r)| r.pending_index(id).map(|index| (room, index)))
    }

    /// Whether some pane shows the room, scrolled to the newest messages.
    pub fn room_in_view(&self, room: usize) -> bool {
        self.panes.iter().any(|p| p.room == room && p.scroll == 0)
    }

    pub fn pending_approvals(&self) -> impl Iterator<Item = &Approval> {
        self.approvals.iter().filter(|a| a.open(self.now_ms))
    }

    /// Rooms in sidebar order: home, then each server's channels by name and whispers by
    /// path.
    pub fn sorted_rooms(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rooms.len()).collect();
        let key = |r: &Room| (r.id != RoomId::Home, r.server, r.id.clone());
        order.sort_by_key(|&i| key(&self.rooms[i]));
        order
    }

    /// The sidebar, row by row: with several servers, each server's rooms under its name.
    pub fn sidebar_rows(&self) -> Vec<SidebarRow> {
        let mut rows = Vec::new();
        let mut server = None;
        for index in self.sorted_rooms() {
            let room = &self.rooms[index];
            if self.servers.len() > 1 && room.id != RoomId::Home && server != Some(room.server) {
                // Servers without rooms yet still show, in order, before this one.
                let from = server.map_or(0, |s| s + 1);
                rows.extend((from..=room.server).map(SidebarRow::Server));
                server = Some(room.server);
            }
            rows.push(SidebarRow::Room(index));
        }
        if self.servers.len() > 1 {
            let from = server.map_or(0, |s| s + 1);
            rows.extend((from..self.servers.len()).map(SidebarRow::Server));
        }
        rows
    }
}
