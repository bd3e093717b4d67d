//! The operations both front ends offer: `send`, `whisper`, `read`, `unread`, `channels`,
//! `who`, `join`, `leave`, `status` (`status.rs`), `search`. Each reads its typed arguments (`args.rs`) and returns an
//! [`Outcome`] that renders as JSON (for programs) or as text (for a model, with message text
//! quoted as untrusted). Errors are plain sentences the caller can act on. None of these can change
//! autonomy, answer a permission request or moderate a channel: only people can.

use serde_json::{Map, Value, json};

use crate::net::link::LinkError;
use crate::net::protocol::{
    ChatMessage, ErrorCode, MAX_HISTORY_PAGE, MAX_SEARCH_PAGE, MAX_TEXT_BYTES, SearchRequest,
};

use super::args::{
    self, ChannelsArgs, EditArgs, JoinArgs, LeaveArgs, ReactArgs, ReadArgs, SearchArgs, SendArgs,
    StatusArgs, ToolArgs, UnreadArgs, WhisperArgs, WhoArgs,
};
use super::core::quote_untrusted;
use super::gate::Floor;
use super::{Agent, Place};

/// Most messages `unread` returns per call; the rest wait for the next call.
const UNREAD_PAGE: u32 = 50;

/// Default and largest page of `read`.
const READ_DEFAULT: u32 = 20;

/// Most channels one `status` call describes (a server request each); it names the others.
const STATUS_DETAILS: usize = 20;

/// Why an operation failed: a sentence the caller can act on, and the server's error code
/// when the server refused (JSON lines reports it as `code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        Self {
            code: None,
            message,
        }
    }
}

impl From<LinkError> for ToolError {
    fn from(e: LinkError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// What one operation does with its arguments.
trait Tool: ToolArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError>;
}

/// Runs one operation by name.
pub async fn call(
    agent: &Agent,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Outcome, ToolError> {
    async fn run<T: Tool>(agent: &Agent, args: &Map<String, Value>) -> Result<Outcome, ToolError> {
        args::parse::<T>(args)?.run(agent).await
    }
    match name {
        SendArgs::NAME => run::<SendArgs>(agent, args).await,
        WhisperArgs::NAME => run::<WhisperArgs>(agent, args).await,
        ReadArgs::NAME => run::<ReadArgs>(agent, args).await,
        UnreadArgs::NAME => run::<UnreadArgs>(agent, args).await,
        ChannelsArgs::NAME => run::<ChannelsArgs>(agent, args).await,
        WhoArgs::NAME => run::<WhoArgs>(agent, args).await,
        JoinArgs::NAME => run::<JoinArgs>(agent, args).await,
        LeaveArgs::NAME => run::<LeaveArgs>(agent, args).await,
        StatusArgs::NAME => run::<StatusArgs>(agent, args).await,
        SearchArgs::NAME => run::<SearchArgs>(agent, args).await,
        ReactArgs::NAME => run::<ReactArgs>(agent, args).await,
        EditArgs::NAME => run::<EditArgs>(agent, args).await,
        other => Err(format!(
            "there is no tool `{other}`; the tools are send, whisper, read, unread, channels, who, join, leave, status, search, react, edit"
        )
        .into()),
    }
}

/// Whether a list of messages has a next page, and how to ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum More {
    No,
    /// `unread` has more: call it again (read positions advanced).
    Unread,
    /// Older messages remain: read again with `before`.
    Older {
        channel: String,
        before: u64,
    },
    /// Newer messages remain: read again with `since` (and the same `before`, if any).
    Newer {
        channel: String,
        since: u64,
        before: Option<u64>,
    },
}

impl More {
    fn to_json(&self) -> Value {
        match self {
            Self::No => Value::Null,
            Self::Unread => json!({}),
            Self::Older { before, .. } => json!({"before": before}),
            Self::Newer { since, before, .. } => json!({"since": since, "before": before}),
        }
    }

