//! What people use to govern a room: roles, moderation acts, channel settings (the brakes on
//! agent loops), invite tokens, the audit log and server-wide bans. The server enforces every
//! rule; clients only ask and show.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Visibility;
use crate::net::names::{Name, SessionPath};

/// A ban or mute with no end (`until` at the end of time).
pub const FOREVER: i64 = i64::MAX;

/// Longest reason given with a moderation act, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// Longest channel topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 500;

/// Default agent turn budget of a new channel: agent messages in a row with no person between.
pub const DEFAULT_AGENT_TURNS: u32 = 20;

/// Longest slow-mode interval, in seconds (an hour).
pub const MAX_SLOW_SECONDS: u32 = 3600;

/// Longest an invite token lives, and how long it lives by default.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 86_400);
pub const DEFAULT_INVITE_TTL: Duration = Duration::from_secs(7 * 86_400);

/// Most uses one invite token may have.
pub const MAX_INVITE_USES: u32 = 1000;

/// Most entries in one page of the audit log or the user list.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// A member's standing in one channel, lowest first. Server admins act as owners everywhere.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Moderator,
    /// The creator, unless they handed it on; there is one at a time.
    Owner,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// When agents may post in a channel.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ReplyMode {
    /// Whenever they like (within the other brakes).
    #[default]
    Open,
    /// Only in answer to a message that mentions them since their last post, or while a
    /// person has given them the floor.
    Mention,
}

impl fmt::Display for ReplyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// Whom a kick removes: every session of a user (and their membership), or one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KickTarget {
    User(Name),
    Session(SessionPath),
}

impl KickTarget {
    pub fn user(&self) -> &Name {
        match self {
            Self::User(user) => user,
            Self::Session(path) => &path.user,
        }
    }
}

impl fmt::Display for KickTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(user) => write!(f, "{user}"),
            Self::Session(path) => write!(f, "{path}"),
        }
    }
}

/// A channel setting that brakes agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum ChannelSetting {
    /// Agent messages allowed in a row with no person's message between; 0 means unlimited.
    AgentTurns {
        turns: u32,
    },
    ReplyMode {
        mode: ReplyMode,
    },
    /// At most one message per agent session every this many seconds; 0 turns it off.
    Slow {
        seconds: u32,
    },
}

impl fmt::Display for ChannelSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AgentTurns { turns: 0 } => write!(f, "agent-turns unlimited"),
            Self::AgentTurns { turns } => write!(f, "agent-turns {turns}"),
            Self::ReplyMode { mode } => write!(f, "reply-mode {mode}"),
            Self::Slow { seconds: 0 } => write!(f, "slow off"),
            Self::Slow { seconds } => write!(f, "slow {seconds}s"),
        }
    }
}

/// One moderation act on a channel (see `ClientFrame::Moderate`). Only people's sessions may
/// ask; what each role may do is the server's rule (`server::rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub enum ChannelAct {
    /// Ends a user's (or one session's) presence in the channel now; with `ban_for_ms` the
    /// user is also banned for that long.
    Kick {
        target: KickTarget,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ban_for_ms: Option<u64>,
    },
    /// The user cannot join, read or post; `for_ms` absent means until unbanned.
    Ban {
        user: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    Unban {
        user: Name,
    },
    /// The user may read but not post; `for_ms` absent means until unmuted.
    Mute {
        user: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    Unmute {
        user: Name,
    },
    /// Gives a member a role; making someone `owner` hands the channel over (the old owner
    /// becomes a moderator).
    Role {
        user: Name,
        role: Role,
    },
    /// Sets the topic; empty clears it.
    Topic {
        topic: String,
    },
    /// Renames the channel; history and read positions follow.
    Rename {
        name: Name,
    },
    /// Makes the channel read-only for everyone.
    Archive,
    /// Makes an archived channel writable again.
    Unarchive,
    /// Deletes the channel and its history.
    Delete,
    Set {
        setting: ChannelSetting,
    },
    /// Gives the floor (reply mode `mention`) to an agent by handle, user or full path, or
    /// takes it back with `None`.
    Floor {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Revokes an invite token of the channel.
    RevokeInvite {
        token: String,
    },
    /// Pins a message of the channel (at most `MAX_PINS`), shown at the top of its panes.
    Pin {
        seq: u64,
    },
    Unpin {
        seq: u64,
    },
}

impl ChannelAct {
    /// The act's name, as the audit log and the CLI say it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Kick { .. } => "kick",
            Self::Ban { .. } => "ban",
            Self::Unban { .. } => "unban",
            Self::Mute { .. } => "mute",
            Self::Unmute { .. } => "unmute",
            Self::Role { .. } => "role",
            Self::Topic { .. } => "topic",
            Self::Rename { .. } => "rename",
            Self::Archive => "archive",
            Self::Unarchive => "unarchive",
            Self::Delete => "delete",
            Self::Set { .. } => "set",
            Self::Floor { .. } => "floor",
            Self::RevokeInvite { .. } => "revoke-invite",
            Self::Pin { .. } => "pin",
            Self::Unpin { .. } => "unpin",
        }
    }

    /// What doing the act is called in a refusal: "only moderators ... may kick".
    pub fn doing(&self) -> &'static str {
        match self {
            Self::Kick { .. } => "kick",
            Self::Ban { .. } => "ban",
            Self::Unban { .. } => "unban",
            Self::Mute { .. } => "mute",
            Self::Unmute { .. } => "unmute",
            Self::Role { .. } => "give roles",
            Self::Topic { .. } => "set the topic",
            Self::Rename { .. } => "rename it",
            Self::Archive => "archive it",
            Self::Unarchive => "unarchive it",
            Self::Delete => "delete it",
            Self::Set { .. } => "change its settings",
            Self::Floor { .. } => "give the floor",
            Self::RevokeInvite { .. } => "revoke invites",
            Self::Pin { .. } | Self::Unpin { .. } => "pin messages",
        }
    }

    /// The user the act is done to, if it is done to one.
    pub fn target_user(&self) -> Option<&Name> {
        match self {
            Self::Kick { target, .. } => Some(target.user()),
            Self::Ban { user, .. }
            | Self::Unban { user }
            | Self::Mute { user, .. }
            | Self::Unmute { user }
            | Self::Role { user, .. } => Some(user),
            _ => None,
        }
    }
}

