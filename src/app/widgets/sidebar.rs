//! The room list: the status room, channels, whispers, with unread counts and mention marks.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::model::App;

pub struct Sidebar<'a> {
    pub app: &'a App,
}

impl Widget for Sidebar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let block = Block::default()
            .borders(Borders::RIGHT)
            .border_style(Style::default().fg(theme.border));
        let inner = block.inner(area);
        block.render(area, buf);
        app.sidebar_area.set(inner);
        let width = inner.width as usize;
        let focused = app.focused_pane().room;
        let mut lines = Vec::new();
        for index in app.sorted_rooms() {
            let room = &app.rooms[index];
            let label = room.id.label();
            let mut style = Style::default();
            if room.unread > 0 {
                style = style.add_modifier(Modifier::BOLD);
            }
            if index == focused {
                style = style.fg(theme.accent).add_modifier(Modifier::REVERSED);
            } else if app.panes.iter().any(|p| p.room == index) {
                style = style.fg(theme.accent);
            }
            let badge = match (room.mentions, room.unread) {
                (0, 0) => String::new(),
                (0, n) => format!(" {n}"),
                (m, _) => format!(" @{m}"),
            };
            let room_width = width.saturating_sub(badge.width());
            let mut shown: String = String::new();
            for c in label.chars() {
                if shown.width() + 1 >= room_width && room_width > 0 {
                    shown.push('…');
                    break;
                }
                shown.push(c);
            }
            let pad = width.saturating_sub(shown.width() + badge.width());
            let badge_style = if room.mentions > 0 {
                Style::default()
                    .fg(theme.mention)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().fg(theme.muted)
            };
            lines.push(Line::from(vec![
                Span::styled(shown, style),
                Span::raw(" ".repeat(pad)),
                Span::styled(badge, badge_style),
            ]));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}
