//! Answers to the `Cmd`s the event loop carried out.

use crate::app::model::{App, Delivery, Entry, EntryKind, RoomId};
use crate::app::text::mentions;

use super::commands::post;
use super::moderation::{apply_info, on_audit, on_invite};
use super::{Cmd, Listing, Reply, close_room, error, note, open_room, room_for};
use crate::net::protocol::{ChannelInfo, SearchHit, SessionInfo, SessionKind};

pub(super) fn on_reply(app: &mut App, reply: Reply) -> Vec<Cmd> {
    match reply {
        Reply::Channels { list, why } => {
            app.srv_mut().known_channels = list.iter().map(|c| c.name.clone()).collect();
            for info in &list {
                apply_info(app, info);
            }
            match why {
                Listing::Startup => list
                    .into_iter()
                    .filter(|c| c.member)
                    .map(|c| Cmd::Join {
                        channel: c.name,
                        invite: None,
                    })
                    .collect(),
                Listing::Show => {
                    show_channels(app, &list);
                    Vec::new()
                }
                Listing::Refresh => Vec::new(),
            }
        }
        Reply::UserSessions {
            user,
            sessions,
            text,
        } => {
            let theirs: Vec<&SessionInfo> =
                sessions.iter().filter(|s| s.path.user == user).collect();
            let people: Vec<&SessionInfo> = theirs
                .iter()
                .copied()
                .filter(|s| s.kind == SessionKind::Human)
                .collect();
            let list = |of: &[&SessionInfo]| {
                of.iter()
                    .map(|s| s.path.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match (people.as_slice(), theirs.as_slice()) {
                ([one], _) => {
                    let room = room_for(app, RoomId::Whisper(one.path.clone()));
                    open_room(app, room);
                    match text {
                        Some(text) => post(app, room, text),
                        None => Vec::new(),
                    }
                }
                ([], []) => {
                    error(app, format!("{user} is not online"));
                    Vec::new()
                }
                ([], agents) => {
                    error(
                        app,
                        format!(
                            "{user} has no person online, only: {}; /msg one of them",
                            list(agents)
                        ),
                    );
                    Vec::new()
                }
                (many, _) => {
                    error(
                        app,
                        format!("{user} is online at {}; /msg one of them", list(many)),
                    );
                    Vec::new()
                }
            }
        }
        Reply::Joined(receipt) => {
            let name = receipt.channel.name.clone();
            if !app.srv().known_channels.contains(&name) {
                app.srv_mut().known_channels.push(name.clone());
            }
            let room = room_for(app, RoomId::Channel(name.clone()));
            apply_info(app, &receipt.channel);
            let r = &mut app.rooms[room];
            r.closed = None;
            r.read_seq = receipt.read_seq;
            r.last_seq = r.last_seq.max(receipt.channel.last_seq);
            r.unread = r.last_seq.saturating_sub(r.read_seq) as usize;
            r.loading = true;
            // A channel the person asked for comes into view (so does any, over the status room).
            let asked = app.focus_on_join.as_ref() == Some(&name);
            if asked || app.focused_room().id == RoomId::Home {
                if asked {
                    app.focus_on_join = None;
                }
                open_room(app, room);
            }
            vec![
                Cmd::History {
                    channel: name.clone(),
                    before: None,
                    after: None,
                },
                Cmd::Describe(name.clone()),
                Cmd::Who {
                    channel: Some(name),
                    show: false,
                },
            ]
        }
        Reply::History {
            channel,
            page,
            older,
        } => {
            let room = room_for(app, RoomId::Channel(channel));
            fill(app, room, page.messages);
            let r = &mut app.rooms[room];
            if older && !page.more {
                r.older_exhausted = true;
            }
            if older {
                r.trim_newest();
            } else {
                r.trim_oldest();
                if r.oldest_seq().is_none_or(|s| s <= 1) {
                    r.older_exhausted = true;
                }
            }
            if app.room_in_view(room) {
                let r = &mut app.rooms[room];
                r.marker = (r.read_seq < r.last_seq).then_some(r.read_seq);
                r.unread = 0;
            }
            Vec::new()
        }
        Reply::Thread {
            channel,
            root,
            page,
        } => {
            let room = room_for(app, RoomId::Thread(channel, root));
            let more = page.more;
            fill(app, room, page.messages);
            app.rooms[room].older_exhausted = !more;
            Vec::new()
        }
        Reply::Who {
            channel,
            report,
            show,
        } => {
            let sessions: Vec<String> = report
                .sessions
                .iter()
                .map(|s| format!("{} ({})", s.path, s.kind))
                .collect();
            let members: Vec<String> = report.members.iter().map(ToString::to_string).collect();
            let text = match &channel {
                Some(c) => format!(
                    "#{c}: members {}; online {}",
                    members.join(", "),
                    sessions.join(", ")
                ),
                None => format!("online: {}", sessions.join(", ")),
            };
            if let Some(channel) = channel {
                let room = room_for(app, RoomId::Channel(channel));
                app.rooms[room].online = report.sessions;
                app.rooms[room].members = report.members;
            }
            if show {
                let room = app.focused_pane().room;
                note(app, room, EntryKind::Note, text);
            }
            Vec::new()
        }
        Reply::Created(info) => {
            let room = app.focused_pane().room;
            note(
                app,
                room,
                EntryKind::Note,
                format!("created #{} ({})", info.name, info.visibility),
            );
            vec![Cmd::Join {
                channel: info.name,
                invite: None,
            }]
        }
        Reply::Left(channel) => {
            if let Some(room) = app.room_index(&RoomId::Channel(channel.clone())) {
                close_room(app, room);
            }
            note(app, 0, EntryKind::Note, format!("left #{channel}"));
            Vec::new()
        }
        Reply::Sent { id, seq, ts } => {
            // The echo may have come first and taken its place already.
            if let Some((room, index)) = app.pending_entry(id) {
                let r = &mut app.rooms[room];
                if let Some(mut entry) = r.entries.remove(index) {
                    entry.seq = Some(seq);
                    entry.ts = ts;
                    entry.delivery = Delivery::Done;
                    entry.height = Default::default();
                    r.insert_message(entry);
                }
            }
            Vec::new()
        }
        Reply::Whispered { to, id } => {
            if let Some(room) = app.room_index(&RoomId::Whisper(to)) {
                let r = &mut app.rooms[room];
                if let Some(index) = r.pending_index(id) {
                    r.entries[index].delivery = Delivery::Done;
                    r.entries[index].height = Default::default();
                }
            }
            Vec::new()
        }
        Reply::NotSent { id, error } => {
            if let Some((room, index)) = app.pending_entry(id) {
                let entry = &mut app.rooms[room].entries[index];
                entry.delivery = Delivery::Failed { id, reason: error };
                entry.height = Default::default();
            }
            Vec::new()
        }
        Reply::Invite {
            channel,
            token,
            uses,
            expires,
        } => {
            on_invite(app, channel, token, uses, expires);
            Vec::new()
        }
        Reply::Audit {
            channel,
            older,
            page,
        } => {
            on_audit(app, channel, older, page);
            Vec::new()
        }
        Reply::Details(details) => {
            if let Some(room) = app.room_index(&RoomId::Channel(details.name.clone())) {
                let r = &mut app.rooms[room];
                r.topic = details.topic;
                r.archived = details.archived;
                r.pins = details.pins;
            }
            Vec::new()
        }
        Reply::Found {
            query,
            hits,
            next,
            older,
        } => {
            show_found(app, &query, &hits, next.is_some(), older);
            app.srv_mut().search_next = next.map(|next| (query, next));
            Vec::new()
        }
        Reply::Failed {
            context,
            error: message,
        } => {
            error(app, format!("{context}: {message}"));
            Vec::new()
        }
    }
}

/// `/list`: every channel I may see, with its visibility, whether I am in it, how many
/// members and messages it has.
/// `/search`'s answer, in the room in view: a line per hit, newest first, the matches between
/// asterisks.
fn show_found(app: &mut App, query: &str, hits: &[SearchHit], more: bool, older: bool) {
    let room = app.focused_pane().room;
    let (count, newer) = match (hits.len(), more, older) {
        (0, _, _) => ("nothing matches".to_owned(), ""),
        (n, false, false) => (format!("{n} found"), ", newest first"),
        (n, true, false) => (format!("the newest {n} found"), "; /search for older ones"),
        (n, true, true) => (format!("{n} older found"), "; /search for older ones"),
        (n, false, true) => (format!("the last {n} found"), ""),
    };
    note(
        app,
        room,
        EntryKind::Note,
        format!("search {query}: {count}{newer}"),
    );
    for hit in hits {
        let mut text = String::new();
        let mut at = 0;
        for &(start, end) in &hit.marks {
            let (start, end) = (start as usize, end as usize);
            if let (Some(before), Some(marked)) =
                (hit.text.get(at..start), hit.text.get(start..end))
            {
                text.push_str(before);
                text.push_str(&format!("*{marked}*"));
                at = end;
            }
        }
        text.push_str(hit.text.get(at..).unwrap_or_default());
        let shown = crate::net::text::visible(&text, "\n    ");
        let line = format!("#{}:{} {}: {shown}", hit.channel, hit.seq, hit.from);
        note(app, room, EntryKind::Note, line);
    }
}

fn show_channels(app: &mut App, list: &[ChannelInfo]) {
    let room = app.focused_pane().room;
    if list.is_empty() {
        note(app, room, EntryKind::Note, "no channels yet: /create one");
        return;
    }
    let width = list
        .iter()
        .map(|c| c.name.as_str().len())
        .max()
        .unwrap_or(0)
        + 1;
    let mut lines = vec![format!("{} channels:", list.len())];
    for c in list {
        let joined = app.room_index(&RoomId::Channel(c.name.clone())).is_some();
        let state = match (joined, c.member) {
            (true, _) => "joined",
            (false, true) => "member",
            (false, false) => "-",
        };
        let count = |n: u64, one: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {one}s"),
        };
        lines.push(format!(
            "  {:<width$} {:<8} {:<6} {:<11} {}",
            format!("#{}", c.name),
            c.visibility,
            state,
            count(c.members, "member"),
            count(c.last_seq, "message"),
        ));
    }
    note(app, room, EntryKind::Note, lines.join("\n"));
}

/// Puts a page of a room's history in place: messages where they belong, changes applied to
/// the messages they change.
fn fill(app: &mut App, room: usize, messages: Vec<crate::net::protocol::ChatMessage>) {
    let me = app.srv().me.as_ref().map(|m| m.user.clone());
    let r = &mut app.rooms[room];
    r.loading = false;
    for m in messages {
        let mention = me
            .as_ref()
            .is_some_and(|u| *u != m.from.user && mentions(&m.text, u.as_str()));
        match m.change.clone() {
            Some(change) => {
                r.apply_change(&m, &change);
            }
            None => {
                r.insert_message(Entry::message(m, mention));
            }
        }
    }
}
