//! The slash commands that govern the focused channel (`/kick`, `/mute`, `/topic`, `/set`,
//! `/invite`, ...): one function each reads the words typed into the act the server is asked
//! for. The server decides who may; a refusal comes back as a one-line error naming its rule,
//! and what was done shows when the channel's `Moderation` event arrives (`moderation`).

use crate::app::model::{App, EntryKind};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    ChannelAct, ChannelSetting, KickTarget, ReplyMode, Role, from_name, parse_duration,
};

use super::{Cmd, note};

/// What a governance command says outside a channel.
pub(super) const NOT_HERE: &str = "that acts on a channel: switch to one first";

/// An act read from the words typed, with the reason given for it.
type Parsed = Result<(ChannelAct, Option<String>), String>;

/// Asks for the act in `channel` (the focused one).
pub(super) fn moderate(channel: Option<Name>, parsed: Parsed) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (act, reason) = parsed?;
    Ok(vec![Cmd::Moderate {
        channel,
        act,
        reason,
    }])
}

/// `/kick USER|PATH [DURATION] [REASON]`: a duration bans the user for that long too.
pub(super) fn kick(args: &str) -> Parsed {
    const USAGE: &str = "/kick USER|user/machine/session [DURATION] [REASON]";
    let (word, rest) = first_word(args);
    let word = word.ok_or_else(|| usage(USAGE))?.trim_start_matches('@');
    let target = if word.contains('/') {
        KickTarget::Session(SessionPath::parse(word).map_err(|e| e.to_string())?)
    } else {
        KickTarget::User(user(Some(word), USAGE)?)
    };
    let (ban_for_ms, reason) = span_and_reason(rest);
    Ok((ChannelAct::Kick { target, ban_for_ms }, reason))
}

/// `/ban USER [DURATION] [REASON]`: for good without a duration.
pub(super) fn ban(args: &str) -> Parsed {
    let (user, for_ms, reason) = user_span_reason(args, "/ban USER [DURATION] [REASON]")?;
    Ok((ChannelAct::Ban { user, for_ms }, reason))
}

/// `/unban USER [REASON]`.
pub(super) fn unban(args: &str) -> Parsed {
    let (user, reason) = user_reason(args, "/unban USER")?;
    Ok((ChannelAct::Unban { user }, reason))
}

/// `/mute USER [DURATION] [REASON]`: until unmuted without a duration.
pub(super) fn mute(args: &str) -> Parsed {
    let (user, for_ms, reason) = user_span_reason(args, "/mute USER [DURATION] [REASON]")?;
    Ok((ChannelAct::Mute { user, for_ms }, reason))
}

/// `/unmute USER [REASON]`.
pub(super) fn unmute(args: &str) -> Parsed {
    let (user, reason) = user_reason(args, "/unmute USER")?;
    Ok((ChannelAct::Unmute { user }, reason))
}

/// `/role USER owner|moderator|member [REASON]`.
pub(super) fn role(args: &str) -> Parsed {
    const USAGE: &str = "/role USER owner|moderator|member";
    let (word, rest) = first_word(args);
    let user = user(word, USAGE)?;
    let (word, rest) = first_word(rest);
    let role = word
        .and_then(from_name::<Role>)
        .ok_or_else(|| usage(USAGE))?;
    Ok((ChannelAct::Role { user, role }, reason(rest)))
}

/// `/topic TEXT` sets the topic, `/topic -` clears it (a bare `/topic` shows it: see
/// `moderation::show_topic`).
pub(super) fn topic(args: &str) -> Parsed {
    let topic = match args.trim() {
        "-" => String::new(),
        text => text.to_owned(),
    };
    Ok((ChannelAct::Topic { topic }, None))
}

/// `/pin SEQ` and `/unpin SEQ`.
pub(super) fn pin(args: &str, pinned: bool) -> Parsed {
    let (word, rest) = first_word(args);
    let usage = || usage(if pinned { "/pin SEQ" } else { "/unpin SEQ" });
    let seq = word
        .and_then(|w| w.parse::<u64>().ok())
        .filter(|&seq| seq > 0)
        .ok_or_else(usage)?;
    let act = if pinned {
        ChannelAct::Pin { seq }
    } else {
        ChannelAct::Unpin { seq }
    };
    Ok((act, reason(rest)))
}

/// `/rename NEW [REASON]`.
pub(super) fn rename(args: &str) -> Parsed {
    let (word, rest) = first_word(args);
    let word = word.ok_or_else(|| usage("/rename NEW-NAME"))?;
    let name = Name::channel(word).map_err(|e| e.to_string())?;
    Ok((ChannelAct::Rename { name }, reason(rest)))
}

/// `/archive [REASON]` and `/unarchive [REASON]`.
pub(super) fn archive(args: &str, archived: bool) -> Parsed {
    let act = if archived {
        ChannelAct::Archive
    } else {
        ChannelAct::Unarchive
    };
    Ok((act, reason(args)))
}

