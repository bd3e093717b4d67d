//! The plain values the store API takes and returns: every backend speaks these, so nothing
//! here knows SQL. Small pure helpers that every backend needs the same way (a ban's refusal,
//! the audit record of an act) live beside their types.

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Change, ChannelAct, ChatMessage, FOREVER, MAX_HISTORY_PAGE_BYTES, ProtocolError, SessionKind,
    Visibility, remaining_in_words,
};

pub type UserId = i64;
pub type ChannelId = i64;

/// A seq as the databases store it (their integers are signed).
pub fn as_sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `now + ms`, or the end of time when there is no span.
pub fn until(now: i64, for_ms: Option<u64>) -> i64 {
    for_ms
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| now.checked_add(ms))
        .unwrap_or(FOREVER)
}

/// How long a machine invite code stays usable.
pub const INVITE_TTL_MS: i64 = 15 * 60 * 1000;

/// How long after its enrollment a machine of an account that uses human keys may get its
/// first human key from its machine key.
pub const ENROLL_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Open machine invite codes one user may have at once.
pub const MAX_OPEN_MACHINE_INVITES: i64 = 10;

/// Machines one user may have, so their list always fits an answer.
pub const MAX_MACHINES: i64 = 100;

/// Channel invite tokens one user may have open at once.
pub const MAX_OPEN_CHANNEL_INVITES: i64 = 100;

/// Which of a machine's keys signed a session in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    MachineKey,
    HumanKey,
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    pub user: Name,
    pub machine: Name,
    /// Some machine of the user has a human key: the user's `human` sessions must sign in
    /// with one.
    pub uses_human_keys: bool,
    /// The key looked up is that human key (not the machine key).
    pub is_human_key: bool,
    /// A server admin's ban in force.
    pub banned: Option<ServerBan>,
}

/// Who asks for an act that is checked against their standing and written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub path: SessionPath,
    /// A server admin (named by the operator, not stored).
    pub admin: bool,
}

/// A channel row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub name: Name,
    pub visibility: Visibility,
    pub creator_id: UserId,
    pub last_seq: u64,
    pub topic: String,
    pub archived: bool,
}

/// A new channel and the limits it is made under.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: Name,
    pub visibility: Visibility,
    pub creator: UserId,
    /// Channels one creator may have made; `None` for admins.
    pub max_per_creator: Option<usize>,
    /// The brakes' turn budget the channel starts with.
    pub agent_turns: u32,
}

/// What a join needs to know.
#[derive(Debug, Clone)]
pub struct Joining {
    pub channel: Channel,
    /// The user was not a member before.
    pub new_member: bool,
    pub read_seq: u64,
}

/// Which part of a channel's history to read: with `after` the page starts right after it;
/// otherwise it ends right before `before` (or at the newest).
#[derive(Debug, Clone, Copy)]
pub struct HistoryRange {
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub limit: u32,
    /// Only message `thread` and the messages answering it.
    pub thread: Option<u64>,
}

/// Where a history query reads: the order, the seqs it lies strictly between, and how many
/// rows to fetch (one beyond the limit tells whether there is more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub forward: bool,
    pub after: i64,
    pub before: i64,
    pub fetch: i64,
    pub thread: Option<i64>,
}

impl HistoryRange {
    pub fn bounds(&self) -> Bounds {
        Bounds {
            forward: self.after.is_some(),
            after: self
                .after
                .map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX)),
            before: self
                .before
                .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            fetch: i64::from(self.limit) + 1,
            thread: self.thread.map(as_sql_seq),
        }
    }
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<ChatMessage>,
    /// More messages match than this page holds.
    pub more: bool,
}

impl Page {
    /// The page of `range` from the messages its `bounds` query returned, in that order: at
    /// most `range.limit` of them and `MAX_HISTORY_PAGE_BYTES` of text (always at least one),
    /// oldest first.
    pub fn cut(
        range: HistoryRange,
        rows: impl IntoIterator<Item = Result<ChatMessage, ProtocolError>>,
    ) -> Result<Self, ProtocolError> {
        let limit = range.limit as usize;
        let mut messages: Vec<ChatMessage> = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for row in rows {
            let message = row?;
            bytes += message.text.len();
            if messages.len() >= limit || (bytes > MAX_HISTORY_PAGE_BYTES && !messages.is_empty()) {
                more = true;
                break;
            }
            messages.push(message);
        }
        if range.after.is_none() {
            messages.reverse();
        }
        Ok(Self { messages, more })
    }
}

