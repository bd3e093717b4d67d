//! Moving around: scrolling (keys and wheel), search hits, input history, rooms and panes.

use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::{Cmd, error, open_room, set_input};
use crate::app::model::{App, RoomId, SidebarRow};
use crate::app::widgets::messages::entry_height;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Older,
    Newer,
}

/// Moves to the next entry matching the query (case-insensitive) and scrolls it into view.
pub(super) fn find(app: &mut App, direction: Direction) {
    let pane = app.focused_pane();
    let room = &app.rooms[pane.room];
    let Some(search) = app.search.as_ref() else {
        return;
    };
    if search.query.is_empty() {
        return;
    }
    let needle = search.query.to_lowercase();
    let len = room.entries.len();
    let start = search.hit.filter(|&hit| hit < len).unwrap_or(len);
    let matches = |i: usize| room.entries[i].text.to_lowercase().contains(&needle);
    let found = match direction {
        Direction::Older => (0..start).rev().find(|&i| matches(i)),
        Direction::Newer => (start + 1..len).find(|&i| matches(i)),
    };
    // Scroll so the hit sits mid-pane: the lines of everything below it, less half a screen.
    let pane = app.focused_pane();
    let (width, rows) = (pane.width.get() as usize, pane.viewport.get() as usize);
    let below = found.map(|i| {
        let lines: usize = room
            .entries
            .iter()
            .skip(i + 1)
            .map(|e| entry_height(e, width))
            .sum();
        lines.saturating_sub(rows / 2)
    });
    if let Some(search) = app.search.as_mut() {
        search.failed = found.is_none();
        if found.is_some() {
            search.hit = found;
        }
    }
    if let Some(below) = below {
        let focus = app.focus;
        app.panes[focus].scroll = below;
    }
}

pub(super) fn recall(app: &mut App, step: isize) {
    if app.sent.is_empty() {
        return;
    }
    let last = app.sent.len() as isize - 1;
    let next: Option<usize> = match app.sent_pos {
        None if step < 0 => Some(last as usize),
        None => None,
        Some(pos) => {
            let p = pos as isize + step;
            (0..=last).contains(&p).then_some(p as usize)
        }
    };
    let pos = match next {
        Some(p) => p,
        None if step > 0 => {
            app.sent_pos = None;
            set_input(app, "");
            return;
        }
        None => 0,
    };
    app.sent_pos = Some(pos);
    let text = app.sent[pos].clone();
    set_input(app, &text);
}

pub(super) fn cycle_pane(app: &mut App, step: isize) {
    let n = app.panes.len() as isize;
    app.focus = ((app.focus as isize + step).rem_euclid(n)) as usize;
}

pub(super) fn cycle_room(app: &mut App, step: isize) {
    let order = app.sorted_rooms();
    let current = app.focused_pane().room;
    let at = order.iter().position(|&r| r == current).unwrap_or(0) as isize;
    let next = order[((at + step).rem_euclid(order.len() as isize)) as usize];
    open_room(app, next);
}

pub(super) fn next_unread(app: &mut App) {
    let order = app.sorted_rooms();
    let pick = order
        .iter()
        .copied()
        .find(|&r| app.rooms[r].mentions > 0)
        .or_else(|| order.iter().copied().find(|&r| app.rooms[r].unread > 0));
    match pick {
        Some(room) => open_room(app, room),
        None => error(app, "nothing unread"),
    }
}

pub(super) enum Scroll {
    PageUp,
    PageDown,
    Top,
    Bottom,
    Lines(isize),
}

pub(super) fn scroll(app: &mut App, how: Scroll) -> Vec<Cmd> {
    let focus = app.focus;
    let pane = &mut app.panes[focus];
    let page = pane.viewport.get().saturating_sub(2).max(1) as usize;
    match how {
        Scroll::PageUp => pane.scroll += page,
        Scroll::PageDown => pane.scroll = pane.scroll.saturating_sub(page),
        Scroll::Lines(n) if n > 0 => pane.scroll += n as usize,
        Scroll::Lines(n) => pane.scroll = pane.scroll.saturating_sub(n.unsigned_abs()),
        // Unknown until drawn: far enough, and the next update clamps it to the real top.
        Scroll::Top => pane.scroll = pane.max_scroll.get().unwrap_or(usize::MAX / 2),
        Scroll::Bottom => pane.scroll = 0,
    }
    if pane.scroll == 0 {
        pane.unseen = 0;
    }
    let going_up = pane.at_top.get();
    let scroll_now = pane.scroll;
    let room = &mut app.rooms[pane.room];
    let Some(channel) = room.about().cloned() else {
        return Vec::new();
    };
    // A closed room has only what it kept.
    if room.loading || room.closed.is_some() {
        return Vec::new();
    }
    // Past the oldest loaded message (or audit entry): page older ones in.
    if going_up && scroll_now > 0 && !room.older_exhausted {
        if let Some(oldest) = room.oldest_seq() {
            room.loading = true;
            let before = Some(oldest);
            return vec![match room.id {
                RoomId::Audit(_) => Cmd::Audit { channel, before },
                RoomId::Thread(_, root) => Cmd::Thread {
                    channel,
                    root,
                    before,
                },
                _ => Cmd::History {
                    channel,
                    before,
                    after: None,
                },
            }];
        }
    }
    // Back at the bottom after newer messages were dropped: fetch them again.
    if scroll_now == 0 && room.newer_dropped && room.channel().is_some() {
        room.newer_dropped = false;
        room.loading = true;
        return vec![Cmd::History {
            channel,
            before: None,
            after: room.newest_seq(),
        }];
    }
    Vec::new()
}

pub(super) fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Cmd> {
    match mouse.kind {
        MouseEventKind::ScrollUp => scroll(app, Scroll::Lines(3)),
        MouseEventKind::ScrollDown => scroll(app, Scroll::Lines(-3)),
        MouseEventKind::Down(MouseButton::Left) if app.overlay.is_none() => {
            // A click on a room in the sidebar shows it, one room per row.
            let area = app.sidebar_area.get();
            if area.contains(Position::new(mouse.column, mouse.row)) {
                let row = usize::from(mouse.row - area.y);
                if let Some(&SidebarRow::Room(room)) = app.sidebar_rows().get(row) {
                    open_room(app, room);
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}
