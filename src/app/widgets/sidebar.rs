//! The room list: the status room, channels, whispers, with unread counts and mention marks;
//! a room closed to me (kicked, banned, deleted) is struck through. With several servers,
//! each server's rooms sit under its alias and connection state.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::model::{App, Connection, ServerView, SidebarRow};
use crate::app::settings::Theme;

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
        for row in app.sidebar_rows() {
            let index = match row {
                SidebarRow::Server(server) => {
                    lines.push(server_line(&app.servers[server], width, theme));
                    continue;
                }
                SidebarRow::Room(index) => index,
            };
            let room = &app.rooms[index];
            let label = app.room_label(room);
            let mut style = Style::default();
            if room.unread > 0 {
                style = style.add_modifier(Modifier::BOLD);
            }
            if room.closed.is_some() {
                style = style.fg(theme.muted).add_modifier(Modifier::CROSSED_OUT);
            }
            if index == focused {
                style = style.fg(theme.accent).add_modifier(Modifier::REVERSED);
            } else if app.panes.iter().any(|p| p.room == index) {
                style = style.fg(theme.accent);
            }
            // Mentions and the unread count, both: "@1 5" is one mention among five unread.
            let mention_badge = match room.mentions {
                0 => String::new(),
                m => format!(" @{m}"),
            };
            let unread_badge = match room.unread {
                0 => String::new(),
                n => format!(" {n}"),
            };
            let badge_width = mention_badge.width() + unread_badge.width();
            let room_width = width.saturating_sub(badge_width);
            let mut shown: String = String::new();
            for c in label.chars() {
                if shown.width() + 1 >= room_width && room_width > 0 {
                    shown.push('…');
                    break;
                }
                shown.push(c);
            }
            let pad = width.saturating_sub(shown.width() + badge_width);
            lines.push(Line::from(vec![
                Span::styled(shown, style),
                Span::raw(" ".repeat(pad)),
                Span::styled(
                    mention_badge,
                    Style::default()
                        .fg(theme.mention)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::styled(unread_badge, Style::default().fg(theme.muted)),
            ]));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}

/// A server's heading: its alias, and a mark unless it is connected.
fn server_line(server: &ServerView, width: usize, theme: &Theme) -> Line<'static> {
    let (mark, mark_style) = match &server.connection {
        Connection::Connected => ("", Style::default()),
        Connection::Connecting => (" …", Style::default().fg(theme.muted)),
        Connection::Reconnecting { .. } => (" ⟳", Style::default().fg(theme.error)),
        Connection::Offline(_) => (" ✗", Style::default().fg(theme.error)),
    };
    let room = width.saturating_sub(mark.width());
    let mut alias: String = String::new();
    for c in server.alias.chars() {
        if alias.width() + 1 >= room && room > 0 {
            alias.push('…');
            break;
        }
        alias.push(c);
    }
    let pad = width.saturating_sub(alias.width() + mark.width());
    Line::from(vec![
        Span::styled(
            alias,
            Style::default()
                .fg(theme.muted)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(" ".repeat(pad)),
        Span::styled(mark, mark_style),
    ])
}
