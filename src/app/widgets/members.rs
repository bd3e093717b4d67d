//! The focused channel's members: live sessions first (agents marked, with the autonomy my
//! agents run at here), then members with no live session.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use crate::app::model::App;
use crate::net::protocol::SessionKind;

pub struct Members<'a> {
    pub app: &'a App,
}

impl Widget for Members<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let room = app.focused_room();
        let block = Block::default()
            .borders(Borders::LEFT)
            .border_style(Style::default().fg(theme.border))
            .title(Span::styled(" members ", Style::default().fg(theme.muted)));
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(channel) = room.channel() else {
            return;
        };
        let mut lines = Vec::new();
        for session in &room.online {
            let agent = session.kind == SessionKind::Agent;
            let color = if agent {
                theme.agent
            } else {
                theme.sender(&session.path.to_string())
            };
            lines.push(Line::from(vec![
                Span::styled("● ", Style::default().fg(color)),
                Span::styled(session.path.to_string(), Style::default().fg(color)),
            ]));
            if agent {
                // My agents report their autonomy here; others are only marked as agents.
                let what = match app.agents.get(&session.path) {
                    Some(info) if info.applies => info.level(channel).to_string(),
                    Some(_) => "no autonomy".to_owned(),
                    None => "agent".to_owned(),
                };
                lines.push(Line::styled(
                    format!("  ⚙ {what}"),
                    Style::default().fg(theme.muted),
                ));
            }
        }
        for user in &room.members {
            if room.online.iter().any(|s| &s.path.user == user) {
                continue;
            }
            lines.push(Line::styled(
                format!("○ {user}"),
                Style::default().fg(theme.muted).add_modifier(Modifier::DIM),
            ));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}
