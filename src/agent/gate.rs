//! What the agent lets through, free of I/O: flood control per sending user, the wait for a
//! person in a channel whose floor the server closed to the agent, and which permission
//! verdicts count. Each remembers a bounded number of entries, so neither a crowd of senders
//! nor a pile of unanswered requests grows the agent without limit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{ChatMessage, SessionKind};

/// Most senders the flood gate remembers; past it, idle ones are forgotten first, then the
/// longest quiet. Keeps a crowd of one-message senders from growing the agent without limit.
pub const MAX_GATED_SENDERS: usize = 1024;

/// Flood control per sending **user** (so rotating session handles does not reset it): at
/// most `burst` pushes per `window`; past that, the user is held for `cooldown` (their
/// messages stay readable through the tools).
#[derive(Debug)]
pub struct FloodGate {
    burst: usize,
    window: Duration,
    cooldown: Duration,
    capacity: usize,
    senders: HashMap<Name, Sender>,
}

#[derive(Debug, Default)]
struct Sender {
    recent: VecDeque<Instant>,
    held_until: Option<Instant>,
}

impl Sender {
    /// When this sender last mattered: its newest push, or the end of its hold.
    fn last_active(&self) -> Option<Instant> {
        self.recent.back().copied().max(self.held_until)
    }
}

/// What the gate says about one inbound item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Pass,
    /// Held; `first` is true for the item that started the hold (announce it once).
    Hold {
        first: bool,
    },
}

impl Default for FloodGate {
    fn default() -> Self {
        Self::new(20, Duration::from_secs(60), Duration::from_secs(60))
    }
}

impl FloodGate {
    pub fn new(burst: usize, window: Duration, cooldown: Duration) -> Self {
        Self {
            burst,
            window,
            cooldown,
            capacity: MAX_GATED_SENDERS,
            senders: HashMap::new(),
        }
    }

    /// The same gate remembering at most `capacity` senders.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// How many senders are remembered.
    pub fn tracked(&self) -> usize {
        self.senders.len()
    }

    pub fn check(&mut self, from: &SessionPath, now: Instant) -> Gate {
        if !self.senders.contains_key(&from.user) && self.senders.len() >= self.capacity {
            self.make_room(now);
        }
        let sender = self.senders.entry(from.user.clone()).or_default();
        if let Some(until) = sender.held_until {
            if now < until {
                return Gate::Hold { first: false };
            }
            sender.held_until = None;
            sender.recent.clear();
        }
        while sender
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            sender.recent.pop_front();
        }
        if sender.recent.len() >= self.burst {
            sender.held_until = Some(now + self.cooldown);
            return Gate::Hold { first: true };
        }
        sender.recent.push_back(now);
        Gate::Pass
    }

    /// Forgets every sender with nothing left to count; if none is, the longest quiet one.
    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.senders.retain(|_, s| {
            let held = s.held_until.is_some_and(|until| now < until);
            let counting = s
                .recent
                .back()
                .is_some_and(|t| now.duration_since(*t) < window);
            held || counting
        });
        if self.senders.len() >= self.capacity {
            let quietest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.last_active())
                .map(|(user, _)| user.clone());
            if let Some(user) = quietest {
                self.senders.remove(&user);
            }
        }
    }
}

/// One channel's floor as this agent last heard of it. The server refuses an agent's post
/// with `floor_closed` when the channel waits for a person (its agent turn budget is spent,
/// or it answers mentions only); from then on other agents' messages there are held from the
/// agent, since it could not answer them anyway, until a person posts there or the agent
/// posts there again. Held messages stay unread on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Floor {
    /// Agent messages held since the floor closed; `None` while it is open.
    waiting: Option<u64>,
}

/// What the floor says about one channel message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorGate {
    Pass,
    /// Another agent's message while the floor is closed: not delivered.
    Hold,
    /// A person's message that ended the wait, after `held` agent messages were held.
    Reopened {
        held: u64,
    },
}

impl Floor {
    /// The server refused a post with `floor_closed`.
    pub fn close(&mut self) {
        self.waiting.get_or_insert(0);
    }

    /// The agent posted (or was given the floor): whatever it waited for happened.
    pub fn open(&mut self) {
        self.waiting = None;
    }

    /// Agent messages held so far, while waiting.
    pub fn held(&self) -> Option<u64> {
        self.waiting
    }

    /// Lets a message of the channel through or holds it. A person's message ends the wait;
    /// agents' are held, even those that mention this agent: the server lets only a person's
    /// mention open the floor, so the agent could not answer them. A message of unknown kind
    /// passes.
    pub fn check(&mut self, message: &ChatMessage) -> FloorGate {
        let Some(held) = self.waiting else {
            return FloorGate::Pass;
        };
        // A change (edit, delete, reaction) is no turn: a person's does not end the wait.
        let turn = message.change.is_none();
        match message.from_kind {
            Some(SessionKind::Human) if !turn => FloorGate::Pass,
            Some(SessionKind::Human) => {
                self.waiting = None;
                FloorGate::Reopened { held }
            }
            Some(SessionKind::Agent) => {
                self.waiting = Some(held.saturating_add(1));
                FloorGate::Hold
            }
            _ => FloorGate::Pass,
        }
    }
}

