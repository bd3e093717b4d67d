//! `update(&mut App, Msg, now_ms) -> Vec<Cmd>`: the only code that changes the model. No I/O
//! and no clock: the event loop stamps each message with the time it arrived, and what needs
//! the network or the terminal comes back as a `Cmd` for the event loop to carry out.
//!
//! One file per source of messages: `link` (link events), `replies` (finished commands),
//! `keys` (the keymap, overlays, search), `navigate` (scrolling, rooms, panes),
//! `commands` (the input line and dispatch of slash commands), `table` (the one table of
//! them), `govern` (the commands that govern a channel), `moderation` (moderation acts as the
//! rooms show them, invites and the audit view), `complete` (Tab).

mod changes;
mod commands;
mod complete;
mod govern;
mod keys;
mod link;
mod moderation;
mod msg;
mod navigate;
mod replies;
mod table;

use ratatui_textarea::{CursorMove, TextArea};

pub use self::msg::{AuditPage, Cmd, Listing, Msg, Reply};
pub use self::table::{COMMANDS, SlashCommand};

use super::model::{App, Delivery, Entry, EntryKind, Pane, Room, RoomId, new_input};
use super::text::unix_newlines;
use super::widgets::messages::entry_height;

/// Handles one message that arrived at `now_ms` (milliseconds since the Unix epoch).
pub fn update(app: &mut App, msg: Msg, now_ms: i64) -> Vec<Cmd> {
    app.now_ms = now_ms;
    // Scrolled past the top at the last draw: settle at the top, so neither PgDn feels dead
    // nor every later draw wraps the whole room again.
    for pane in &mut app.panes {
        if let Some(max) = pane.max_scroll.get() {
            pane.scroll = pane.scroll.min(max);
        }
    }
    match msg {
        Msg::On { server, msg } => {
            app.active = server;
            update(app, *msg, now_ms)
        }
        Msg::Key(key) => {
            app.active = app.focused_room().server;
            keys::on_key(app, key)
        }
        Msg::Mouse(mouse) => {
            app.active = app.focused_room().server;
            navigate::on_mouse(app, mouse)
        }
        Msg::Paste(text) => {
            app.input.insert_str(unix_newlines(&text));
            Vec::new()
        }
        Msg::Resize => Vec::new(),
        Msg::Link(event) => link::on_link(app, event),
        Msg::Done(reply) => replies::on_reply(app, reply),
        Msg::Tick => mark_visible_read(app),
        Msg::LocalServerStarted(local) => {
            let text = format!(
                "started a local server, pid {}, log at {} (`conclave serve --stop` stops it)",
                local.pid,
                local.log.display()
            );
            note(app, 0, EntryKind::Note, text);
            Vec::new()
        }
    }
}

// ---- rooms -------------------------------------------------------------------------------

fn room_for(app: &mut App, id: RoomId) -> usize {
    if let Some(index) = app.room_index(&id) {
        return index;
    }
    let mut room = Room::new(id);
    room.server = app.active;
    app.rooms.push(room);
    app.rooms.len() - 1
}

/// Shows `room` in the focused pane and resets its unread state. With unread messages it
/// opens at the `new` marker (at the top of the pane), not at the bottom.
fn open_room(app: &mut App, room: usize) {
    let focus = app.focus;
    app.search = None;
    let old = &app.panes[focus];
    let (rows, width) = (old.viewport.get(), old.width.get());
    let pane = Pane::new(room);
    pane.viewport.set(rows);
    pane.width.set(width);
    app.panes[focus] = pane;
    let r = &mut app.rooms[room];
    r.marker = (r.read_seq < r.last_seq).then_some(r.read_seq);
    r.unread = 0;
    r.mentions = 0;
    if let Some(marker) = r.marker {
        // The marker line and everything below it, wrapped as the pane was last drawn.
        let first = r
            .entries
            .iter()
            .position(|e| e.seq.is_some_and(|s| s > marker));
        let below: usize = first.map_or(0, |first| {
            1 + r
                .entries
                .range(first..)
                .map(|e| entry_height(e, usize::from(width)))
                .sum::<usize>()
        });
        app.panes[focus].scroll = below.saturating_sub(usize::from(rows));
    }
}

/// Removes a room; panes that showed it show the status room.
fn close_room(app: &mut App, room: usize) {
    if room == 0 {
        return;
    }
    app.search = None;
    app.rooms.remove(room);
    for pane in &mut app.panes {
        if pane.room == room {
            *pane = Pane::new(0);
        } else if pane.room > room {
            pane.room -= 1;
        }
    }
}

/// A local line in `room`, stamped now.
fn note(app: &mut App, room: usize, kind: EntryKind, text: impl Into<String>) {
    note_at(app, room, kind, app.now_ms, text);
}

/// A local line in `room`, stamped `ts` (when what it tells of happened).
fn note_at(app: &mut App, room: usize, kind: EntryKind, ts: i64, text: impl Into<String>) {
    let entry = Entry {
        seq: None,
        ts,
        from: None,
        text: text.into(),
        kind,
        mention: false,
        delivery: Delivery::Done,
        reply_to: None,
        height: Default::default(),
        edited: false,
        deleted: false,
        reactions: Vec::new(),
    };
    app.rooms[room].entries.push_back(entry);
    app.rooms[room].trim_oldest();
}

/// An error shown inline in the focused room.
fn error(app: &mut App, text: impl Into<String>) {
    let room = app.focused_pane().room;
    note(app, room, EntryKind::Error, text);
}

/// Advances read positions of rooms on screen (batched once a second, not per message).
fn mark_visible_read(app: &mut App) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for pane in &app.panes {
        if pane.scroll != 0 {
            continue;
        }
        let room = &mut app.rooms[pane.room];
        if room.server != app.active {
            continue;
        }
        if let (Some(channel), None) = (room.channel().cloned(), &room.closed) {
            if room.last_seq > room.read_seq {
                room.read_seq = room.last_seq;
                cmds.push(Cmd::MarkRead {
                    channel,
                    seq: room.last_seq,
                });
            }
        }
    }
    cmds
}

// ---- the input box ---------------------------------------------------------------------------

fn input_text(input: &TextArea<'static>) -> String {
    unix_newlines(&input.lines().join("\n"))
}

fn set_input(app: &mut App, text: &str) {
    let mut input = new_input(text.split('\n').map(str::to_owned).collect());
    input.move_cursor(CursorMove::Bottom);
    input.move_cursor(CursorMove::End);
    app.input = input;
}

#[cfg(test)]
pub(crate) mod tests;
