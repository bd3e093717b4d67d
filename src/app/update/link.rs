//! Link events: connection state, messages, whispers, presence and my agents' relays.

use crate::app::model::{
    AgentInfo, App, Approval, Connection, DEFAULT_REQUEST_TTL_MS, Delivery, Entry, EntryKind,
    RoomId,
};
use crate::app::settings::{Action, BellMode};
use crate::app::text::mentions;
use crate::net::link::LinkEvent;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Audience, Change, ChatMessage, PresenceChange, RelayBody, SessionKind};

use super::moderation::on_moderation;
use super::{Cmd, Listing, note, room_for};

pub(super) fn on_link(app: &mut App, event: LinkEvent) -> Vec<Cmd> {
    match event {
        LinkEvent::Moderation(event) => on_moderation(app, event),
        // A direct conversation someone opened with me: it joins the sidebar.
        LinkEvent::Opened(info) => vec![Cmd::Join {
            channel: info.name,
            invite: None,
        }],
        LinkEvent::Connected { path, .. } => {
            app.srv_mut().connection = Connection::Connected;
            let first = !app.srv().was_connected;
            app.srv_mut().was_connected = true;
            note(
                app,
                0,
                EntryKind::Note,
                format!("connected to {} as {path}", app.srv().server),
            );
            if let Some((_, from_user)) = app.claiming.take() {
                let how = if from_user {
                    String::new()
                } else {
                    " ($USER is not set, so this name was picked for you)".to_owned()
                };
                let text = format!("registered as `{}` on {}{how}", path.user, app.srv().server);
                note(app, 0, EntryKind::Note, text);
            }
            app.srv_mut().me = Some(path);
            let mut cmds = vec![Cmd::Relay {
                to: None,
                audience: Audience::Agents,
                body: RelayBody::AutonomyQuery,
            }];
            if first {
                app.srv_mut().channels_listed_at = Some(app.now_ms);
                cmds.push(Cmd::ListChannels(Listing::Startup));
            } else {
                // A restarted server forgot who was here and sends no presence for sessions
                // that came back before this one did: ask again. The link re-joins first (its
                // re-joins go out before anything asked after `Connected`), so the answer is
                // current and later arrivals come as presence.
                cmds.extend(
                    app.rooms
                        .iter()
                        .filter(|r| r.closed.is_none())
                        .filter_map(|r| r.channel())
                        .map(|c| Cmd::Who {
                            channel: Some(c.clone()),
                            show: false,
                        }),
                );
            }
            cmds
        }
        LinkEvent::Disconnected { reason, retry_in } => {
            let until_ms = app.now_ms + retry_in.as_millis() as i64;
            app.srv_mut().connection = Connection::Reconnecting { reason, until_ms };
            Vec::new()
        }
        LinkEvent::Closed { reason } if !app.srv().was_connected && reason.contains("is taken") => {
            // The name zero set-up claimed belongs to someone else: ask for another here.
            let taken = app.claiming.take().map(|(name, _)| name);
            let text = match &taken {
                Some(name) => format!(
                    "the user name `{name}` is taken on {}: type another name below and press Enter",
                    app.srv().server
                ),
                None => format!("{reason}: type another user name below and press Enter"),
            };
            note(app, 0, EntryKind::Error, text);
            app.name_taken = Some(taken.map(|n| n.to_string()).unwrap_or_default());
            app.srv_mut().connection = Connection::Offline(reason);
            Vec::new()
        }
        LinkEvent::Closed { reason } => {
            note(app, 0, EntryKind::Error, format!("offline: {reason}"));
            app.srv_mut().connection = Connection::Offline(reason);
            Vec::new()
        }
        LinkEvent::Message(message) => on_message(app, message),
        LinkEvent::Whisper(w) => {
            let room = room_for(app, RoomId::Whisper(w.from.clone()));
            app.rooms[room].entries.push_back(Entry {
                seq: None,
                ts: w.ts,
                from: Some(w.from),
                text: w.text,
                kind: EntryKind::Whisper { outgoing: false },
                mention: true,
                delivery: Delivery::Done,
                reply_to: None,
                height: Default::default(),
                edited: false,
                deleted: false,
                reactions: Vec::new(),
            });
            app.rooms[room].trim_oldest();
            arrived(app, room, true, None)
        }
        LinkEvent::Presence(p) => {
            if matches!(p.change, PresenceChange::Offline | PresenceChange::Left) {
                // An agent that went away no longer has levels to show.
                app.agents.remove(&p.session.path);
            }
            let Some(room) = app.room_index(&RoomId::Channel(p.channel.clone())) else {
                return Vec::new();
            };
            let r = &mut app.rooms[room];
            r.online.retain(|s| s.path != p.session.path);
            match p.change {
                PresenceChange::Joined | PresenceChange::Online => r.online.push(p.session.clone()),
                PresenceChange::Left | PresenceChange::Offline => {}
            }
            r.online.sort_by(|a, b| a.path.cmp(&b.path));
            if p.change == PresenceChange::Joined && !r.members.contains(&p.session.path.user) {
                r.members.push(p.session.path.user.clone());
                r.members.sort();
            }
            let what = match p.change {
                PresenceChange::Joined => Some("joined"),
                PresenceChange::Left => Some("left"),
                PresenceChange::Online | PresenceChange::Offline => None,
            };
            if let Some(what) = what {
                note(
                    app,
                    room,
                    EntryKind::Note,
                    format!("{} {what}", p.session.path),
                );
            }
            Vec::new()
        }
        LinkEvent::Relay {
            from,
            from_kind,
            body,
        } => on_relay(app, from, from_kind, body),
        LinkEvent::ChannelLost { channel, reason } => {
            let room = room_for(app, RoomId::Channel(channel.clone()));
            app.rooms[room].closed = Some(reason.clone());
            note(
                app,
                room,
                EntryKind::Error,
                format!("lost #{channel}: {reason}"),
            );
            Vec::new()
        }
    }
}