/// An open permission request of the model's, waiting for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub tool_name: String,
    pub description: String,
    pub input_preview: String,
    /// When it stops taking a verdict from a person.
    pub expires: Instant,
}

/// How long a permission request takes a verdict from a person. Claude Code never says when
/// its own dialog settled one, so past this the request is closed: a late verdict is refused
/// and the person's TUI says it may have been answered in the terminal.
pub const PERMISSION_TTL: Duration = Duration::from_secs(300);

/// Most permission requests kept open; the oldest is dropped past it (Claude Code never says
/// when its own dialog settled one, so without a bound they would pile up).
pub const MAX_OPEN_REQUESTS: usize = 64;

/// Tracks permission requests and decides which verdicts count: only from a human session of
/// the agent's own user, only for an open request, only the first.
#[derive(Debug, Default)]
pub struct Permissions {
    /// Request id to (order opened, request).
    open: BTreeMap<String, (u64, OpenRequest)>,
    opened: u64,
}

/// Why a verdict was not applied (logged, never shown to the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotAPerson,
    NotTheOwner,
    NoSuchRequest,
    /// It was open, but its time to take a verdict had passed.
    Expired,
}

impl Permissions {
    pub fn open(&mut self, request_id: String, request: OpenRequest) {
        self.opened += 1;
        self.open.insert(request_id, (self.opened, request));
        while self.open.len() > MAX_OPEN_REQUESTS {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, (order, _))| *order)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.open.remove(&id);
            }
        }
    }

    /// Forgets requests whose time has passed.
    fn expire(&mut self, now: Instant) {
        self.open.retain(|_, (_, request)| request.expires > now);
    }

    /// Requests still open at `now`.
    pub fn pending(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.open.len()
    }

    /// Requests still open at `now`, oldest first, to offer a person who just came online.
    pub fn open_requests(&mut self, now: Instant) -> Vec<(String, OpenRequest)> {
        self.expire(now);
        let mut open: Vec<_> = self.open.iter().collect();
        open.sort_by_key(|(_, (order, _))| *order);
        open.into_iter()
            .map(|(id, (_, request))| (id.clone(), request.clone()))
            .collect()
    }

    /// Applies a verdict if it counts, closing the request.
    pub fn verdict(
        &mut self,
        owner: &Name,
        from: &SessionPath,
        from_kind: SessionKind,
        request_id: &str,
        now: Instant,
    ) -> Result<OpenRequest, Refused> {
        if from_kind != SessionKind::Human {
            return Err(Refused::NotAPerson);
        }
        if &from.user != owner {
            return Err(Refused::NotTheOwner);
        }
        let (_, request) = self.open.remove(request_id).ok_or(Refused::NoSuchRequest)?;
        if request.expires <= now {
            return Err(Refused::Expired);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn path(s: &str) -> SessionPath {
        SessionPath::parse(s).unwrap()
    }

    /// A request opened at `at`.
    fn ls(at: Instant) -> OpenRequest {
        OpenRequest {
            tool_name: "Bash".into(),
            description: "ls".into(),
            input_preview: "{}".into(),
            expires: at + PERMISSION_TTL,
        }
    }

    fn said(from: &str, kind: SessionKind, text: &str) -> ChatMessage {
        ChatMessage {
            from_kind: Some(kind),
            channel: Name::channel("ops").unwrap(),
            seq: 1,
            ts: 0,
            from: path(from),
            text: text.into(),
            reply_to: None,
            change: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }

    #[test]
    fn a_closed_floor_holds_agent_chatter_until_a_person_posts() {
        let mut floor = Floor::default();
        let chatter = said("bob/m/bot", SessionKind::Agent, "more from me");
        assert_eq!(floor.check(&chatter), FloorGate::Pass, "open");
        floor.close();
        assert_eq!(floor.check(&chatter), FloorGate::Hold);
        assert_eq!(floor.check(&chatter), FloorGate::Hold);
        assert_eq!(floor.held(), Some(2));
        // Another agent's mention is held too: the server opens the floor only for a person's.
        let asked = said("bob/m/bot", SessionKind::Agent, "what say you, @claude?");
        assert_eq!(floor.check(&asked), FloorGate::Hold);
        let person = said("carol/m/tui", SessionKind::Human, "enough, both of you");
        assert_eq!(floor.check(&person), FloorGate::Reopened { held: 3 });
        assert_eq!(floor.check(&chatter), FloorGate::Pass);
        assert_eq!(floor.held(), None);
        // The agent's own post ends a wait too.
        floor.close();
        floor.open();
        assert_eq!(floor.check(&chatter), FloorGate::Pass);
    }

    #[test]
    fn a_flooding_sender_is_held_then_released() {
        let mut gate = FloodGate::new(3, Duration::from_secs(10), Duration::from_secs(30));
        let bob = path("bob/m/a");
        let carol = path("carol/m/b");
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(gate.check(&bob, t0 + Duration::from_secs(i)), Gate::Pass);
        }
        assert_eq!(
            gate.check(&bob, t0 + Duration::from_secs(3)),
            Gate::Hold { first: true }
        );
        assert_eq!(
            gate.check(&bob, t0 + Duration::from_secs(4)),
            Gate::Hold { first: false }
        );
        assert_eq!(
            gate.check(&carol, t0 + Duration::from_secs(4)),
            Gate::Pass,
            "others unaffected"
        );
        assert_eq!(gate.check(&bob, t0 + Duration::from_secs(34)), Gate::Pass);
    }

    #[test]
    fn a_user_rotating_session_handles_is_counted_as_one_sender() {
        let mut gate = FloodGate::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        let passed = (0..60)
            .filter(|i| {
                let handle = path(&format!("mallory/m/h{i}"));
                gate.check(&handle, t0 + Duration::from_millis(*i)) == Gate::Pass
            })
            .count();
        assert_eq!(passed, 3);
        assert_eq!(gate.tracked(), 1);
    }

    #[test]
    fn the_flood_gate_remembers_a_bounded_number_of_senders() {
        let mut gate =
            FloodGate::new(2, Duration::from_secs(10), Duration::from_secs(30)).with_capacity(4);
        let t0 = Instant::now();
        let mallory = path("mallory/m/a");
        for _ in 0..2 {
            gate.check(&mallory, t0);
        }
        assert_eq!(gate.check(&mallory, t0), Gate::Hold { first: true });
        // A crowd of one-message users, some long gone, some recent.
        for i in 0..100u64 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(gate.check(&path(&format!("u{i}/m/x")), at), Gate::Pass);
            assert!(gate.tracked() <= 4, "{}", gate.tracked());
        }
        // Mallory went quiet after being held, so it was forgotten: gone means a clean slate,
        // never a hold that outlives its sender's memory.
        let later = t0 + Duration::from_secs(100);
        assert_eq!(gate.check(&mallory, later), Gate::Pass);
        assert!(gate.tracked() <= 4);
    }

    #[test]
    fn open_permission_requests_are_bounded_oldest_first() {
        let mut perms = Permissions::default();
        let t0 = Instant::now();
        let request = ls(t0);
        for i in 0..MAX_OPEN_REQUESTS + 10 {
            perms.open(format!("r{i}"), request.clone());
        }
        assert_eq!(perms.pending(t0), MAX_OPEN_REQUESTS);
        let owner = Name::user("alice").unwrap();
        let tui = path("alice/m/tui");
        assert_eq!(
            perms.verdict(&owner, &tui, SessionKind::Human, "r0", t0),
            Err(Refused::NoSuchRequest),
            "the oldest went first"
        );
        let newest = format!("r{}", MAX_OPEN_REQUESTS + 9);
        assert_eq!(
            perms.verdict(&owner, &tui, SessionKind::Human, &newest, t0),
            Ok(request)
        );
    }

    #[test]
    fn only_the_owners_people_answer_and_only_once() {
        let mut perms = Permissions::default();
        let owner = Name::user("alice").unwrap();
        let t0 = Instant::now();
        let request = ls(t0);
        perms.open("abcde".into(), request.clone());
        let stranger = path("mallory/m/tui");
        let sibling_agent = path("alice/m/other-agent");
        let tui = path("alice/m/tui");
        assert_eq!(
            perms.verdict(&owner, &stranger, SessionKind::Human, "abcde", t0),
            Err(Refused::NotTheOwner)
        );
        assert_eq!(
            perms.verdict(&owner, &sibling_agent, SessionKind::Agent, "abcde", t0),
            Err(Refused::NotAPerson)
        );
        assert_eq!(
            perms.verdict(&owner, &tui, SessionKind::Human, "abcde", t0),
            Ok(request)
        );
        assert_eq!(
            perms.verdict(&owner, &tui, SessionKind::Human, "abcde", t0),
            Err(Refused::NoSuchRequest)
        );
        assert_eq!(perms.pending(t0), 0);
    }

    #[test]
    fn an_expired_request_takes_no_verdict_and_is_not_open() {
        let mut perms = Permissions::default();
        let t0 = Instant::now();
        let owner = Name::user("alice").unwrap();
        let tui = path("alice/m/tui");
        perms.open("early".into(), ls(t0));
        perms.open("later".into(), ls(t0 + Duration::from_secs(60)));
        let after = t0 + PERMISSION_TTL + Duration::from_secs(1);
        assert_eq!(
            perms.verdict(&owner, &tui, SessionKind::Human, "early", after),
            Err(Refused::Expired)
        );
        assert_eq!(perms.pending(after), 1);
        let offered: Vec<String> = perms
            .open_requests(after)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(offered, ["later"]);
    }
}
