//! The input line: sending what was typed, and running the slash commands of `table`
//! (those that govern a channel parse their arguments in `govern`).

use crate::app::model::{
    Connection, Delivery, Entry, EntryKind, Overlay, Pane, Room, RoomId, Split,
};
use crate::app::settings::BellMode;
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{Audience, Autonomy, RelayBody, Visibility, from_name};
use crate::net::servers::split_channel;

use super::changes;
use super::moderation::{audit, show_topic};
use super::table::{Verb, lookup};
use super::{
    Cmd, Listing, close_room, error, govern, input_text, note, open_room, room_for, set_input,
};
use crate::app::model::App;

pub(super) fn submit(app: &mut App) -> Vec<Cmd> {
    let text = input_text(&app.input);
    if text.trim().is_empty() {
        return Vec::new();
    }
    app.sent.push(text.clone());
    app.sent_pos = None;
    set_input(app, "");
    if app.name_taken.is_some() && !text.starts_with('/') {
        return pick_name(app, text.trim());
    }
    if let Some(command) = text.strip_prefix('/') {
        return run_command(app, command);
    }
    let room = app.focused_pane().room;
    if let Some(refusal) = refusal(&app.rooms[room]) {
        error(app, refusal);
        return Vec::new();
    }
    post(app, room, text)
}

/// Why nothing typed in `room` can be sent, if it cannot: said here, before it is sent.
fn refusal(room: &Room) -> Option<String> {
    match (&room.id, &room.closed) {
        (RoomId::Home, _) => {
            Some("this is the status room: /join a channel, or /msg someone".into())
        }
        (RoomId::Audit(channel), _) => Some(format!(
            "the audit log is read-only: Esc goes back to #{channel}"
        )),
        (RoomId::Channel(channel), Some(why)) => Some(format!(
            "not sent: you are no longer in #{channel}: {why}. /join {channel} to come back if you may"
        )),
        _ => None,
    }
}

/// The person's choice of user name after the one zero set-up claimed was taken.
fn pick_name(app: &mut App, text: &str) -> Vec<Cmd> {
    match Name::user(text.trim_start_matches('@')) {
        Ok(name) => {
            app.name_taken = None;
            app.claiming = Some((name.clone(), true));
            app.srv_mut().connection = Connection::Connecting;
            note(
                app,
                0,
                EntryKind::Note,
                format!("trying the name `{name}`…"),
            );
            vec![Cmd::Register(name)]
        }
        Err(e) => {
            error(app, format!("`{text}` cannot be a user name: {e}"));
            Vec::new()
        }
    }
}

/// Shows what I typed in `room` at once, marked pending, and asks for it to be sent. The
/// entry becomes the stored message when the server acknowledges it, or says why not.
/// `/dm USER [TEXT]`: opens the direct conversation with USER (made on first use) and
/// says TEXT there.
fn direct(app: &mut App, arg: Option<&str>, line: &str) -> Result<Vec<Cmd>, String> {
    let usage = || "usage: /dm USER [TEXT]".to_owned();
    let user =
        Name::user(arg.ok_or_else(usage)?.trim_start_matches('@')).map_err(|e| e.to_string())?;
    let me = app
        .srv()
        .me
        .as_ref()
        .map(|p| p.user.clone())
        .ok_or("not connected yet")?;
    if user == me {
        return Err(format!(
            "@{user} is you: a direct conversation is with someone else"
        ));
    }
    let channel = Name::direct(&me, &user);
    let room = room_for(app, RoomId::Channel(channel.clone()));
    open_room(app, room);
    let mut cmds = vec![Cmd::Join {
        channel,
        invite: None,
    }];
    let text = line
        .splitn(3, char::is_whitespace)
        .nth(2)
        .unwrap_or("")
        .trim();
    if !text.is_empty() {
        cmds.extend(post(app, room, text.to_owned()));
    }
    Ok(cmds)
}

