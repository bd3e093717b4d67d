//! Governance as the rooms show it: a line in the room for each moderation act (and what the
//! act changes: the topic, the name, archived, members; a room this session was removed from
//! is closed but keeps its history), a channel's topic and state from the server's answers,
//! invite tokens, and the audit view (a room of its own, oldest at the top, paged back with
//! PgUp like history).

use crate::app::model::{App, Delivery, Entry, EntryKind, RoomId};
use crate::net::names::Name;
use crate::net::protocol::{
    AuditEntry, ChannelAct, ChannelInfo, KickTarget, ModerationEvent, remaining_in_words,
};

use super::govern::NOT_HERE;
use super::link::arrived;
use super::{AuditPage, Cmd, close_room, note, note_at, open_room, room_for};

/// A moderation act in a channel this session receives, or one that removed it from it.
pub(super) fn on_moderation(app: &mut App, event: ModerationEvent) -> Vec<Cmd> {
    let Some(room) = app.room_index(&RoomId::Channel(event.channel.clone())) else {
        return Vec::new();
    };
    let line = match &event.reason {
        Some(reason) => format!("{} {} ({reason})", event.by, event.act),
        None => format!("{} {}", event.by, event.act),
    };
    note_at(app, room, EntryKind::Note, event.ts, line.clone());
    if let Some(audit) = app.room_index(&RoomId::Audit(event.channel.clone())) {
        note_at(app, audit, EntryKind::Note, event.ts, line.clone());
    }
    let removed = app.srv().me.as_ref().is_some_and(|me| event.removes(me));
    let r = &mut app.rooms[room];
    match &event.act {
        ChannelAct::Topic { topic } => r.topic = topic.clone(),
        ChannelAct::Archive => r.archived = true,
        ChannelAct::Unarchive => r.archived = false,
        ChannelAct::Kick {
            target: KickTarget::User(user),
            ..
        }
        | ChannelAct::Ban { user, .. } => {
            r.online.retain(|s| &s.path.user != user);
            r.members.retain(|m| m != user);
        }
        ChannelAct::Kick {
            target: KickTarget::Session(path),
            ..
        } => r.online.retain(|s| &s.path != path),
        ChannelAct::Rename { name } => rename(app, &event.channel, name),
        ChannelAct::Pin { .. } | ChannelAct::Unpin { .. } => {
            return vec![Cmd::Describe(event.channel.clone())];
        }
        _ => {}
    }
    if !removed {
        return Vec::new();
    }
    // The link no longer receives the channel; the room stays, closed, with its history.
    let r = &mut app.rooms[room];
    r.closed = Some(line);
    r.online.clear();
    r.loading = false;
    let channel = &event.channel;
    let text = format!(
        "you are no longer in #{channel}; its history stays here (/leave closes this room)"
    );
    note_at(app, room, EntryKind::Note, event.ts, text);
    arrived(app, room, true, None)
}

/// A renamed channel keeps its room, its audit view and its bell under the new name.
fn rename(app: &mut App, old: &Name, new: &Name) {
    for (from, to) in [
        (RoomId::Channel(old.clone()), RoomId::Channel(new.clone())),
        (RoomId::Audit(old.clone()), RoomId::Audit(new.clone())),
    ] {
        if let Some(room) = app.room_index(&from) {
            app.rooms[room].id = to;
        }
    }
    for known in app
        .srv_mut()
        .known_channels
        .iter_mut()
        .filter(|c| *c == old)
    {
        *known = new.clone();
    }
    if let Some(bell) = app.settings.bells.remove(old.as_str()) {
        app.settings.bells.insert(new.to_string(), bell);
    }
}

/// The topic and state a listing or a join tells of a channel, into its room if it has one.
pub(super) fn apply_info(app: &mut App, info: &ChannelInfo) {
    if let Some(room) = app.room_index(&RoomId::Channel(info.name.clone())) {
        let r = &mut app.rooms[room];
        r.topic.clone_from(&info.topic);
        r.archived = info.archived;
    }
}