/// `/set agent-turns N | reply-mode open|mention | slow SECONDS` (0 or `off` ends a brake).
pub(super) fn set(args: &str) -> Parsed {
    const USAGE: &str = "/set agent-turns N | reply-mode open|mention | slow SECONDS";
    let (name, rest) = first_word(args);
    let (value, rest) = first_word(rest);
    let value = value.ok_or_else(|| usage(USAGE))?;
    let number = |what: &str| -> Result<u32, String> {
        match value {
            "off" | "none" => Ok(0),
            v => v
                .parse()
                .map_err(|_| format!("`{v}` is not a number of {what}")),
        }
    };
    let setting = match name {
        Some("agent-turns") => ChannelSetting::AgentTurns {
            turns: number("turns")?,
        },
        Some("reply-mode") => ChannelSetting::ReplyMode {
            mode: from_name::<ReplyMode>(value)
                .ok_or_else(|| format!("`{value}` is not a reply mode: open or mention"))?,
        },
        Some("slow") => ChannelSetting::Slow {
            // Seconds, or a duration as elsewhere (`30s`, `2m`).
            seconds: match number("seconds") {
                Ok(n) => n,
                Err(e) => parse_duration(value)
                    .map_err(|_| e)
                    .and_then(|d| u32::try_from(d.as_secs()).map_err(|e| e.to_string()))?,
            },
        },
        _ => return Err(usage(USAGE)),
    };
    Ok((ChannelAct::Set { setting }, reason(rest)))
}

/// `/floor @AGENT` gives an agent the floor (while the reply mode is `mention`); a bare
/// `/floor` takes it back.
pub(super) fn floor(args: &str) -> Parsed {
    let (word, rest) = first_word(args);
    let to = word.map(|w| w.trim_start_matches('@').to_owned());
    Ok((ChannelAct::Floor { to }, reason(rest)))
}

/// `/delete CHANNEL [REASON]`: the channel's name typed again confirms it; anything else only
/// says how.
pub(super) fn delete(app: &mut App, channel: Option<Name>, args: &str) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (word, rest) = first_word(args);
    if word.and_then(|w| Name::channel(w).ok()).as_ref() != Some(&channel) {
        let room = app.focused_pane().room;
        let text = format!(
            "deleting #{channel} deletes its history for everyone, for good: type /delete {channel} to confirm"
        );
        note(app, room, EntryKind::Note, text);
        return Ok(Vec::new());
    }
    moderate(Some(channel), Ok((ChannelAct::Delete, reason(rest))))
}

/// `/invite [USES] [TTL]`: a number is the uses, a duration how long the token lives.
pub(super) fn invite(channel: Option<Name>, args: &str) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (mut uses, mut ttl_ms) = (None, None);
    for word in args.split_whitespace() {
        match (word.parse::<u32>(), parse_duration(word)) {
            (Ok(n), _) if uses.is_none() => uses = Some(n),
            (_, Ok(d)) if ttl_ms.is_none() => ttl_ms = Some(millis(d)),
            _ => return Err(usage("/invite [USES] [TTL], like /invite 5 1d")),
        }
    }
    Ok(vec![Cmd::Invite {
        channel,
        uses,
        ttl_ms,
    }])
}

/// The first word of `text` and what follows it.
fn first_word(text: &str) -> (Option<&str>, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (Some(word), rest.trim_start()),
        None if text.is_empty() => (None, ""),
        None => (Some(text), ""),
    }
}

fn usage(usage: &str) -> String {
    format!("usage: {usage}")
}

fn user(word: Option<&str>, usage_line: &str) -> Result<Name, String> {
    let word = word.ok_or_else(|| usage(usage_line))?;
    Name::user(word.trim_start_matches('@')).map_err(|e| e.to_string())
}

/// `USER [REASON]`.
fn user_reason(args: &str, usage_line: &str) -> Result<(Name, Option<String>), String> {
    let (word, rest) = first_word(args);
    Ok((user(word, usage_line)?, reason(rest)))
}

/// `USER [DURATION] [REASON]`.
fn user_span_reason(
    args: &str,
    usage_line: &str,
) -> Result<(Name, Option<u64>, Option<String>), String> {
    let (word, rest) = first_word(args);
    let user = user(word, usage_line)?;
    let (span, reason) = span_and_reason(rest);
    Ok((user, span, reason))
}

fn reason(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// An optional duration, then an optional reason: `10m spamming`, `spamming`, nothing.
fn span_and_reason(text: &str) -> (Option<u64>, Option<String>) {
    let (word, rest) = first_word(text);
    match word.map(parse_duration) {
        Some(Ok(span)) => (Some(millis(span)), reason(rest)),
        _ => (None, reason(text)),
    }
}

fn millis(span: std::time::Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}