pub(super) fn post(app: &mut App, room: usize, text: String) -> Vec<Cmd> {
    let id = app.next_send_id;
    app.next_send_id += 1;
    let kind = match app.rooms[room].id {
        RoomId::Whisper(_) => EntryKind::Whisper { outgoing: true },
        _ => EntryKind::Message,
    };
    let me = app.srv().me.clone();
    let reply_to = match app.rooms[room].id {
        RoomId::Thread(_, root) => Some(root),
        _ => None,
    };
    app.rooms[room].entries.push_back(Entry {
        seq: None,
        ts: app.now_ms,
        from: me,
        text: text.clone(),
        kind,
        mention: false,
        delivery: Delivery::Pending { id },
        reply_to,
        height: Default::default(),
        edited: false,
        deleted: false,
        reactions: Vec::new(),
    });
    app.rooms[room].trim_oldest();
    match &app.rooms[room].id {
        RoomId::Channel(channel) => vec![Cmd::Send {
            channel: channel.clone(),
            text,
            id,
            reply_to: None,
        }],
        RoomId::Thread(channel, root) => vec![Cmd::Send {
            channel: channel.clone(),
            text,
            id,
            reply_to: Some(*root),
        }],
        RoomId::Whisper(to) => vec![Cmd::Whisper {
            to: to.clone(),
            text,
            id,
        }],
        RoomId::Home | RoomId::Audit(_) => Vec::new(),
    }
}

/// Makes the server `text` names after an `@` (if any) the active one; the rest of `text`.
fn on_named_server<'a>(app: &mut App, text: &'a str) -> Result<&'a str, String> {
    let (bare, alias) = split_channel(text);
    let Some(alias) = alias.filter(|_| !bare.trim_start_matches('@').is_empty()) else {
        return Ok(text);
    };
    match app.server_by_alias(alias) {
        Some(server) => {
            app.active = server;
            Ok(bare)
        }
        None => {
            let known: Vec<&str> = app.servers.iter().map(|s| s.alias.as_str()).collect();
            Err(format!(
                "no server `{alias}` here; this TUI has {}",
                known.join(", ")
            ))
        }
    }
}

