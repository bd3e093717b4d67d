//! A pane's conversation: wrapped messages bottom-up, day separators, the unread marker,
//! mention and search highlights, and the "new messages below" line. Only what is on screen
//! (plus the scrolled-over part) is wrapped, so a room of any size draws in the same time.

use chrono::{DateTime, Datelike, FixedOffset};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::model::{App, Delivery, Entry, EntryKind, Pane, Room, RoomId};
use crate::app::settings::Action;
use crate::app::text::{truncate, wrap};
use crate::net::protocol::Pin;

/// Width of the time column, `HH:MM `.
const TIME_WIDTH: usize = 6;

pub struct Messages<'a> {
    pub app: &'a App,
    pub pane: &'a Pane,
    pub focused: bool,
    /// Draw the line to the next pane on the right (side-by-side panes but the last): one
    /// line between regions, never two.
    pub right_border: bool,
}

/// The local calendar day of a timestamp, as a number: cheap enough to compare for every
/// message scrolled over.
fn day_number(app: &App, ts: i64) -> i64 {
    (ts + i64::from(app.utc_offset.local_minus_utc()) * 1000).div_euclid(86_400_000)
}

fn local(app: &App, ts: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ts)
        .unwrap_or_default()
        .with_timezone(&app.utc_offset)
}

impl Messages<'_> {
    /// The room's name, its state, then its topic cut to what is left of `width`.
    fn title(&self, room: &Room, width: usize) -> Line<'static> {
        let theme = &self.app.settings.theme;
        let muted = Style::default().fg(theme.muted);
        let mut spans = vec![Span::styled(
            format!(" {} ", self.app.room_label(room)),
            Style::default()
                .fg(theme.accent)
                .add_modifier(Modifier::BOLD),
        )];
        if room.closed.is_some() {
            spans.push(Span::styled("closed ", Style::default().fg(theme.error)));
        }
        if room.archived {
            spans.push(Span::styled("archived ", Style::default().fg(theme.error)));
        }
        if self.pane.scroll > 0 {
            spans.push(Span::styled("(scrolled) ", muted));
        }
        if room.loading {
            spans.push(Span::styled("loading… ", muted));
        }
        if !room.topic.is_empty() {
            // One column of the border stays visible after the title.
            let used: usize = spans.iter().map(Span::width).sum();
            let left = width.saturating_sub(used + 1);
            if left > 4 {
                let topic = truncate(&format!("· {}", room.topic), left - 1);
                spans.push(Span::styled(format!("{topic} "), muted));
            }
        }
        Line::from(spans)
    }

    /// Which separators belong above an entry: (a new day, the unread marker).
    fn separators_above(&self, room: &Room, index: usize) -> (bool, bool) {
        let entry = &room.entries[index];
        let previous = index.checked_sub(1).map(|i| &room.entries[i]);
        let new_day = previous
            .is_none_or(|p| day_number(self.app, p.ts) != day_number(self.app, entry.ts))
            && (previous.is_some() || room.older_exhausted);
        let marker = match (room.marker, entry.seq) {
            (Some(marker), Some(seq)) => {
                seq > marker && previous.and_then(|p| p.seq).is_none_or(|p| p <= marker)
            }
            _ => false,
        };
        (new_day, marker)
    }

    /// The separator lines above an entry.
    fn separators(&self, room: &Room, index: usize, width: usize) -> Vec<Line<'static>> {
        let theme = &self.app.settings.theme;
        let (new_day, marker) = self.separators_above(room, index);
        let mut lines = Vec::new();
        if new_day {
            let day = local(self.app, room.entries[index].ts).date_naive();
            let label = format!(" {} {} ", day.weekday(), day.format("%-d %B %Y"));
            lines.push(separator(&label, width, Style::default().fg(theme.muted)));
        }
        if marker {
            lines.push(separator(
                " new ",
                width,
                Style::default().fg(theme.unread_marker),
            ));
        }
        lines
    }

    /// Lines an entry takes with its separators, from the memo when the width is unchanged.
    fn height(&self, room: &Room, index: usize, width: usize) -> usize {
        let entry = &room.entries[index];
        let (memo_width, memo_lines) = entry.height.get();
        let lines = if usize::from(memo_width) == width {
            usize::from(memo_lines)
        } else {
            let lines = entry_height(entry, width);
            entry
                .height
                .set((width as u16, lines.min(usize::from(u16::MAX)) as u16));
            lines
        };
        let (new_day, marker) = self.separators_above(room, index);
        lines + usize::from(new_day) + usize::from(marker)
    }

    /// Lays out the screen `scroll` lines up from the newest: entries wholly below it are
    /// skipped by their memoised heights, then entries are wrapped newest first until one
    /// screen is known. Returns the lines (newest first), the lines skipped, and whether the
    /// oldest loaded entry was reached.
    fn layout(
        &self,
        room: &Room,
        width: usize,
        rows: usize,
        scroll: usize,
    ) -> (Vec<Line<'static>>, usize, bool) {
        let mut index = room.entries.len();
        let mut skipped = 0;
        while index > 0 {
            let h = self.height(room, index - 1, width);
            if skipped + h > scroll {
                break;
            }
            skipped += h;
            index -= 1;
        }
        let want = (scroll - skipped).saturating_add(rows);
        let mut lines = Vec::new();
        while index > 0 && lines.len() < want {
            index -= 1;
            self.entry_lines(room, index, width, &mut lines);
        }
        let reached_top = index == 0 && lines.len() <= want;
        (lines, skipped, reached_top)
    }

    /// The lines of one entry, with the separators that belong above it, newest first.
    fn entry_lines(&self, room: &Room, index: usize, width: usize, out: &mut Vec<Line<'static>>) {
        let app = self.app;
        let theme = &app.settings.theme;
        let entry = &room.entries[index];
        let mut lines = self.separators(room, index, width);

        let time = local(app, entry.ts).format("%H:%M ").to_string();
        let hit = app.search.as_ref().and_then(|s| s.hit) == Some(index) && self.focused;
        let body_width = width.saturating_sub(TIME_WIDTH).max(1);
        let head = head(entry);
        let (head_style, text_style) = match entry.kind {
            EntryKind::Message | EntryKind::Whisper { outgoing: false } => {
                let from = sender(entry);
                let text = if entry.mention {
                    Style::default()
                        .fg(theme.mention)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                };
                (
                    Style::default()
                        .fg(theme.sender(&from))
                        .add_modifier(Modifier::BOLD),
                    text,
                )
            }
            EntryKind::Whisper { outgoing: true } => {
                (Style::default().fg(theme.muted), Style::default())
            }
            EntryKind::Note => (
                Style::default().fg(theme.muted),
                Style::default().fg(theme.muted),
            ),
            EntryKind::Error => (
                Style::default().fg(theme.error),
                Style::default().fg(theme.error),
            ),
        };
        let text_style = match entry.delivery {
            Delivery::Done if entry.deleted => Style::default().fg(theme.muted),
            Delivery::Done => text_style,
            Delivery::Pending { .. } => Style::default().fg(theme.muted),
            Delivery::Failed { .. } => Style::default().fg(theme.error),
        };
        if let Some(seq) = entry.reply_to {
            let quote = truncate(&quote_of(room, seq), body_width);
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(TIME_WIDTH)),
                Span::styled(quote, Style::default().fg(theme.muted)),
            ]));
        }
        let wrapped = wrapped(entry, &head, body_width);
        let hit_style = |s: Style| {
            if hit {
                s.add_modifier(Modifier::REVERSED)
            } else {
                s
            }
        };
        for (i, text) in wrapped.into_iter().enumerate() {
            let lead = if i == 0 {
                Span::styled(time.clone(), Style::default().fg(theme.muted))
            } else {
                Span::raw(" ".repeat(TIME_WIDTH))
            };
            let mut spans = vec![lead];
            if i == 0 && text.starts_with(head.trim_end()) {
                let split = head.trim_end().len().min(text.len());
                spans.push(Span::styled(
                    text[..split].to_owned(),
                    hit_style(head_style),
                ));
                spans.push(Span::styled(
                    text[split..].to_owned(),
                    hit_style(text_style),
                ));
            } else {
                spans.push(Span::styled(text, hit_style(text_style)));
            }
            lines.push(Line::from(spans));
        }
        if !entry.reactions.is_empty() {
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(TIME_WIDTH)),
                Span::styled(
                    truncate(&reactions_line(entry), body_width),
                    Style::default().fg(theme.muted),
                ),
            ]));
        }
        out.extend(lines.into_iter().rev());
    }
}

