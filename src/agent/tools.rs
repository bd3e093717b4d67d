//! The operations both front ends offer: `send`, `whisper`, `read`, `unread`, `channels`,
//! `who`, `join`, `leave`, `status`. Each takes JSON arguments and returns an [`Outcome`] that
//! renders as JSON (for programs) or as text (for a model, with message text quoted as
//! untrusted). Errors are plain sentences the caller can act on. None of these can change
//! autonomy or answer a permission request: only people can.

use serde_json::{Map, Value, json};

use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{ChatMessage, MAX_HISTORY_PAGE};

use super::Agent;
use super::core::quote_untrusted;

/// Most messages `unread` returns per call; the rest wait for the next call.
const UNREAD_PAGE: u32 = 50;

/// Default and largest page of `read`.
const READ_DEFAULT: u32 = 20;

/// A tool's name, description and JSON schema.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: Value,
}

fn channel_prop() -> Value {
    json!({"type": "string", "description": "Channel name, e.g. general (a leading # is fine)."})
}

/// Every tool, as `tools/list` shows it.
pub fn specs() -> Vec<ToolSpec> {
    let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    vec![
        ToolSpec {
            name: "send",
            description: "Post a message to a conclave channel you joined. Refused where your autonomy is below converse.",
            schema: object(
                json!({"channel": channel_prop(), "text": {"type": "string", "description": "The message."}}),
                &["channel", "text"],
            ),
        },
        ToolSpec {
            name: "whisper",
            description: "Send a private message to one online session, by path user/machine/session (the `from` of a message).",
            schema: object(
                json!({"to": {"type": "string", "description": "Session path user/machine/session."}, "text": {"type": "string"}}),
                &["to", "text"],
            ),
        },
        ToolSpec {
            name: "read",
            description: "Read a channel's history: the newest messages, or those after `since` (a sequence number).",
            schema: object(
                json!({
                    "channel": channel_prop(),
                    "since": {"type": "integer", "minimum": 0, "description": "Return messages after this sequence number."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_PAGE, "description": "At most this many (default 20)."}
                }),
                &["channel"],
            ),
        },
        ToolSpec {
            name: "unread",
            description: "Everything you have not read yet in your channels, oldest first, and mark it read. Call it when you start and whenever you may have missed messages.",
            schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "channels",
            description: "List the channels you can see, whether you joined them, and your autonomy in each.",
            schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "who",
            description: "Who is online: on the server, or in one channel (with its members).",
            schema: object(json!({"channel": channel_prop()}), &[]),
        },
        ToolSpec {
            name: "join",
            description: "Join a channel; its new messages will be pushed to you.",
            schema: object(json!({"channel": channel_prop()}), &["channel"]),
        },
        ToolSpec {
            name: "leave",
            description: "Leave a channel; its messages stop arriving.",
            schema: object(json!({"channel": channel_prop()}), &["channel"]),
        },
        ToolSpec {
            name: "status",
            description: "Your session path, the connection, your channels with autonomy and unread counts, open permission requests.",
            schema: object(json!({}), &[]),
        },
    ]
}

/// What an operation produced.
#[derive(Debug)]
pub enum Outcome {
    Sent {
        channel: Name,
        seq: u64,
    },
    Whispered {
        to: SessionPath,
    },
    Messages {
        messages: Vec<ChatMessage>,
        more: bool,
    },
    Channels(Vec<Value>),
    Who {
        channel: Option<Name>,
        sessions: Vec<Value>,
        members: Vec<String>,
    },
    Joined {
        channel: Name,
        last_seq: u64,
        unread: u64,
    },
    Left {
        channel: Name,
    },
    Status(Value),
}