pub(super) fn run_command(app: &mut App, line: &str) -> Vec<Cmd> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    // What follows the command's name, spaces inside kept (a reason, a topic).
    let rest = line.trim_start()[name.len()..].trim();
    let mut arg = words.next();
    // `#general@work` names a channel (or `alice@work` a user) on another server: the
    // command goes there.
    if let Some(a) = arg
        && matches!(
            lookup(name).map(|c| c.verb),
            Some(Verb::Join | Verb::Create | Verb::Msg)
        )
    {
        match on_named_server(app, a) {
            Ok(bare) => arg = Some(bare),
            Err(e) => {
                error(app, e);
                return Vec::new();
            }
        }
    }
    let focused_channel = app.focused_room().about().cloned();
    let channel_arg = |arg: Option<&str>| -> Result<Name, String> {
        match arg {
            Some(a) => Name::channel(a).map_err(|e| e.to_string()),
            None => focused_channel
                .clone()
                .ok_or_else(|| "name a channel".to_owned()),
        }
    };
    let Some(command) = lookup(name) else {
        error(app, format!("unknown command /{name}; /help lists them"));
        return Vec::new();
    };
    let result: Result<Vec<Cmd>, String> = match command.verb {
        Verb::Join => channel_arg(arg).map(|channel| {
            app.focus_on_join = Some(channel.clone());
            let invite = words.next().map(str::to_owned);
            vec![Cmd::Join { channel, invite }]
        }),
        Verb::Leave => match (&app.focused_room().id, arg) {
            // A whisper conversation and an audit view are only local: leaving closes them.
            (RoomId::Whisper(_) | RoomId::Audit(_), None) => {
                let room = app.focused_pane().room;
                close_room(app, room);
                Ok(Vec::new())
            }
            _ => channel_arg(arg).map(|c| leave(app, c)),
        },
        Verb::Create => {
            let visibility = match words.next() {
                None => Ok(Visibility::Public),
                Some(word) => from_name(word).ok_or_else(|| {
                    format!("`{word}` is not a visibility: public, unlisted or private")
                }),
            };
            match (arg, visibility) {
                (Some(a), Ok(v)) => Name::channel(a)
                    .map(|c| vec![Cmd::Create(c, v)])
                    .map_err(|e| e.to_string()),
                (None, _) => Err("usage: /create CHANNEL [public|unlisted|private]".into()),
                (_, Err(e)) => Err(e),
            }
        }
        Verb::Msg => {
            let rest = line
                .splitn(3, char::is_whitespace)
                .nth(2)
                .unwrap_or("")
                .trim()
                .to_owned();
            let text = (!rest.is_empty()).then_some(rest);
            match arg {
                // A bare user name: their one online person's session, found by asking.
                Some(a) if !a.contains('/') => Name::user(a.trim_start_matches('@'))
                    .map(|user| vec![Cmd::FindUser { user, text }])
                    .map_err(|e| e.to_string()),
                Some(a) => SessionPath::parse(a)
                    .map(|to| {
                        let room = room_for(app, RoomId::Whisper(to));
                        open_room(app, room);
                        match text {
                            Some(text) => post(app, room, text),
                            None => Vec::new(),
                        }
                    })
                    .map_err(|e| e.to_string()),
                None => Err("usage: /msg USER|user/machine/session [TEXT]".into()),
            }
        }
        Verb::List => {
            let room = app.focused_pane().room;
            note(app, room, EntryKind::Note, "listing channels…");
            Ok(vec![Cmd::ListChannels(Listing::Show)])
        }
        // A bare `/search` goes on with the last one, older hits next.
        Verb::Search if rest.is_empty() => match app.srv_mut().search_next.take() {
            Some((query, next)) => Ok(vec![Cmd::Search {
                query,
                before: Some(next),
            }]),
            None => Err("usage: /search WORDS (\"a phrase\" in quotes)".into()),
        },
        Verb::Search => Ok(vec![Cmd::Search {
            query: rest.to_owned(),
            before: None,
        }]),
        Verb::Add | Verb::Remove => match (arg.map(Name::user), focused_channel) {
            (Some(Ok(user)), Some(channel)) => Ok(vec![Cmd::Member {
                channel,
                user,
                add: command.verb == Verb::Add,
            }]),
            (Some(Err(e)), _) => Err(e.to_string()),
            (None, _) => Err(format!("usage: /{name} USER (in a channel)")),
            (_, None) => Err("members belong to a channel: switch to one first".into()),
        },
        Verb::Who => match arg {
            Some(a) => Name::channel(a)
                .map(|c| {
                    vec![Cmd::Who {
                        channel: Some(c),
                        show: true,
                    }]
                })
                .map_err(|e| e.to_string()),
            None => Ok(vec![Cmd::Who {
                channel: None,
                show: true,
            }]),
        },
        Verb::Split => match arg {
            None | Some("v" | "-v" | "vertical") => Ok(Split::SideBySide),
            Some("h" | "-h" | "horizontal") => Ok(Split::Stacked),
            Some(other) => Err(format!(
                "`{other}` is not a split: v side by side, h stacked"
            )),
        }
        .map(|split| {
            app.split = split;
            let room = app.focused_pane().room;
            app.panes.insert(app.focus + 1, Pane::new(room));
            app.focus += 1;
            Vec::new()
        }),
        Verb::Close => {
            if app.panes.len() > 1 {
                app.panes.remove(app.focus);
                app.focus = app.focus.min(app.panes.len() - 1);
                Ok(Vec::new())
            } else {
                Err("the last pane stays open".into())
            }
        }
        Verb::Help => {
            app.overlay = Some(Overlay::Help { scroll: 0 });
            Ok(Vec::new())
        }
        Verb::Quit => {
            app.quit = true;
            Ok(Vec::new())
        }
        Verb::Bell => match (arg.and_then(from_name::<BellMode>), focused_channel) {
            (Some(mode), Some(channel)) => {
                app.settings.bells.insert(channel.to_string(), mode);
                let room = app.focused_pane().room;
                note(
                    app,
                    room,
                    EntryKind::Note,
                    format!("bell for #{channel}: {}", arg.unwrap_or_default()),
                );
                Ok(Vec::new())
            }
            (None, _) => Err("usage: /bell all|mentions|none".into()),
            (_, None) => Err("the bell is set per channel: switch to one first".into()),
        },
        Verb::Autonomy => set_autonomy(app, arg, words.next(), focused_channel),
        Verb::Topic if rest.is_empty() => show_topic(app),
        Verb::Topic => govern::moderate(focused_channel, govern::topic(rest)),
        Verb::Kick => govern::moderate(focused_channel, govern::kick(rest)),
        Verb::Ban => govern::moderate(focused_channel, govern::ban(rest)),
        Verb::Unban => govern::moderate(focused_channel, govern::unban(rest)),
        Verb::Mute => govern::moderate(focused_channel, govern::mute(rest)),
        Verb::Unmute => govern::moderate(focused_channel, govern::unmute(rest)),
        Verb::Role => govern::moderate(focused_channel, govern::role(rest)),
        Verb::Set => govern::moderate(focused_channel, govern::set(rest)),
        Verb::Floor => govern::moderate(focused_channel, govern::floor(rest)),
        Verb::Rename => govern::moderate(focused_channel, govern::rename(rest)),
        Verb::Pin => govern::moderate(focused_channel, govern::pin(rest, true)),
        Verb::Unpin => govern::moderate(focused_channel, govern::pin(rest, false)),
        Verb::Archive => govern::moderate(focused_channel, govern::archive(rest, true)),
        Verb::Unarchive => govern::moderate(focused_channel, govern::archive(rest, false)),
        Verb::Delete => govern::delete(app, focused_channel, rest),
        Verb::Invite => govern::invite(focused_channel, rest),
        Verb::Audit => focused_channel
            .ok_or_else(|| govern::NOT_HERE.to_owned())
            .map(|channel| audit(app, channel)),
        Verb::Dm => direct(app, arg, line),
        Verb::Edit => changes::edit(focused_channel, rest),
        Verb::Erase => changes::erase(focused_channel, rest),
        Verb::React => changes::react(app, focused_channel, rest),
        Verb::Thread => match (focused_channel, arg.map(str::parse::<u64>)) {
            (Some(channel), Some(Ok(root))) => Ok(open_thread(app, channel, root)),
            (None, _) => Err(govern::NOT_HERE.to_owned()),
            _ => {
                Err("usage: /thread SEQ (the number after the channel's name in a message)".into())
            }
        },
    };
    match result {
        Ok(cmds) => cmds,
        Err(message) => {
            error(app, message);
            Vec::new()
        }
    }
}