/// `/topic` with nothing after it: says the focused channel's topic.
pub(super) fn show_topic(app: &mut App) -> Result<Vec<Cmd>, String> {
    let channel = app.focused_room().about().cloned().ok_or(NOT_HERE)?;
    let topic = app
        .room_index(&RoomId::Channel(channel.clone()))
        .map(|room| app.rooms[room].topic.clone())
        .unwrap_or_default();
    let text = if topic.is_empty() {
        format!("#{channel} has no topic; /topic TEXT sets one")
    } else {
        format!("the topic of #{channel}: {topic}")
    };
    let room = app.focused_pane().room;
    note(app, room, EntryKind::Note, text);
    Ok(Vec::new())
}

/// An invite token from `/invite`, with the command that uses it.
pub(super) fn on_invite(app: &mut App, channel: Name, token: String, uses: u32, expires: i64) {
    let room = app
        .room_index(&RoomId::Channel(channel.clone()))
        .unwrap_or(app.focused_pane().room);
    let uses = match uses {
        1 => "1 use".to_owned(),
        n => format!("{n} uses"),
    };
    let text = format!(
        "invite to #{channel} ({uses}, valid {}): whoever has it types /join #{channel} {token}",
        remaining_in_words(expires, app.now_ms)
    );
    note(app, room, EntryKind::Note, text);
}

/// `/audit`: the channel's audit log in a room of its own, loaded afresh.
pub(super) fn audit(app: &mut App, channel: Name) -> Vec<Cmd> {
    let room = room_for(app, RoomId::Audit(channel.clone()));
    let r = &mut app.rooms[room];
    r.entries.clear();
    r.older_exhausted = false;
    r.read_seq = 0;
    r.last_seq = 0;
    r.loading = true;
    open_room(app, room);
    vec![Cmd::Audit {
        channel,
        before: None,
    }]
}

/// A page of the audit log (newest first), or why there is none.
pub(super) fn on_audit(app: &mut App, channel: Name, older: bool, page: Result<AuditPage, String>) {
    let Some(room) = app.room_index(&RoomId::Audit(channel.clone())) else {
        return;
    };
    let r = &mut app.rooms[room];
    r.loading = false;
    let page = match page {
        Ok(page) => page,
        Err(e) => {
            // Asking again by scrolling would only fail again: `/audit` retries.
            r.older_exhausted = true;
            let text = format!("cannot read the audit log of #{channel}: {e}");
            note(app, room, EntryKind::Error, text);
            return;
        }
    };
    if !page.more || (older && page.entries.is_empty()) {
        r.older_exhausted = true;
    }
    for entry in page.entries {
        r.insert_message(Entry {
            seq: Some(entry.id),
            ts: entry.ts,
            from: Some(entry.by.clone()),
            text: audit_line(&entry),
            kind: EntryKind::Note,
            mention: false,
            delivery: Delivery::Done,
            reply_to: None,
            height: Default::default(),
            edited: false,
            deleted: false,
            reactions: Vec::new(),
        });
    }
    // Entry ids are not messages: nothing here is unread.
    r.read_seq = r.last_seq;
}

/// One audit entry as a line: who did what, and why.
fn audit_line(entry: &AuditEntry) -> String {
    let what = if entry.detail.is_empty() {
        let target = entry.target.as_deref().unwrap_or_default();
        format!("{} {target}", entry.action).trim_end().to_owned()
    } else {
        entry.detail.clone()
    };
    match &entry.reason {
        Some(reason) => format!("{} {what} ({reason})", entry.by),
        None => format!("{} {what}", entry.by),
    }
}

/// Esc in an audit view: back to its channel, in the same pane.
pub(super) fn close_audit(app: &mut App) {
    let RoomId::Audit(channel) = app.focused_room().id.clone() else {
        return;
    };
    let room = app.focused_pane().room;
    close_room(app, room);
    if let Some(back) = app.room_index(&RoomId::Channel(channel)) {
        open_room(app, back);
    }
}