/// One line of the room's story, as people read it: `kicked bob/laptop/claude (loops)`.
impl fmt::Display for ChannelAct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = |ms: &Option<u64>| match ms {
            Some(ms) => format!(" for {}", duration_in_words(*ms)),
            None => String::new(),
        };
        match self {
            Self::Kick { target, ban_for_ms } => match ban_for_ms {
                Some(_) => write!(f, "kicked {target} and banned them{}", span(ban_for_ms)),
                None => write!(f, "kicked {target}"),
            },
            Self::Ban { user, for_ms } => write!(f, "banned {user}{}", span(for_ms)),
            Self::Unban { user } => write!(f, "unbanned {user}"),
            Self::Mute { user, for_ms } => write!(f, "muted {user}{}", span(for_ms)),
            Self::Unmute { user } => write!(f, "unmuted {user}"),
            Self::Role { user, role } => write!(f, "made {user} {role}"),
            Self::Topic { topic } if topic.is_empty() => write!(f, "cleared the topic"),
            Self::Topic { topic } => write!(f, "set the topic: {topic}"),
            Self::Rename { name } => write!(f, "renamed the channel to #{name}"),
            Self::Archive => write!(f, "archived the channel: it is read-only"),
            Self::Unarchive => write!(f, "unarchived the channel"),
            Self::Delete => write!(f, "deleted the channel"),
            Self::Set { setting } => write!(f, "set {setting}"),
            Self::Floor { to: Some(to) } => write!(f, "gave the floor to @{to}"),
            Self::Floor { to: None } => write!(f, "took the floor back"),
            Self::RevokeInvite { .. } => write!(f, "revoked an invite"),
            Self::Pin { seq } => write!(f, "pinned message {seq}"),
            Self::Unpin { seq } => write!(f, "unpinned message {seq}"),
        }
    }
}

/// A moderation act as the channel's sessions (and the sessions it removes) hear of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationEvent {
    /// The channel's name before the act (a rename carries the new one in `act`).
    pub channel: Name,
    pub by: SessionPath,
    pub act: ChannelAct,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ts: i64,
}

impl ModerationEvent {
    /// Whether the act ends `me`'s receiving of the channel.
    pub fn removes(&self, me: &SessionPath) -> bool {
        match &self.act {
            ChannelAct::Kick {
                target: KickTarget::User(user),
                ..
            }
            | ChannelAct::Ban { user, .. } => user == &me.user,
            ChannelAct::Kick {
                target: KickTarget::Session(path),
                ..
            } => path == me,
            ChannelAct::Delete => true,
            _ => false,
        }
    }
}

/// A channel in full, as `ChannelDetails` answers: what its members and moderators need, and
/// what an agent needs to behave (reply mode, budget left, its own mute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDetails {
    pub name: Name,
    pub visibility: Visibility,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub owner: Option<Name>,
    /// At most `MAX_LISTED_MODERATORS`.
    #[serde(default)]
    pub moderators: Vec<Name>,
    /// The asking user's role; `None` when not a member.
    #[serde(default)]
    pub role: Option<Role>,
    /// Until when the asking user is muted here (ms since epoch, `FOREVER` for good).
    #[serde(default)]
    pub muted_until: Option<i64>,
    pub agent_turns: u32,
    /// Agent messages in a row since a person last posted.
    pub agent_run: u32,
    pub reply_mode: ReplyMode,
    pub slow_seconds: u32,
    #[serde(default)]
    pub floor: Option<String>,
    pub last_seq: u64,
    /// Pinned messages, newest pin first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<Pin>,
}

/// Most messages a channel keeps pinned.
pub const MAX_PINS: usize = 50;

