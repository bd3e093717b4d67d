//! The status line (server, my path, connection state) and the banner above the input
//! (permission requests waiting, or the reconnect countdown).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::model::{App, Connection, ServerView};
use crate::app::settings::Action;

/// A server's connection state in words at `now_ms`: "connected", "reconnecting in 3 s",
/// "offline: <reason>".
pub fn connection_text(server: &ServerView, now_ms: i64) -> String {
    match &server.connection {
        Connection::Connecting => "connecting…".into(),
        Connection::Connected => "connected".into(),
        Connection::Reconnecting { until_ms, .. } => {
            let left = (until_ms - now_ms).max(0);
            format!("reconnecting in {} s", (left + 999) / 1000)
        }
        Connection::Offline(reason) => format!("offline: {reason}"),
    }
}

/// Every server's connection state, for what a tick may change on screen.
pub fn connections_text(app: &App) -> String {
    let states: Vec<String> = app
        .servers
        .iter()
        .map(|s| connection_text(s, app.now_ms))
        .collect();
    states.join(" ")
}

pub struct StatusLine<'a> {
    pub app: &'a App,
}

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let style = Style::default().fg(theme.status_fg).bg(theme.status_bg);
        // The focused room's server: with several, each room's own.
        let server = app.focused_server();
        let me = server
            .me
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let name = if app.servers.len() > 1 {
            format!("{} {}", server.alias, server.server)
        } else {
            server.server.clone()
        };
        // Most important first: narrow terminals cut from the right.
        let connection = connection_text(server, app.now_ms);
        let left = format!(" {connection} │ {me} │ {name} ");
        let keys = &app.settings.keymap;
        let right = if app.mouse_capture {
            format!(" {} help ", keys.key(Action::Help))
        } else {
            format!(
                " mouse off: select text · {} gives it back · {} help ",
                keys.key(Action::ToggleMouse),
                keys.key(Action::Help)
            )
        };
        let pad =
            (area.width as usize).saturating_sub(left.chars().count() + right.chars().count());
        let line = Line::from(vec![
            Span::styled(left, style.add_modifier(Modifier::BOLD)),
            Span::styled(" ".repeat(pad), style),
            Span::styled(right, style),
        ]);
        Paragraph::new(line).render(area, buf);
    }
}

/// The one-line banner, if anything needs attention.
pub fn banner(app: &App) -> Option<Line<'static>> {
    let theme = &app.settings.theme;
    let keys = &app.settings.keymap;
    let pending: Vec<_> = app.pending_approvals().collect();
    if let Some(first) = pending.first() {
        let more = if pending.len() > 1 {
            format!(" (+{} more)", pending.len() - 1)
        } else {
            String::new()
        };
        return Some(Line::styled(
            format!(
                "⚑ {} wants {}: {}{more}   {} allow · {} deny · {} review",
                first.agent,
                first.tool_name,
                first.description,
                keys.key(Action::Allow),
                keys.key(Action::Deny),
                keys.key(Action::Agents),
            ),
            Style::default()
                .fg(theme.mention)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let server = app.focused_server();
    match &server.connection {
        Connection::Reconnecting { reason, .. } => Some(Line::styled(
            format!(
                "⚠ {}: {reason}. What you type is kept and sent once back.",
                connection_text(server, app.now_ms)
            ),
            Style::default()
                .fg(theme.error)
                .add_modifier(Modifier::BOLD),
        )),
        Connection::Offline(reason) => Some(Line::styled(
            format!("⚠ offline: {reason}"),
            Style::default()
                .fg(theme.error)
                .add_modifier(Modifier::BOLD),
        )),
        Connection::Connecting | Connection::Connected => None,
    }
}