fn on_message(app: &mut App, message: ChatMessage) -> Vec<Cmd> {
    if let Some(change) = message.change.clone() {
        on_change(app, &message, &change);
        return Vec::new();
    }
    let room = room_for(app, RoomId::Channel(message.channel.clone()));
    let mine = app.srv().me.as_ref() == Some(&message.from);
    let mention = !mine
        && app
            .srv()
            .me
            .as_ref()
            .is_some_and(|me| mentions(&message.text, me.user.as_str()));
    let channel = message.channel.clone();
    let text = message.text.clone();
    let reply_to = message.reply_to;
    let entry = Entry::message(message, mention);
    // A reply also joins its thread, if that is open.
    if let Some(root) = reply_to
        && let Some(thread) = app.room_index(&RoomId::Thread(channel.clone(), root))
    {
        app.rooms[thread].insert_message(entry.clone());
    }
    let inserted = app.rooms[room].insert_message(entry);
    if !inserted {
        return Vec::new();
    }
    if mine {
        // The echo of something I typed can beat its acknowledgement: it takes the place of
        // the oldest pending entry with the same text.
        let r = &mut app.rooms[room];
        if let Some(index) = r
            .entries
            .iter()
            .position(|e| e.delivery != Delivery::Done && e.text == text)
        {
            r.entries.remove(index);
        }
        return Vec::new();
    }
    app.rooms[room].trim_oldest();
    arrived(app, room, mention, Some(&channel))
}

/// An edit, delete or reaction: applied where its message is loaded (its channel, and the
/// thread it belongs to), counted as nothing unread.
fn on_change(app: &mut App, message: &ChatMessage, change: &Change) {
    let room = room_for(app, RoomId::Channel(message.channel.clone()));
    app.rooms[room].apply_change(message, change);
    for r in &mut app.rooms {
        if matches!(&r.id, RoomId::Thread(channel, _) if *channel == message.channel) {
            r.apply_change(message, change);
        }
    }
}

/// Bookkeeping for a new message in `room`: unread counts, "new below", the bell.
pub(super) fn arrived(
    app: &mut App,
    room: usize,
    mention: bool,
    channel: Option<&Name>,
) -> Vec<Cmd> {
    let shown = app.panes.iter().any(|p| p.room == room);
    for pane in app
        .panes
        .iter_mut()
        .filter(|p| p.room == room && p.scroll > 0)
    {
        pane.unseen += 1;
    }
    if !shown {
        let r = &mut app.rooms[room];
        r.unread += 1;
        if mention {
            r.mentions += 1;
        }
    }
    let bell = match channel {
        Some(channel) => app.settings.bell(channel.as_str()),
        None => BellMode::Mentions,
    };
    let ring = match bell {
        BellMode::All => true,
        BellMode::Mentions => mention,
        BellMode::None => false,
    };
    if ring { vec![Cmd::Bell] } else { Vec::new() }
}

fn on_relay(app: &mut App, from: SessionPath, from_kind: SessionKind, body: RelayBody) -> Vec<Cmd> {
    // The server relays only between my own sessions; an agent's report or request is mine.
    if from_kind != SessionKind::Agent {
        return Vec::new();
    }
    match body {
        RelayBody::PermissionRequest {
            request_id,
            tool_name,
            description,
            input_preview,
            expires_in_ms,
        } => {
            let ttl = match i64::try_from(expires_in_ms) {
                Ok(0) | Err(_) => DEFAULT_REQUEST_TTL_MS,
                Ok(ms) => ms,
            };
            let expires = app.now_ms.saturating_add(ttl);
            // Offered again when this session connects: known already, only its time moves.
            if let Some(known) = app
                .approvals
                .iter_mut()
                .find(|a| a.agent == from && a.request_id == request_id)
            {
                known.expires = expires;
                return Vec::new();
            }
            let keys = &app.settings.keymap;
            let text = format!(
                "{from} asks to use {tool_name}: {description} ({} to review, {} allow, {} deny)",
                keys.key(Action::Agents),
                keys.key(Action::Allow),
                keys.key(Action::Deny),
            );
            note(app, 0, EntryKind::Note, text);
            app.approvals.push(Approval {
                agent: from,
                request_id,
                tool_name,
                description,
                input_preview,
                received: app.now_ms,
                expires,
                sent: None,
                answer: None,
            });
            vec![Cmd::Bell]
        }
        RelayBody::PermissionAnswered {
            request_id,
            allow,
            by,
        } => {
            let now = app.now_ms;
            if let Some(a) = app
                .approvals
                .iter_mut()
                .find(|a| a.agent == from && a.request_id == request_id)
            {
                a.answer = Some((allow, by, now));
            }
            Vec::new()
        }
        RelayBody::AutonomyReport {
            levels,
            default,
            not_applicable,
        } => {
            let levels = levels.into_iter().map(|l| (l.channel, l.level)).collect();
            let info = AgentInfo {
                levels,
                default,
                applies: !not_applicable,
            };
            app.agents.insert(from, info);
            Vec::new()
        }
        RelayBody::PermissionVerdict { .. }
        | RelayBody::SetAutonomy { .. }
        | RelayBody::AutonomyQuery => Vec::new(),
    }
}
