//! JSON lines: the agent for any program. One command per stdin line,
//! `{"cmd": "send", "channel": "general", "text": "hi", "id": 1}`, answered by one line
//! `{"id": 1, "ok": true, ...}` or `{"id": 1, "ok": false, "error": "...", "code": "..."}`
//! (`code` when the server refused: `floor_closed`, `rate_limited`, `forbidden`, ...); events
//! arrive as lines with an `event` key. Commands are the agent's tools (`send`, `whisper`,
//! `read`, `unread`, `channels`, `who`, `join`, `leave`, `status`). Autonomy does not apply
//! here: the program acts as its user. The channel brakes do: after a `floor_closed` refusal,
//! other agents' messages in that channel are not sent as events until a person posts there
//! (they stay unread). Exits when stdin closes.

use std::sync::Arc;

use color_eyre::eyre::Result;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::net::link::LinkEvent;
use crate::net::protocol::Change;

use super::core::Inbound;
use super::{Agent, Effect, tools};

/// Serves JSON lines on stdio until stdin closes.
pub async fn serve(
    agent: Arc<Agent>,
    mut events: mpsc::Receiver<(usize, LinkEvent)>,
) -> Result<()> {
    let (out_tx, mut out_rx) = mpsc::channel::<Value>(1024);
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(value) = out_rx.recv().await {
            let line = format!("{value}\n");
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });

    let event_out = out_tx.clone();
    let event_agent = agent.clone();
    let pump = tokio::spawn(async move {
        while let Some((server, event)) = events.recv().await {
            if let Some(value) = event_json(&event_agent, server, event) {
                if event_out.send(value).await.is_err() {
                    break;
                }
            }
        }
    });

    let default = agent.default_conn();
    let servers: Vec<Value> = agent
        .servers
        .iter()
        .map(|c| json!({"server": c.alias, "url": c.url, "path": c.me.to_string()}))
        .collect();
    let ready = json!({"event": "ready", "path": default.me.to_string(), "server": default.alias, "servers": servers});
    let _ = out_tx.send(ready).await;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let reply = answer(&agent, &line).await;
        if out_tx.send(reply).await.is_err() {
            break;
        }
    }
    pump.abort();
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// Runs one command line and builds its reply.
async fn answer(agent: &Agent, line: &str) -> Value {
    let mut command: Map<String, Value> = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return json!({"ok": false, "error": "each line must be a JSON object with a `cmd`"});
        }
        Err(e) => return json!({"ok": false, "error": format!("not JSON: {e}")}),
    };
    // What remains once `id` and `cmd` are taken out are the tool's arguments.
    let id = command.remove("id").unwrap_or(Value::Null);
    let Some(Value::String(cmd)) = command.remove("cmd") else {
        return json!({"id": id, "ok": false, "error": "missing `cmd`"});
    };
    match tools::call(agent, &cmd, &command).await {
        Ok(outcome) => {
            let mut reply = json!({"id": id, "ok": true});
            if let (Value::Object(reply), Value::Object(fields)) = (&mut reply, outcome.to_json()) {
                reply.extend(fields);
            }
            reply
        }
        Err(error) => {
            let mut reply = json!({"id": id, "ok": false, "error": error.message});
            if let Some(code) = error.code {
                reply["code"] = json!(code);
            }
            reply
        }
    }
}

/// An event of server `server` as a JSON line; channels are named as tools take them, and
/// `server` names the server.
fn event_json(agent: &Arc<Agent>, server: usize, event: LinkEvent) -> Option<Value> {
    let origin = agent.origin(server);
    let status = match &event {
        LinkEvent::Presence(p) => Some(json!({
            "event": "presence",
            "channel": origin.channel(&p.channel),
            "path": p.session.path.to_string(),
            "kind": p.session.kind,
            "change": p.change,
        })),
        LinkEvent::Connected { path, .. } => {
            Some(json!({"event": "connected", "path": path.to_string()}))
        }
        LinkEvent::Disconnected { reason, retry_in } => Some(json!({
            "event": "disconnected", "reason": reason, "retry_in_ms": retry_in.as_millis() as u64,
        })),
        LinkEvent::Closed { reason } => Some(json!({"event": "closed", "reason": reason})),
        // A program acting as its user hears of a new direct conversation and may join it.
        LinkEvent::Opened(info) => Some(json!({
            "event": "opened",
            "channel": origin.channel(&info.name),
        })),
        LinkEvent::Moderation(m) => Some(json!({
            "event": "moderation",
            "channel": origin.channel(&m.channel),
            "by": m.by.to_string(),
            "act": m.act,
            "text": m.act.to_string(),
            "reason": m.reason,
            "ts": m.ts,
            "removed": m.removes(&agent.conn(server).me),
        })),
        _ => None,
    };
    let status = status.map(|mut value| {
        value["server"] = json!(origin.alias);
        value
    });
    match agent.on_event(server, event) {
        Effect::Deliver(origin, Inbound::Message { message, .. }) => {
            let mut event = json!({
                "event": "message",
                "server": origin.alias,
                "channel": origin.channel(&message.channel),
                "seq": message.seq,
                "from": message.from.to_string(),
                "ts": message.ts,
                "text": message.text,
            });
            if let Some(reply_to) = message.reply_to {
                event["reply_to"] = reply_to.into();
            }
            match message.change {
                Some(Change::Edit { target }) => event["edited"] = target.into(),
                Some(Change::Delete { target }) => event["deleted"] = target.into(),
                Some(Change::React { target, removed }) => {
                    event["reacted"] = target.into();
                    event["removed"] = removed.into();
                }
                None => {}
            }
            Some(event)
        }
        Effect::Deliver(origin, Inbound::Whisper { whisper, .. }) => Some(json!({
            "event": "whisper",
            "server": origin.alias,
            "from": origin.session(&whisper.from),
            "to": whisper.to.to_string(),
            "ts": whisper.ts,
            "text": whisper.text,
        })),
        // Resolve only arises when a model reads (autonomy gating); never here.
        Effect::Deliver(_, Inbound::Held { .. } | Inbound::Notice { .. })
        | Effect::Resolve(..)
        | Effect::Verdict { .. }
        | Effect::None => status,
    }
}