fn sender(entry: &Entry) -> String {
    entry
        .from
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The line above a reply: the start of the message it answers, if it is loaded.
fn quote_of(room: &Room, seq: u64) -> String {
    match room.entries.iter().rfind(|e| e.seq == Some(seq)) {
        Some(original) => {
            let first = original.text.lines().next().unwrap_or_default();
            format!("↳ {}: {first}", sender(original))
        }
        None => format!("↳ re message {seq}"),
    }
}

/// What goes before an entry's text: the sender, an arrow, or a mark.
fn head(entry: &Entry) -> String {
    match entry.kind {
        EntryKind::Message | EntryKind::Whisper { outgoing: false } => {
            format!("{}: ", sender(entry))
        }
        EntryKind::Whisper { outgoing: true } => "→ ".to_owned(),
        EntryKind::Note => "* ".to_owned(),
        EntryKind::Error => "! ".to_owned(),
    }
}

/// What follows the text of something I typed that the server has not stored.
fn delivery_note(entry: &Entry) -> String {
    match &entry.delivery {
        Delivery::Done => String::new(),
        Delivery::Pending { .. } => "  ⧗ sending".to_owned(),
        Delivery::Failed { reason, .. } => format!("  ✗ not sent: {reason}"),
    }
}

fn wrapped(entry: &Entry, head: &str, body_width: usize) -> Vec<String> {
    let text = if entry.deleted {
        "(deleted)"
    } else {
        &entry.text
    };
    let edited = if entry.edited { " (edited)" } else { "" };
    wrap(
        &format!("{head}{text}{edited}{}", delivery_note(entry)),
        body_width,
    )
}

/// The pinned message a pane shows at its top: its sender, the start of its text, its seq,
/// and how many more are pinned.
fn pin_line(pin: &Pin, pins: usize) -> String {
    let first = pin.text.lines().next().unwrap_or_default();
    let more = match pins.saturating_sub(1) {
        0 => String::new(),
        n => format!(" · {n} more pinned"),
    };
    format!("📌 {}: {first} (#{}){more}", pin.from, pin.seq)
}

/// The line under a message with reactions: each one and how many made it.
fn reactions_line(entry: &Entry) -> String {
    entry
        .reactions
        .iter()
        .map(|r| format!("{} {}", r.reaction, r.count))
        .collect::<Vec<_>>()
        .join("  ")
}

/// How many lines an entry takes in a pane `width` columns wide (separators aside).
pub fn entry_height(entry: &Entry, width: usize) -> usize {
    let quote = usize::from(entry.reply_to.is_some());
    let reactions = usize::from(!entry.reactions.is_empty());
    quote + reactions + wrapped(entry, &head(entry), width.saturating_sub(TIME_WIDTH).max(1)).len()
}

fn separator(label: &str, width: usize, style: Style) -> Line<'static> {
    let side = width.saturating_sub(label.width()) / 2;
    let right = width.saturating_sub(label.width() + side);
    Line::styled(
        format!("{}{label}{}", "─".repeat(side), "─".repeat(right)),
        style,
    )
}

