//! `conclave tail`: a channel's messages, events and whispers as they come, for people (one
//! line each) or programs (JSON objects).

use color_eyre::eyre::{Result, bail, eyre};

use super::send::Conversation;
use super::{Connect, Env, human_duration};
use crate::net::client::Setup;
use crate::net::link::{LinkEvent, Resume};
use crate::net::names::Name;
use crate::net::protocol::{Change, ChatMessage, PresenceChange, WhisperMessage};

/// Output format of `tail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// One message as `tail --format json` prints it.
pub fn message_json(m: &ChatMessage) -> serde_json::Value {
    let mut json = serde_json::json!({
        "kind": "message",
        "channel": m.channel.as_str(),
        "seq": m.seq,
        "from": m.from.to_string(),
        "ts": rfc3339(m.ts),
        "text": m.text,
    });
    if let Some(reply_to) = m.reply_to {
        json["reply_to"] = reply_to.into();
    }
    if let Some(change) = &m.change {
        json["kind"] = change.name().into();
        json["target"] = change.target().into();
    }
    if let Some(edited) = m.edited {
        json["edited"] = rfc3339(edited).into();
    }
    if m.deleted {
        json["deleted"] = true.into();
    }
    if !m.reactions.is_empty() {
        json["reactions"] = m
            .reactions
            .iter()
            .map(|r| {
                serde_json::json!({
                    "reaction": r.reaction,
                    "count": r.count,
                    "users": r.users.iter().map(Name::as_str).collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    json
}

pub(super) fn rfc3339(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A whisper to the tailing session as `tail --format json` prints it.
pub fn whisper_json(w: &WhisperMessage) -> serde_json::Value {
    serde_json::json!({
        "kind": "whisper",
        "from": w.from.to_string(),
        "to": w.to.to_string(),
        "ts": rfc3339(w.ts),
        "text": w.text,
    })
}

pub(super) fn local_time(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// Text as a terminal may show it: control characters (escape sequences, carriage returns)
/// from a sender are made visible instead of acted on, and later lines are indented.
pub(super) fn printable(text: &str) -> String {
    crate::net::text::visible(text, "\n    ")
}

/// One message as `tail` prints it for people: local time, channel, sender, text (later lines
/// indented under the first), or what an event changed.
pub fn message_line(m: &ChatMessage) -> String {
    let text = printable(&m.text);
    let head = format!("[{}] #{}:{} {}", local_time(m.ts), m.channel, m.seq, m.from);
    let target = |seq: u64| format!("#{}:{seq}", m.channel);
    match &m.change {
        Some(Change::Edit { target: seq }) => format!("{head} edited {}: {text}", target(*seq)),
        Some(Change::Delete { target: seq }) => format!("{head} deleted {}", target(*seq)),
        Some(Change::React {
            target: seq,
            removed: false,
        }) => format!("{head} reacted {text} to {}", target(*seq)),
        Some(Change::React {
            target: seq,
            removed: true,
        }) => format!("{head} took back {text} on {}", target(*seq)),
        None => {
            let answering = m
                .reply_to
                .map(|seq| format!(" (re {})", target(seq)))
                .unwrap_or_default();
            let body = if m.deleted {
                "(deleted)".to_owned()
            } else {
                text
            };
            let edited = if m.edited.is_some() { " (edited)" } else { "" };
            let reactions: String = m
                .reactions
                .iter()
                .map(|r| format!(" [{} {}]", printable(&r.reaction), r.count))
                .collect();
            format!("{head}{answering}: {body}{edited}{reactions}")
        }
    }
}

pub fn whisper_line(w: &WhisperMessage) -> String {
    let text = printable(&w.text);
    format!("[{}] whisper from {}: {text}", local_time(w.ts), w.from)
}

/// `conclave tail`: prints a channel's messages (and whispers to this session) as they come,
/// across reconnects and server restarts, until interrupted.
pub async fn tail(
    env: &Env,
    channel: &str,
    server: Option<&str>,
    resume: Resume,
    format: Format,
) -> Result<()> {
    let to = Conversation::parse(channel)?;
    let mut client = env
        .connect(Connect {
            server,
            handle: None,
            default_handle: "tail",
            persistent: true,
            setup: Setup::Key,
        })
        .await?;
    let channel = to.channel(&client.path.user)?;
    let joined = client.link.join(&channel, resume).await?;
    if joined.new_member {
        eprintln!(
            "conclave: you were not in #{channel}: joined it (`conclave leave {channel}` to leave)"
        );
    }
    if let Resume::After(since) = resume {
        let last = joined.channel.last_seq;
        if since >= last {
            eprintln!(
                "conclave: #{channel} has no message after {since} (the newest is {last}); waiting for new ones"
            );
        }
    }
    eprintln!("conclave: tailing #{channel} as {}", client.path);
    loop {
        let event = tokio::select! {
            event = client.events.recv() => event,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(event) = event else { return Ok(()) };
        match event {
            LinkEvent::Message(m) => match format {
                Format::Text => println!("{}", message_line(&m)),
                Format::Json => println!("{}", message_json(&m)),
            },
            LinkEvent::Presence(p) if format == Format::Text => {
                let what = match p.change {
                    PresenceChange::Joined => "joined",
                    PresenceChange::Left => "left",
                    PresenceChange::Online => "is online",
                    PresenceChange::Offline => "went offline",
                };
                eprintln!("* {} {what} #{}", p.session.path, p.channel);
            }
            LinkEvent::Disconnected { reason, retry_in } => {
                eprintln!(
                    "conclave: {reason}; reconnecting in {}",
                    human_duration(retry_in)
                );
            }
            LinkEvent::Connected { path, .. } => eprintln!("conclave: connected as {path}"),
            LinkEvent::ChannelLost { channel, reason } => bail!("lost #{channel}: {reason}"),
            LinkEvent::Closed { reason } => bail!(reason),
            LinkEvent::Whisper(w) => match format {
                Format::Text => println!("{}", whisper_line(&w)),
                Format::Json => println!("{}", whisper_json(&w)),
            },
            LinkEvent::Moderation(event) => {
                let why = event
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                eprintln!("* {} {} in #{}{why}", event.by, event.act, event.channel);
                if event.removes(&client.path) {
                    bail!("you no longer receive #{}: {}", event.channel, event.act);
                }
            }
            LinkEvent::Presence(_) | LinkEvent::Relay { .. } | LinkEvent::Opened(_) => {}
        }
    }
}

/// Parses `--since`/`--last` into where `tail` starts.
pub fn resume_from(since: Option<u64>, last: Option<u64>) -> Result<Resume> {
    match (since, last) {
        (Some(_), Some(_)) => Err(eyre!("give --since or --last, not both")),
        (Some(seq), None) => Ok(Resume::After(seq)),
        (None, Some(n)) => Ok(Resume::Last(n)),
        (None, None) => Ok(Resume::Live),
    }
}