/// What a search looks for (see `Store::search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Words and phrases (see `net::protocol::search_terms`): a hit holds every one.
    pub terms: Vec<String>,
    pub channel: Option<Name>,
    pub from: Option<Sender>,
    pub kind: Option<SessionKind>,
    /// Sent at or after (ms since the epoch).
    pub since: Option<i64>,
    /// Sent before (ms since the epoch).
    pub until: Option<i64>,
    /// Only hits older than this one (the page before ended there).
    pub before: Option<SearchCursor>,
    pub limit: u32,
}

impl Search {
    /// Every readable channel, any sender and time: the newest `limit` hits of `terms`.
    pub fn terms(terms: Vec<String>, limit: u32) -> Self {
        Self {
            terms,
            channel: None,
            from: None,
            kind: None,
            since: None,
            until: None,
            before: None,
            limit,
        }
    }
}

/// Whose messages a search keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    User(Name),
    Session(SessionPath),
}

/// Where a page of hits ended, newest first: by time, then channel, then seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    pub ts: i64,
    pub channel_id: ChannelId,
    pub seq: u64,
}

impl SearchCursor {
    /// As clients hold it: opaque text.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.ts, self.channel_id, self.seq)
    }

    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let bad = || ProtocolError::invalid(format!("`{text}` is not a search page's `next`"));
        let mut parts = text.split('.');
        let (Some(ts), Some(channel), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Self {
            ts: ts.parse().map_err(|_| bad())?,
            channel_id: channel.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of search hits, newest first: messages, each with its channel's id.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub hits: Vec<(ChannelId, ChatMessage)>,
    /// More hits match: the page after starts below the last one.
    pub more: bool,
}

impl Found {
    /// The page from hits in order, cut at `limit` and at `MAX_HISTORY_PAGE_BYTES` of text
    /// (always at least one).
    pub fn cut(
        limit: u32,
        rows: impl IntoIterator<Item = Result<(ChannelId, ChatMessage), ProtocolError>>,
    ) -> Result<Self, ProtocolError> {
        let mut found = Self::default();
        let mut bytes = 0;
        for row in rows {
            let (channel_id, message) = row?;
            bytes += message.text.len();
            let full = found.hits.len() >= limit as usize
                || (bytes > MAX_HISTORY_PAGE_BYTES && !found.hits.is_empty());
            if full {
                found.more = true;
                break;
            }
            found.hits.push((channel_id, message));
        }
        Ok(found)
    }

    /// Where the page after this one starts, if there is one.
    pub fn next(&self) -> Option<SearchCursor> {
        let (channel_id, last) = self.hits.last().filter(|_| self.more)?;
        Some(SearchCursor {
            ts: last.ts,
            channel_id: *channel_id,
            seq: last.seq,
        })
    }
}

/// One message to store.
pub struct Append {
    pub channel: Name,
    pub sender_id: UserId,
    pub from: SessionPath,
    /// The brakes apply to `agent` sessions only.
    pub kind: SessionKind,
    pub client_id: String,
    pub text: String,
    /// The seq of the message of the channel this one answers.
    pub reply_to: Option<u64>,
    /// Set on an edit, delete or reaction: the message it changes (see `changes`).
    pub change: Option<Change>,
    /// The sender is a server admin (who may delete any message).
    pub admin: bool,
    /// The sender's claim on its path (see `Store::claim_path`), on a store shared by
    /// several instances: refused once another sign-in took the path over.
    pub claim: Option<i64>,
    /// Runs right after the commit (or the failure), in sequence order, before the commit's
    /// messages are published. `Sync`, so a backend may hold the append across its awaits.
    pub then: Box<dyn FnOnce(Result<Appended, ProtocolError>) + Send + Sync>,
}

/// A stored message and whether this append stored it (false: an earlier one with the same
/// client id did).
#[derive(Debug, Clone)]
pub struct Appended {
    pub channel_id: ChannelId,
    pub message: ChatMessage,
    pub duplicate: bool,
}

/// Where stored messages go after each commit (the hub's fan-out), once per commit with every
/// new message of it in sequence order, after each sender has been acknowledged.
pub type Publish = Box<dyn Fn(Vec<Appended>) + Send>;

/// The outcome of committing a group of appends: each one's, in order, or the error that
/// kept the whole group from committing.
pub type GroupOutcome = Result<Vec<Result<Appended, ProtocolError>>, ProtocolError>;

/// Ends a group of appends once its transaction is over, the same way on every backend: each
/// continuation runs in order with its outcome, then the new messages are published; when the
/// group did not commit, every append hears why and nothing is published.
pub fn finish_group(appends: Vec<Append>, outcome: GroupOutcome, publish: &Publish) {
    match outcome {
        Ok(results) => {
            let mut stored = Vec::with_capacity(results.len());
            for (append, result) in appends.into_iter().zip(results) {
                if let Ok(appended) = &result {
                    if !appended.duplicate {
                        stored.push(appended.clone());
                    }
                }
                (append.then)(result);
            }
            if !stored.is_empty() {
                publish(stored);
            }
        }
        Err(e) => {
            for append in appends {
                (append.then)(Err(e.clone()));
            }
        }
    }
}

/// What a retention purge dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: usize,
    pub audit: usize,
}