/// Most of a pinned message's text a `Pin` carries, in bytes.
pub const MAX_PIN_TEXT: usize = 200;

/// A pinned message, as the channel's details show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub seq: u64,
    pub from: SessionPath,
    /// The start of its text (at most `MAX_PIN_TEXT` bytes).
    pub text: String,
    /// Who pinned it.
    pub by: Name,
}

impl Pin {
    /// A pin of message `seq` with its full `text`, cut to fit.
    pub fn of(seq: u64, from: SessionPath, text: &str, by: Name) -> Self {
        let mut end = text.len().min(MAX_PIN_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            seq,
            from,
            text: text[..end].to_owned(),
            by,
        }
    }
}

/// Most moderators a `ChannelDetails` lists.
pub const MAX_LISTED_MODERATORS: usize = 100;

impl ChannelDetails {
    /// Agent messages still allowed before the channel waits for a person; `None` when
    /// unlimited.
    pub fn agent_turns_left(&self) -> Option<u32> {
        (self.agent_turns > 0).then(|| self.agent_turns.saturating_sub(self.agent_run))
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub ts: i64,
    /// The session that acted.
    pub by: SessionPath,
    /// What was done: a `ChannelAct::name`, `ban-user`, `unban-user`, `invite`,
    /// `permission-verdict` or `autonomy`.
    pub action: String,
    #[serde(default)]
    pub channel: Option<Name>,
    #[serde(default)]
    pub target: Option<String>,
    /// The act in words (`muted bob for 10m`).
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An open invite token of a channel, as its moderators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub token: String,
    /// Who made it.
    pub by: Name,
    pub uses_left: u32,
    /// Milliseconds since the epoch.
    pub expires: i64,
}

/// Most invites one `invites` answer lists (the newest to expire last first).
pub const MAX_LISTED_INVITES: u32 = 500;

/// A user as a server admin's list shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: Name,
    /// Milliseconds since the Unix epoch.
    pub created: i64,
    pub machines: u32,
    /// Live sessions now.
    pub online: u32,
    #[serde(default)]
    pub admin: bool,
    /// Until when the user is banned from the server (`FOREVER` for good).
    #[serde(default)]
    pub banned_until: Option<i64>,
    #[serde(default)]
    pub ban_reason: Option<String>,
}

/// Reads `30s`, `10m`, `2h`, `7d` (a whole number and one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: write a number and s, m, h or d, like 10m");
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(seconds)
        .filter(|&s| s > 0 && s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is not a duration between 1s and 100 years"))
}

/// A span as people say it, rounded up to its largest unit or two: `400 ms`, `12s`, `9m`,
/// `2h 5m`, `7d`.
pub fn duration_in_words(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let seconds = ms.div_ceil(1000);
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m, s) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, _) if m >= 10 => format!("{}m", m + 1),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, 0, 0) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

/// How long until `until` (ms since epoch) from `now`, in words; "for good" at `FOREVER`.
pub fn remaining_in_words(until: i64, now: i64) -> String {
    if until == FOREVER {
        return "for good".into();
    }
    format!(
        "for {}",
        duration_in_words(u64::try_from(until - now).unwrap_or(0))
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_read_the_way_the_cli_writes_them() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "10", "m", "10x", "-5m", "1.5h", "0s", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_read_the_way_people_say_them() {
        assert_eq!(duration_in_words(400), "400 ms");
        assert_eq!(duration_in_words(12_000), "12s");
        assert_eq!(duration_in_words(540_000), "9m");
        assert_eq!(duration_in_words(539_001), "9m");
        assert_eq!(duration_in_words(90_000), "1m 30s");
        assert_eq!(duration_in_words(7_500_000), "2h 5m");
        assert_eq!(duration_in_words(604_800_000), "7d");
        assert_eq!(remaining_in_words(FOREVER, 0), "for good");
        assert_eq!(remaining_in_words(60_000, 0), "for 1m");
    }

    #[test]
    fn an_act_says_whom_it_removes() {
        let me = SessionPath::parse("bob/laptop/claude").unwrap();
        let event = |act| ModerationEvent {
            channel: Name::channel("ops").unwrap(),
            by: SessionPath::parse("alice/desk/tui").unwrap(),
            act,
            reason: None,
            ts: 0,
        };
        let bob = Name::user("bob").unwrap();
        assert!(
            event(ChannelAct::Ban {
                user: bob.clone(),
                for_ms: None
            })
            .removes(&me)
        );
        assert!(
            event(ChannelAct::Kick {
                target: KickTarget::Session(me.clone()),
                ban_for_ms: None
            })
            .removes(&me)
        );
        let other = SessionPath::parse("bob/laptop/tui").unwrap();
        assert!(
            !event(ChannelAct::Kick {
                target: KickTarget::Session(other),
                ban_for_ms: None
            })
            .removes(&me)
        );
        assert!(event(ChannelAct::Delete).removes(&me));
        assert!(
            !event(ChannelAct::Mute {
                user: bob,
                for_ms: None
            })
            .removes(&me)
        );
    }
}
