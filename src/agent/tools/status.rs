//! The `status` tool: the agent's standing, and each channel's brakes as they apply to it.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::{STATUS_DETAILS, ToolError};
use crate::agent::{Agent, ChannelRef, Place};
use crate::net::link::LinkError;
use crate::net::names::SessionPath;
use crate::net::protocol::{ChannelDetails, ClientFrame, FOREVER, ServerFrame, duration_in_words};

/// The agent's standing: its session and levels, and for each joined channel (or the one
/// asked) what the agent knows locally plus the channel's brakes as the server describes them,
/// for at most `STATUS_DETAILS` channels.
pub(super) async fn status(agent: &Agent, only: Option<ChannelRef>) -> Result<Value, ToolError> {
    let places = match &only {
        Some(channel) => vec![agent.resolve(channel)?],
        None => agent
            .marks()
            .into_iter()
            .map(|(place, _, _)| place)
            .collect(),
    };
    let mut channels = Vec::with_capacity(places.len());
    for (i, place) in places.iter().enumerate() {
        let mut entry = Map::new();
        entry.insert("channel".into(), json!(agent.label(place)));
        entry.insert("autonomy".into(), json!(agent.level(&place.channel)));
        if let Some(mark) = agent.mark(place) {
            entry.insert(
                "unread".into(),
                json!(mark.last_seq.saturating_sub(mark.read_seq)),
            );
            entry.insert(
                "waiting_for_person".into(),
                json!(mark.floor.held().is_some()),
            );
            if let Some(held) = mark.floor.held() {
                entry.insert("held_agent_messages".into(), json!(held));
            }
        }
        if i < STATUS_DETAILS {
            match describe(agent, place).await {
                Ok(details) => {
                    let me = &agent.conn(place.server).me;
                    let brakes = brakes_json(&details, me, now_ms());
                    agent.set_holds_floor(place, brakes["holds_floor"] == json!(true));
                    entry.extend(brakes);
                }
                Err(e) if only.is_some() => return Err(e.into()),
                Err(e) => {
                    entry.insert("details_error".into(), json!(e.to_string()));
                }
            }
        }
        channels.push(Value::Object(entry));
    }
    let mut state = agent.lock();
    let default = agent.default_conn();
    let servers: Vec<Value> = agent
        .servers
        .iter()
        .zip(&state.connections)
        .map(|(conn, connection)| {
            json!({"server": conn.alias, "url": conn.url, "path": conn.me.to_string(), "connection": connection})
        })
        .collect();
    let mut out = json!({
        "path": default.me.to_string(),
        "server": default.alias,
        "connection": state.connections.get(agent.default),
        "servers": servers,
        "channels": channels,
        "default_autonomy": state.levels.default_level(),
        "whispers_autonomy": state.levels.whispers(),
        "whispers_from_your_people_autonomy": state.levels.whispers_with(true),
        "open_permission_requests": state.permissions.pending(std::time::Instant::now()),
    });
    if places.len() > STATUS_DETAILS {
        out["channels_without_details"] = json!(format!(
            "only the first {STATUS_DETAILS} channels show their brakes; call status(channel=...) for another"
        ));
    }
    Ok(out)
}

/// A channel in full, from the server.
async fn describe(agent: &Agent, place: &Place) -> Result<ChannelDetails, LinkError> {
    let frame = ClientFrame::DescribeChannel {
        id: 0,
        channel: place.channel.clone(),
    };
    match agent.conn(place.server).link.request(frame).await? {
        ServerFrame::ChannelDetails { details, .. } => Ok(details),
        other => Err(LinkError::Unexpected(other.kind())),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a channel's settings mean for this agent, as `status` shows them.
pub(super) fn brakes_json(
    details: &ChannelDetails,
    me: &SessionPath,
    now_ms: i64,
) -> Map<String, Value> {
    let turns_left = details
        .agent_turns_left()
        .map_or_else(|| json!("unlimited"), |left| json!(left));
    let slow = match details.slow_seconds {
        0 => "off".to_owned(),
        s => format!("one message every {s}s per agent"),
    };
    let muted = match details.muted_until {
        Some(FOREVER) => json!("until a moderator unmutes you"),
        Some(until) if until > now_ms => json!(format!(
            "for {}",
            duration_in_words(u64::try_from(until - now_ms).unwrap_or(u64::MAX))
        )),
        _ => Value::Null,
    };
    // What the channel's people pinned: its standing instructions, each a message to `read`.
    let pins = details
        .pins
        .iter()
        .map(|p| json!({"seq": p.seq, "from": p.from.to_string(), "text": p.text}))
        .collect();
    let holds_floor = details
        .floor
        .as_deref()
        .is_some_and(|floor| me.answers_to(floor));
    Map::from_iter([
        ("reply_mode".to_owned(), json!(details.reply_mode)),
        ("agent_turns_left".to_owned(), turns_left),
        ("slow_mode".to_owned(), json!(slow)),
        ("muted".to_owned(), muted),
        ("archived".to_owned(), json!(details.archived)),
        ("topic".to_owned(), json!(details.topic)),
        ("holds_floor".to_owned(), json!(holds_floor)),
        ("pinned".to_owned(), pins),
    ])
}