    /// The sentence that tells a model how to get the next page.
    fn to_text(&self) -> Option<String> {
        match self {
            Self::No => None,
            Self::Unread => Some("More remain: call unread() again.".into()),
            Self::Older { channel, before } => Some(format!(
                "Older messages remain: call read(channel=\"{channel}\", before={before}) for the page before these."
            )),
            Self::Newer {
                channel,
                since,
                before,
            } => {
                let before = before.map(|b| format!(", before={b}")).unwrap_or_default();
                Some(format!(
                    "Newer messages remain: call read(channel=\"{channel}\", since={since}{before}) for the next page."
                ))
            }
        }
    }
}

/// What an operation produced. Channels are named as the caller writes them: `general`, or `general@home` on a server
/// other than the default one.
#[derive(Debug)]
pub enum Outcome {
    Sent {
        channel: String,
        seq: u64,
    },
    Whispered {
        to: String,
    },
    /// An edit or reaction stored as event `seq`; `done` says which, in words.
    Changed {
        channel: String,
        target: u64,
        seq: u64,
        done: &'static str,
    },
    /// Each message with its channel's name.
    Messages {
        messages: Vec<(String, ChatMessage)>,
        more: More,
    },
    Channels(Vec<Value>),
    Who {
        channel: Option<String>,
        sessions: Vec<Value>,
        members: Vec<String>,
    },
    Joined {
        channel: String,
        last_seq: u64,
        unread: u64,
    },
    Left {
        channel: String,
    },
    Status(Value),
}

fn message_json((channel, m): &(String, ChatMessage)) -> Value {
    json!({"channel": channel, "seq": m.seq, "from": m.from.to_string(), "ts": m.ts, "text": m.text})
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Sent { channel, seq } => json!({"channel": channel, "seq": seq}),
            Self::Whispered { to } => json!({"to": to}),
            Self::Changed {
                channel,
                target,
                seq,
                ..
            } => json!({"channel": channel, "target": target, "seq": seq}),
            Self::Messages { messages, more } => json!({
                "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
                "more": *more != More::No,
                "next": more.to_json(),
            }),
            Self::Channels(list) => json!({"channels": list}),
            Self::Who {
                channel,
                sessions,
                members,
            } => {
                json!({"channel": channel, "sessions": sessions, "members": members})
            }
            Self::Joined {
                channel,
                last_seq,
                unread,
            } => json!({"channel": channel, "last_seq": last_seq, "unread": unread}),
            Self::Left { channel } => json!({"channel": channel}),
            Self::Status(value) => value.clone(),
        }
    }

    /// Text for a model. Message bodies are quoted as untrusted, like pushed ones.
    pub fn to_text(&self) -> String {
        match self {
            Self::Sent { channel, seq } => format!("Posted to #{channel} as message {seq}."),
            Self::Whispered { to } => format!("Whispered to {to}."),
            Self::Changed {
                channel,
                target,
                done,
                ..
            } => format!("{done} #{channel}:{target}."),
            Self::Messages { messages, more } => {
                if messages.is_empty() {
                    return "No messages.".into();
                }
                let mut out = String::from(
                    "Messages (untrusted content from other participants, quoted with |):\n",
                );
                for (channel, m) in messages {
                    out.push_str(&format!(
                        "#{} seq {} from {}:\n{}\n",
                        channel,
                        m.seq,
                        m.from,
                        quote_untrusted(&m.text)
                    ));
                }
                if let Some(next) = more.to_text() {
                    out.push_str(&next);
                    out.push('\n');
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

/// Refuses a message the server would refuse as too large, saying the limit in words.
pub fn check_size(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "The message is {} bytes; messages are limited to {} KiB ({MAX_TEXT_BYTES} bytes of \
             UTF-8). Shorten it or split it into several messages.",
            text.len(),
            MAX_TEXT_BYTES / 1024
        ));
    }
    Ok(())
}

/// Checks that a channel not joined exists (among those this user may see), so a send to a
/// misspelt channel says so instead of citing autonomy.
async fn exists(agent: &Agent, place: &Place) -> Result<(), String> {
    if agent.marks().iter().any(|(joined, _, _)| joined == place) {
        return Ok(());
    }
    let list = agent
        .conn(place.server)
        .link
        .list_channels()
        .await
        .map_err(|e| e.to_string())?;
    if list.iter().any(|c| c.name == place.channel) {
        Ok(())
    } else {
        Err(format!(
            "there is no channel #{}; `channels` lists those you can see",
            agent.label(place)
        ))
    }
}

/// How to ask for the page after this one: a page read back from the newest (or from
/// `before`) continues with older messages; one read forward from `since` with newer ones.
fn next_page(
    channel: &str,
    since: Option<u64>,
    before: Option<u64>,
    page: &[ChatMessage],
    more: bool,
) -> More {
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return More::No;
    };
    match (more, since) {
        (false, _) => More::No,
        (true, None) => More::Older {
            channel: channel.to_owned(),
            before: first.seq,
        },
        (true, Some(_)) => More::Newer {
            channel: channel.to_owned(),
            since: last.seq,
            before,
        },
    }
}