fn message_json(m: &ChatMessage) -> Value {
    json!({"channel": m.channel.as_str(), "seq": m.seq, "from": m.from.to_string(), "ts": m.ts, "text": m.text})
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Sent { channel, seq } => json!({"channel": channel.as_str(), "seq": seq}),
            Self::Whispered { to } => json!({"to": to.to_string()}),
            Self::Messages { messages, more } => {
                json!({"messages": messages.iter().map(message_json).collect::<Vec<_>>(), "more": more})
            }
            Self::Channels(list) => json!({"channels": list}),
            Self::Who {
                channel,
                sessions,
                members,
            } => {
                json!({"channel": channel.as_ref().map(Name::as_str), "sessions": sessions, "members": members})
            }
            Self::Joined {
                channel,
                last_seq,
                unread,
            } => json!({"channel": channel.as_str(), "last_seq": last_seq, "unread": unread}),
            Self::Left { channel } => json!({"channel": channel.as_str()}),
            Self::Status(value) => value.clone(),
        }
    }

    /// Text for a model. Message bodies are quoted as untrusted, like pushed ones.
    pub fn to_text(&self) -> String {
        match self {
            Self::Sent { channel, seq } => format!("Posted to #{channel} as message {seq}."),
            Self::Whispered { to } => format!("Whispered to {to}."),
            Self::Messages { messages, more } => {
                if messages.is_empty() {
                    return "No messages.".into();
                }
                let mut out = String::from(
                    "Messages (untrusted content from other participants, quoted with |):\n",
                );
                for m in messages {
                    out.push_str(&format!(
                        "#{} seq {} from {}:\n{}\n",
                        m.channel,
                        m.seq,
                        m.from,
                        quote_untrusted(&m.text)
                    ));
                }
                if *more {
                    out.push_str("More remain: call again.\n");
                }
                out
            }
            Self::Joined {
                channel,
                last_seq,
                unread,
            } => format!(
                "Joined #{channel} ({last_seq} messages, {unread} unread). New messages will be pushed to you."
            ),
            Self::Left { channel } => format!("Left #{channel}."),
            Self::Channels(_) | Self::Who { .. } | Self::Status(_) => {
                serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
            }
        }
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{key}` is required and must be a string"))
}

fn opt_u64(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    }
}

fn channel_arg(args: &Map<String, Value>) -> Result<Name, String> {
    Name::channel(str_arg(args, "channel")?).map_err(|e| e.to_string())
}

/// Runs one operation by name.
pub async fn call(agent: &Agent, name: &str, args: &Map<String, Value>) -> Result<Outcome, String> {
    let server_err = |e: crate::net::link::LinkError| e.to_string();
    match name {
        "send" => {
            let channel = channel_arg(args)?;
            let text = str_arg(args, "text")?;
            agent.may_reply(agent.level(&channel), &format!("#{channel}"))?;
            let receipt = agent.link.send(&channel, text).await.map_err(server_err)?;
            Ok(Outcome::Sent {
                channel,
                seq: receipt.seq,
            })
        }
        "whisper" => {
            let to = SessionPath::parse(str_arg(args, "to")?).map_err(|e| e.to_string())?;
            agent.may_reply(agent.whisper_level(&to).await, &format!("whispers to {to}"))?;
            agent
                .link
                .whisper(&to, str_arg(args, "text")?)
                .await
                .map_err(server_err)?;
            Ok(Outcome::Whispered { to })
        }
        "read" => {
            let channel = channel_arg(args)?;
            agent.may_read(&channel)?;
            let since = opt_u64(args, "since")?;
            let limit = opt_u64(args, "limit")?.map_or(READ_DEFAULT, |l| {
                l.clamp(1, u64::from(MAX_HISTORY_PAGE)) as u32
            });
            let page = agent
                .link
                .history(&channel, since, None, limit)
                .await
                .map_err(server_err)?;
            Ok(Outcome::Messages {
                messages: page.messages,
                more: page.more,
            })
        }
        "unread" => unread(agent).await,
        "channels" => {
            let list = agent.link.list_channels().await.map_err(server_err)?;
            let joined: Vec<Name> = agent.marks().into_iter().map(|(n, _, _)| n).collect();
            Ok(Outcome::Channels(
                list.iter()
                    .map(|c| {
                        json!({
                            "channel": c.name.as_str(),
                            "visibility": c.visibility.as_str(),
                            "joined": joined.contains(&c.name),
                            "messages": c.last_seq,
                            "autonomy": agent.level(&c.name).as_str(),
                        })
                    })
                    .collect(),
            ))
        }
        "who" => {
            let channel = match args.get("channel") {
                None | Some(Value::Null) => None,
                Some(_) => Some(channel_arg(args)?),
            };
            let report = agent.link.who(channel.as_ref()).await.map_err(server_err)?;
            Ok(Outcome::Who {
                channel,
                sessions: report
                    .sessions
                    .iter()
                    .map(|s| json!({"path": s.path.to_string(), "kind": s.kind.as_str()}))
                    .collect(),
                members: report.members.iter().map(ToString::to_string).collect(),
            })
        }
        "join" => {
            let channel = channel_arg(args)?;
            let (read_seq, last_seq) = agent.join(&channel).await.map_err(server_err)?;
            Ok(Outcome::Joined {
                channel,
                last_seq,
                unread: last_seq.saturating_sub(read_seq),
            })
        }
        "leave" => {
            let channel = channel_arg(args)?;
            agent.leave(&channel).await.map_err(server_err)?;
            Ok(Outcome::Left { channel })
        }
        "status" => Ok(Outcome::Status(status(agent))),
        other => Err(format!(
            "there is no tool `{other}`; the tools are send, whisper, read, unread, channels, who, join, leave, status"
        )),
    }
}

/// Messages after this session's read positions, oldest channel first, at most a page; the
/// positions advance on the server so the next call continues where this one stopped.
async fn unread(agent: &Agent) -> Result<Outcome, String> {
    let mut out = Vec::new();
    let mut more = false;
    for (channel, read_seq, last_seq) in agent.marks() {
        if read_seq >= last_seq || agent.may_read(&channel).is_err() {
            continue;
        }
        let budget = UNREAD_PAGE.saturating_sub(out.len() as u32);
        if budget == 0 {
            more = true;
            break;
        }
        let page = agent
            .link
            .history(&channel, Some(read_seq), None, budget)
            .await
            .map_err(|e| e.to_string())?;
        let Some(newest) = page.messages.last().map(|m| m.seq) else {
            // Purged by retention: nothing left to read there.
            agent.set_read(&channel, last_seq);
            continue;
        };
        agent
            .link
            .mark_read(&channel, newest)
            .await
            .map_err(|e| e.to_string())?;
        agent.set_read(&channel, newest);
        more |= page.more;
        // Its own messages are not news to the agent.
        out.extend(page.messages.into_iter().filter(|m| m.from != agent.me));
    }
    Ok(Outcome::Messages {
        messages: out,
        more,
    })
}

fn status(agent: &Agent) -> Value {
    let state = agent.lock();
    let channels: Vec<Value> = state
        .channels
        .iter()
        .map(|(name, mark)| {
            json!({
                "channel": name.as_str(),
                "autonomy": state.levels.channel(name).as_str(),
                "unread": mark.last_seq.saturating_sub(mark.read_seq),
            })
        })
        .collect();
    json!({
        "path": agent.me.to_string(),
        "server": agent.server,
        "connection": state.connection,
        "channels": channels,
        "default_autonomy": state.levels.default_level().as_str(),
        "whispers_autonomy": state.levels.whispers().as_str(),
        "whispers_from_your_people_autonomy": state.levels.whispers_with(true).as_str(),
        "open_permission_requests": state.permissions.pending(),
    })
}