/// `/leave`: asks the server, or, for a channel this session was removed from already, just
/// closes the room that kept its history.
fn leave(app: &mut App, channel: Name) -> Vec<Cmd> {
    match app.room_index(&RoomId::Channel(channel.clone())) {
        Some(room) if app.rooms[room].closed.is_some() => {
            close_room(app, room);
            note(app, 0, EntryKind::Note, format!("closed #{channel}"));
            Vec::new()
        }
        _ => vec![Cmd::Leave(channel)],
    }
}

fn set_autonomy(
    app: &mut App,
    agent: Option<&str>,
    level: Option<&str>,
    channel: Option<Name>,
) -> Result<Vec<Cmd>, String> {
    let usage = || "usage: /autonomy AGENT mute|notify|converse|act (in a channel)".to_owned();
    let (Some(agent), Some(level)) = (agent, level) else {
        return Err(usage());
    };
    let level = from_name::<Autonomy>(level).ok_or_else(usage)?;
    let path = app
        .agents
        .keys()
        .find(|p| p.to_string() == agent || p.session.as_str() == agent)
        .cloned()
        .ok_or_else(|| format!("no agent of yours called `{agent}` is online"))?;
    autonomy_cmd(app, path, channel, level)
}

/// Tells one of my agents its level in `channel`, showing the change at once.
pub(super) fn autonomy_cmd(
    app: &mut App,
    agent: SessionPath,
    channel: Option<Name>,
    level: Autonomy,
) -> Result<Vec<Cmd>, String> {
    if app.agents.get(&agent).is_some_and(|info| !info.applies) {
        return Err(format!(
            "{agent} runs as a program (--format jsonl): autonomy does not apply to it"
        ));
    }
    let channel = channel.ok_or("autonomy is set per channel: switch to one first")?;
    if let Some(info) = app.agents.get_mut(&agent) {
        info.levels.insert(channel.clone(), level);
    }
    Ok(vec![Cmd::Relay {
        to: Some(agent),
        audience: Audience::Agents,
        body: RelayBody::SetAutonomy { channel, level },
    }])
}

/// Opens the thread of message `root` of `channel`: it and the replies to it loaded so far;
/// later replies arrive as they are posted.
/// `/thread SEQ`: a room of the message and its replies, those loaded at once, the rest
/// (newest first, paged back on scrolling) from the server.
fn open_thread(app: &mut App, channel: Name, root: u64) -> Vec<Cmd> {
    let source = app.room_index(&RoomId::Channel(channel.clone()));
    let room = room_for(app, RoomId::Thread(channel.clone(), root));
    if let Some(source) = source {
        let entries: Vec<Entry> = app.rooms[source]
            .entries
            .iter()
            .filter(|e| e.seq == Some(root) || (e.seq.is_some() && e.reply_to == Some(root)))
            .cloned()
            .collect();
        for entry in entries {
            app.rooms[room].insert_message(entry);
        }
    }
    app.rooms[room].loading = true;
    open_room(app, room);
    vec![Cmd::Thread {
        channel,
        root,
        before: None,
    }]
}