/// The error of a post the server refused with `floor_closed`, in words a model acts on:
/// what happened, not to retry, what ends the wait; then the server's own line.
pub fn floor_closed(channel: &str, server: &str) -> String {
    format!(
        "Not posted: #{channel} is waiting for a person. Do not retry or rephrase: conclave \
         refuses agent messages there until a person posts (in a channel that answers mentions \
         only, until someone mentions you or a person gives you the floor). Other agents' \
         messages there are held from you until then; the next person's message is pushed to \
         you as usual. The server said: {server}"
    )
}

impl Tool for SendArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let Self {
            channel,
            text,
            reply_to,
        } = self;
        check_size(&text)?;
        let place = agent.resolve(&channel)?;
        let channel = agent.label(&place);
        exists(agent, &place).await?;
        agent.may_reply(agent.level(&place.channel), &format!("#{channel}"))?;
        let link = &agent.conn(place.server).link;
        match link.reply(&place.channel, &text, reply_to).await {
            Ok(receipt) => {
                agent.update_floor(&place, Floor::open);
                Ok(Outcome::Sent {
                    channel,
                    seq: receipt.seq,
                })
            }
            Err(e) if e.code() == Some(ErrorCode::FloorClosed) => {
                agent.update_floor(&place, Floor::close);
                Err(ToolError {
                    code: e.code(),
                    message: floor_closed(&channel, &e.to_string()),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Tool for WhisperArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let Self { to, text } = self;
        check_size(&text)?;
        let server = agent.server_named(to.server.as_deref())?;
        let shown = agent.origin(server).session(&to.path);
        let level = agent.whisper_level(server, &to.path).await;
        agent.may_reply(level, &format!("whispers to {shown}"))?;
        agent.conn(server).link.whisper(&to.path, &text).await?;
        Ok(Outcome::Whispered { to: shown })
    }
}

impl Tool for ReadArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let Self {
            channel,
            since,
            before,
            limit,
        } = self;
        let place = agent.resolve(&channel)?;
        let channel = agent.label(&place);
        agent.may_read(&place.channel)?;
        let limit = limit.map_or(READ_DEFAULT, |l| {
            l.clamp(1, u64::from(MAX_HISTORY_PAGE)) as u32
        });
        let link = &agent.conn(place.server).link;
        let page = link.history(&place.channel, since, before, limit).await?;
        let more = next_page(&channel, since, before, &page.messages, page.more);
        Ok(Outcome::Messages {
            messages: labelled(&channel, page.messages),
            more,
        })
    }
}

impl Tool for UnreadArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        unread(agent).await
    }
}

impl Tool for ChannelsArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let joined: Vec<Place> = agent.marks().into_iter().map(|(p, _, _)| p).collect();
        let mut channels = Vec::new();
        for server in 0..agent.servers.len() {
            let list = agent.conn(server).link.list_channels().await?;
            channels.extend(list.iter().map(|c| {
                let place = Place {
                    server,
                    channel: c.name.clone(),
                };
                json!({
                    "channel": agent.label(&place),
                    "visibility": c.visibility,
                    "joined": joined.contains(&place),
                    "messages": c.last_seq,
                    "autonomy": agent.level(&c.name),
                })
            }));
        }
        Ok(Outcome::Channels(channels))
    }
}

impl Tool for WhoArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let place = self.channel.map(|c| agent.resolve(&c)).transpose()?;
        // One channel's server, or every server.
        let servers = match &place {
            Some(place) => vec![place.server],
            None => (0..agent.servers.len()).collect(),
        };
        let (mut sessions, mut members) = (Vec::new(), Vec::new());
        for server in servers {
            let channel = place.as_ref().map(|p| &p.channel);
            let report = agent.conn(server).link.who(channel).await?;
            let origin = agent.origin(server);
            sessions.extend(
                report
                    .sessions
                    .iter()
                    .map(|s| json!({"path": origin.session(&s.path), "kind": s.kind})),
            );
            members.extend(report.members.iter().map(ToString::to_string));
        }
        Ok(Outcome::Who {
            channel: place.map(|p| agent.label(&p)),
            sessions,
            members,
        })
    }
}

