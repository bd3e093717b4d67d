//! The status line (server, my path, connection state) and the banner above the input
//! (permission requests waiting, or the reconnect countdown).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::model::{App, Connection};
use crate::app::settings::Action;

/// The connection state in words: "connected", "reconnecting in 3 s", "offline: <reason>".
pub fn connection_text(app: &App) -> String {
    match &app.connection {
        Connection::Connecting => "connecting…".into(),
        Connection::Connected => "connected".into(),
        Connection::Reconnecting { until_ms, .. } => {
            let left = (until_ms - app.now_ms).max(0);
            format!("reconnecting in {} s", (left + 999) / 1000)
        }
        Connection::Offline(reason) => format!("offline: {reason}"),
    }
}

pub struct StatusLine<'a> {
    pub app: &'a App,
}

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let style = Style::default().fg(theme.status_fg).bg(theme.status_bg);
        let me = app
            .me
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        // Most important first: narrow terminals cut from the right.
        let left = format!(" {} │ {me} │ {} ", connection_text(app), app.server);
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
    match &app.connection {
        Connection::Reconnecting { reason, .. } => Some(Line::styled(
            format!(
                "⚠ {}: {reason}. What you type is kept and sent once back.",
                connection_text(app)
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
