//! Boxes drawn over the screen: the help (every key and command) and the agents view
//! (permission requests with who answered and when, and each agent's autonomy).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::app::help;
use crate::app::model::App;
use crate::app::settings::Action;

/// A centred rectangle of at most `width` x `height` inside `area`.
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn frame(app: &App, title: &str, area: Rect, buf: &mut Buffer) -> Rect {
    Clear.render(area, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(app.settings.theme.focused_border))
        .title(Span::styled(
            format!(" {title} "),
            Style::default()
                .fg(app.settings.theme.accent)
                .add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// The help: as big as its text, within the screen; Up/Down/PgUp/PgDn scroll what is cut.
pub struct Help<'a> {
    pub app: &'a App,
    pub scroll: usize,
}

impl Widget for Help<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let lines = help::lines(&self.app.settings);
        let height = lines.len() as u16 + 2;
        let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(40) as u16 + 4;
        let boxed = centred(area, width, height);
        let rows = usize::from(boxed.height.saturating_sub(2));
        self.app.overlay_rows.set(rows as u16);
        let max = lines.len().saturating_sub(rows);
        let scroll = self.scroll.min(max);
        let title = if max == 0 {
            "help · any key closes".to_owned()
        } else {
            format!(
                "help {}-{} of {} · ↑↓ PgUp PgDn scroll · other keys close",
                scroll + 1,
                (scroll + rows).min(lines.len()),
                lines.len()
            )
        };
        let inner = frame(self.app, &title, boxed, buf);
        let text: Vec<Line> = lines
            .into_iter()
            .skip(scroll)
            .take(rows)
            .map(Line::raw)
            .collect();
        Paragraph::new(text).render(inner, buf);
    }
}

pub struct Agents<'a> {
    pub app: &'a App,
    pub selected: usize,
}

impl Widget for Agents<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let theme = &app.settings.theme;
        let title = format!(
            "agents · ↑↓ select · a allow · d deny · 1-4 mute, notify, converse, act · {}",
            app.settings.keymap.key(Action::Close)
        );
        let time = |ts: i64| {
            chrono::DateTime::from_timestamp_millis(ts)
                .unwrap_or_default()
                .with_timezone(&app.utc_offset)
                .format("%H:%M:%S")
                .to_string()
        };
        let mut lines = vec![Line::styled(
            "Permission requests",
            Style::default().add_modifier(Modifier::BOLD),
        )];
        if app.approvals.is_empty() {
            lines.push(Line::styled("  none yet", Style::default().fg(theme.muted)));
        }
        for (i, a) in app.approvals.iter().enumerate() {
            let state = match (&a.answer, a.sent) {
                _ if a.lapsed(app.now_ms) => "may have been answered in the terminal".to_owned(),
                (Some((allow, by, at)), _) => {
                    format!(
                        "{} by {by} at {}",
                        if *allow { "allowed" } else { "denied" },
                        time(*at)
                    )
                }
                (None, Some(allow)) => format!("{} sent…", if allow { "allow" } else { "deny" }),
                (None, None) => "waiting".to_owned(),
            };
            let style = if i == self.selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{} {} ", time(a.received), a.agent), style),
                Span::styled(
                    format!("{}: {}", a.tool_name, a.description),
                    style.fg(theme.mention),
                ),
                Span::styled(format!("  [{state}]"), Style::default().fg(theme.muted)),
            ]));
            let preview: String = a.input_preview.chars().take(300).collect();
            lines.push(Line::styled(
                format!("    {preview}"),
                Style::default().fg(theme.muted),
            ));
        }
        lines.push(Line::raw(""));
        let here = app.focused_room().channel().map_or_else(
            || "switch to a channel to change them".to_owned(),
            |c| format!("keys 1-4 set the level in #{c}"),
        );
        lines.push(Line::styled(
            format!("Autonomy ({here}, or /autonomy AGENT LEVEL)"),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        if app.agents.is_empty() {
            lines.push(Line::styled(
                "  no agent of yours is online",
                Style::default().fg(theme.muted),
            ));
        }
        for (i, (path, info)) in app.agents.iter().enumerate() {
            let selected = self.selected == app.approvals.len() + i;
            let mut levels: Vec<String> = info
                .levels
                .iter()
                .map(|(c, l)| format!("#{c} {}", l))
                .collect();
            levels.push(format!("elsewhere {}", info.default));
            if !info.applies {
                levels = vec!["a program (JSON lines): autonomy does not apply".to_owned()];
            }
            let style = if selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {path}  "), style.fg(theme.agent)),
                Span::styled(levels.join(", "), style),
            ]));
        }
        // As big as what it holds (and its title), within the screen less a margin.
        let widest = lines
            .iter()
            .map(Line::width)
            .chain([title.chars().count() + 2])
            .max()
            .unwrap_or(0);
        let width = (widest as u16 + 2)
            .min(area.width.saturating_sub(4))
            .min(100);
        let inner_width = usize::from(width.saturating_sub(2)).max(1);
        let rows: usize = lines
            .iter()
            .map(|l| l.width().div_ceil(inner_width).max(1))
            .sum();
        let height = (rows as u16 + 2).min(area.height.saturating_sub(2));
        let inner = frame(app, &title, centred(area, width, height), buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}