/// One moderation act, to be checked against the rules, applied and audited as one unit.
pub struct Moderation {
    pub channel: Name,
    pub by: Actor,
    pub act: ChannelAct,
    /// The act's target user is a server admin.
    pub target_admin: bool,
    pub reason: Option<String>,
    pub now: i64,
    /// Runs right after the commit, before anything stored later is published: the room
    /// hears of the act before any message that follows it. `Sync`, like `Append::then`.
    pub then: Box<dyn FnOnce(&Moderated) + Send + Sync>,
}

/// A moderation act that was done.
#[derive(Debug, Clone)]
pub struct Moderated {
    /// The channel as it was found (before a rename or a delete).
    pub channel: Channel,
    /// The act's target user, when it has one.
    pub target: Option<UserId>,
}

/// An invite token to a channel.
#[derive(Debug, Clone)]
pub struct ChannelInvite {
    pub channel: Name,
    pub token: String,
    pub uses: u32,
    pub expires_at: i64,
}

/// One act, as it is written to the log.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub ts: i64,
    pub actor_id: UserId,
    pub by: SessionPath,
    pub action: String,
    pub channel: Option<(ChannelId, Name)>,
    pub target: Option<String>,
    pub detail: String,
    pub reason: Option<String>,
}

impl AuditRecord {
    /// A record of `action` by `by` at `ts`, with no channel, target or reason yet.
    pub fn new(by: &Actor, ts: i64, action: &str, detail: String) -> Self {
        Self {
            ts,
            actor_id: by.user_id,
            by: by.path.clone(),
            action: action.to_owned(),
            channel: None,
            target: None,
            detail,
            reason: None,
        }
    }

    /// The record of a moderation act done in `channel`.
    pub fn of_act(moderation: &Moderation, channel: &Channel) -> Self {
        let act = &moderation.act;
        Self {
            channel: Some((channel.id, channel.name.clone())),
            target: match act {
                ChannelAct::Kick { target, .. } => Some(target.to_string()),
                other => other.target_user().map(Name::to_string),
            },
            reason: moderation.reason.clone(),
            ..Self::new(&moderation.by, moderation.now, act.name(), act.to_string())
        }
    }
}

/// A server-wide ban of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBan {
    pub until: i64,
    pub reason: Option<String>,
}

/// A user's ban from one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub until: i64,
    pub reason: Option<String>,
}

impl Ban {
    /// The refusal a banned user gets: private channels still look missing to them.
    pub fn refusal(&self, channel: &Channel) -> ProtocolError {
        if channel.visibility == Visibility::Private {
            return ProtocolError::not_found(format!("there is no channel #{}", channel.name));
        }
        let why = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        ProtocolError::forbidden(format!(
            "you are banned from #{} {}{why}",
            channel.name,
            remaining_in_words(self.until, now_ms())
        ))
    }
}