impl Tool for JoinArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let place = agent.resolve(&self.channel)?;
        let (read_seq, last_seq) = agent.join(&place).await?;
        Ok(Outcome::Joined {
            channel: agent.label(&place),
            last_seq,
            unread: last_seq.saturating_sub(read_seq),
        })
    }
}

impl Tool for LeaveArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let place = agent.resolve(&self.channel)?;
        agent.leave(&place).await?;
        Ok(Outcome::Left {
            channel: agent.label(&place),
        })
    }
}

impl Tool for SearchArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        let Self {
            query,
            channel,
            from,
            limit,
        } = self;
        let limit = limit.map_or(READ_DEFAULT, |l| {
            l.clamp(1, u64::from(MAX_SEARCH_PAGE)) as u32
        });
        let place = channel.map(|c| agent.resolve(&c)).transpose()?;
        if let Some(place) = &place {
            agent.may_read(&place.channel)?;
        }
        // One channel's server, or every server; the newest hits of all, together.
        let servers = match &place {
            Some(place) => vec![place.server],
            None => (0..agent.servers.len()).collect(),
        };
        let mut found = Vec::new();
        for server in servers {
            let request = SearchRequest {
                query: query.clone(),
                channel: place.as_ref().map(|p| p.channel.clone()),
                from: from.clone(),
                limit,
                ..SearchRequest::default()
            };
            let (hits, _) = agent.conn(server).link.search(request).await?;
            let origin = agent.origin(server);
            found.extend(
                hits.into_iter()
                    // Muted channels' text never reaches a model, found or pushed.
                    .filter(|h| agent.may_read(&h.channel).is_ok())
                    .map(|h| {
                        let message = ChatMessage {
                            channel: h.channel,
                            seq: h.seq,
                            ts: h.ts,
                            from: h.from,
                            from_kind: h.from_kind,
                            text: h.text,
                            reply_to: None,
                            change: None,
                            edited: None,
                            deleted: false,
                            reactions: Vec::new(),
                        };
                        (origin.channel(&message.channel), message)
                    }),
            );
        }
        found.sort_by_key(|(_, m)| std::cmp::Reverse(m.ts));
        found.truncate(limit as usize);
        Ok(Outcome::Messages {
            messages: found,
            more: More::No,
        })
    }
}

impl Tool for StatusArgs {
    async fn run(self, agent: &Agent) -> Result<Outcome, ToolError> {
        status(agent, self.channel).await.map(Outcome::Status)
    }
}

/// Messages after this session's read positions, oldest channel first, at most a page; the
/// positions advance on the server so the next call continues where this one stopped.
async fn unread(agent: &Agent) -> Result<Outcome, ToolError> {
    let mut out = Vec::new();
    let mut more = false;
    for (place, read_seq, last_seq) in agent.marks() {
        if read_seq >= last_seq || agent.may_read(&place.channel).is_err() {
            continue;
        }
        let budget = UNREAD_PAGE.saturating_sub(out.len() as u32);
        if budget == 0 {
            more = true;
            break;
        }
        let conn = agent.conn(place.server);
        let page = conn
            .link
            .history(&place.channel, Some(read_seq), None, budget)
            .await?;
        let Some(newest) = page.messages.last().map(|m| m.seq) else {
            // Purged by retention: nothing left to read there.
            agent.set_read(&place, last_seq);
            continue;
        };
        conn.link.mark_read(&place.channel, newest).await?;
        agent.set_read(&place, newest);
        more |= page.more;
        // Its own messages are not news to the agent.
        let news = page.messages.into_iter().filter(|m| m.from != conn.me);
        out.extend(labelled(&agent.label(&place), news));
    }
    Ok(Outcome::Messages {
        messages: out,
        more: if more { More::Unread } else { More::No },
    })
}

/// Messages of one channel, each with the channel's name as the caller writes it.
fn labelled(
    channel: &str,
    messages: impl IntoIterator<Item = ChatMessage>,
) -> Vec<(String, ChatMessage)> {
    messages
        .into_iter()
        .map(|m| (channel.to_owned(), m))
        .collect()
}

mod changes;
mod status;
#[cfg(test)]
mod tests;

use status::status;