impl Widget for Messages<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let room = &app.rooms[self.pane.room];
        let border = if self.focused {
            theme.focused_border
        } else {
            theme.border
        };
        let borders = if self.right_border {
            Borders::TOP | Borders::RIGHT
        } else {
            Borders::TOP
        };
        let block = Block::default()
            .borders(borders)
            .border_style(Style::default().fg(border))
            .title(self.title(room, usize::from(area.width)));
        let inner = block.inner(area);
        block.render(area, buf);
        // The newest pin sits on the pane's first line, while the pane has room for messages.
        let inner = match room.pins.first() {
            Some(pin) if inner.height > 2 => {
                let line = truncate(&pin_line(pin, room.pins.len()), usize::from(inner.width));
                Paragraph::new(Line::styled(line, Style::default().fg(theme.muted)))
                    .render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
                Rect::new(inner.x, inner.y + 1, inner.width, inner.height - 1)
            }
            _ => inner,
        };
        let height = inner.height as usize;
        let width = inner.width as usize;
        self.pane.viewport.set(inner.height);
        self.pane.width.set(inner.width);
        if height == 0 || width == 0 {
            return;
        }
        let below = self.pane.scroll > 0 && self.pane.unseen > 0;
        let rows = if below { height - 1 } else { height };

        let (mut lines, mut skipped, mut reached_top) =
            self.layout(room, width, rows, self.pane.scroll);
        let mut total = skipped + lines.len();
        if reached_top && self.pane.scroll > total.saturating_sub(rows) {
            // Scrolled past the top: lay out again from the top itself.
            (lines, skipped, reached_top) =
                self.layout(room, width, rows, total.saturating_sub(rows));
            total = skipped + lines.len();
        }
        self.pane.at_top.set(reached_top);
        let max_scroll = total.saturating_sub(rows);
        self.pane.max_scroll.set(reached_top.then_some(max_scroll));
        let scroll = self.pane.scroll.min(max_scroll).saturating_sub(skipped);
        let visible: Vec<Line<'static>> = lines
            .into_iter()
            .skip(scroll)
            .take(rows)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let top = inner.y + (rows - visible.len()) as u16;
        let text_area = Rect::new(inner.x, top, inner.width, visible.len() as u16);
        Paragraph::new(visible).render(text_area, buf);
        if room.entries.is_empty() {
            let hint = match (&room.id, room.loading) {
                (RoomId::Home, _) => "Welcome to conclave. /join a channel, /help for keys.",
                (RoomId::Audit(_), true) => "",
                (RoomId::Audit(_), false) => "Nothing in the audit log yet.",
                _ => "No messages yet.",
            };
            Paragraph::new(Line::styled(hint, Style::default().fg(theme.muted)))
                .render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
        }
        if below {
            let text = format!(
                "↓ {} new below ({}) ",
                self.pane.unseen,
                app.settings.keymap.key(Action::ScrollBottom)
            );
            let line = Line::styled(
                text,
                Style::default()
                    .fg(theme.mention)
                    .add_modifier(Modifier::BOLD),
            );
            Paragraph::new(line).render(
                Rect::new(inner.x, inner.y + inner.height - 1, inner.width, 1),
                buf,
            );
        }
    }
}
