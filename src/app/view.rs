//! `view(&App, &mut Frame)`: the whole screen as a pure function of the model.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::model::{App, Overlay, Split};
use super::text::wrap;
use super::widgets::members::Members;
use super::widgets::messages::Messages;
use super::widgets::overlays::{Agents, Help};
use super::widgets::sidebar::Sidebar;
use super::widgets::status::{StatusLine, banner};

/// Below this width the sidebar goes; below `WIDE` the member list does.
const NARROW: u16 = 60;
const WIDE: u16 = 100;

pub fn view(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let banner = banner(app);
    // The box soft-wraps: it grows with the wrapped draft, up to five rows, then scrolls.
    let rows: usize = app
        .input
        .lines()
        .iter()
        .map(|line| wrap(line, usize::from(area.width.max(1))).len())
        .sum();
    let input_height = (rows.min(5) as u16).max(1) + 1;
    let [main, banner_area, input_area, status_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(u16::from(banner.is_some())),
        Constraint::Length(input_height),
        Constraint::Length(1),
    ])
    .areas(area);

    let sidebar_width = if area.width >= NARROW {
        (area.width / 6).clamp(14, 24)
    } else {
        0
    };
    let members_width = if area.width >= WIDE {
        (area.width / 4).clamp(18, 32)
    } else {
        0
    };
    let [sidebar, panes, members] = Layout::horizontal([
        Constraint::Length(sidebar_width),
        Constraint::Min(10),
        Constraint::Length(members_width),
    ])
    .areas(main);
    if sidebar_width > 0 {
        frame.render_widget(Sidebar { app }, sidebar);
    } else {
        // No sidebar, nothing to click.
        app.sidebar_area.set(Rect::default());
    }
    if members_width > 0 {
        frame.render_widget(Members { app }, members);
    }

    let direction = match app.split {
        Split::SideBySide => Direction::Horizontal,
        Split::Stacked => Direction::Vertical,
    };
    let pane_areas = Layout::default()
        .direction(direction)
        .constraints(vec![Constraint::Fill(1); app.panes.len()])
        .split(panes);
    // The sidebar and the member list draw the lines beside the panes; panes draw only a
    // title line, and a line between side-by-side panes.
    let last = app.panes.len().saturating_sub(1);
    for (i, (pane, pane_area)) in app.panes.iter().zip(pane_areas.iter()).enumerate() {
        frame.render_widget(
            Messages {
                app,
                pane,
                focused: i == app.focus,
                right_border: app.split == Split::SideBySide && i < last,
            },
            *pane_area,
        );
    }

    if let Some(line) = banner {
        frame.render_widget(Paragraph::new(line), banner_area);
    }
    render_input(app, frame, input_area);
    frame.render_widget(StatusLine { app }, status_area);

    match app.overlay {
        Some(Overlay::Help { scroll }) => frame.render_widget(Help { app, scroll }, area),
        Some(Overlay::Agents { selected }) => frame.render_widget(Agents { app, selected }, area),
        None => {}
    }
}

fn render_input(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.settings.theme;
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(
            match &app.name_taken {
                Some(_) => " pick a user name (Enter) ".to_owned(),
                None => format!(" to {} ", app.room_label(app.focused_room())),
            },
            Style::default().fg(theme.muted),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(search) = &app.search {
        let state = if search.failed {
            "  (no more matches)"
        } else {
            ""
        };
        let line = Line::from(vec![
            Span::styled(
                "search: ",
                Style::default()
                    .fg(theme.accent)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(search.query.clone()),
            Span::styled(state, Style::default().fg(theme.error)),
        ]);
        frame.render_widget(Paragraph::new(line), inner);
        let x = inner.x + 8 + search.query.chars().count() as u16;
        frame.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
        return;
    }
    frame.render_widget(&app.input, inner);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::Terminal;
    use ratatui::style::Modifier;

    use crate::app::model::RoomId;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    use super::*;
    use crate::app::update::tests::{
        connected, key, key_with, live, message, name, path, type_text, update, who_in_general,
    };
    use crate::app::update::{Msg, Reply};
    use crate::net::link::{HistoryPage, LinkEvent};
    use crate::net::protocol::{Autonomy, ChannelAutonomy, RelayBody, SessionKind};

    fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| view(app, f)).unwrap();
        terminal
    }

    /// #general with a conversation, bob's agent online and reporting, unread in #ops.
    fn busy() -> App {
        let mut app = connected();
        let history = vec![
            message("general", 1, "bob/desk/cli", "morning! the deploy is green"),
            message("general", 2, "alice/laptop/tui", "great, thanks"),
            message(
                "general",
                3,
                "alice/laptop/api",
                "I opened a PR for the flaky test",
            ),
            message("general", 4, "bob/desk/cli", "@alice can you review it?"),
        ];
        update(
            &mut app,
            Msg::Done(Reply::History {
                channel: name("general"),
                page: HistoryPage {
                    messages: history,
                    more: false,
                },
                older: false,
            }),
        );
        update(
            &mut app,
            who_in_general(
                &[
                    ("alice/laptop/api", SessionKind::Agent),
                    ("alice/laptop/tui", SessionKind::Human),
                ],
                &["alice", "bob"],
                false,
            ),
        );
        update(
            &mut app,
            Msg::Link(LinkEvent::Relay {
                from: path("alice/laptop/api"),
                from_kind: SessionKind::Agent,
                body: RelayBody::AutonomyReport {
                    levels: vec![ChannelAutonomy {
                        channel: name("general"),
                        level: Autonomy::Converse,
                    }],
                    default: Autonomy::Notify,
                    not_applicable: false,
                },
            }),
        );
        for seq in 1..=3 {
            live(&mut app, message("ops", seq, "carol/ci/bot", "build ok"));
        }
        app
    }

    #[test]
    fn a_room_closed_to_me_is_struck_through_in_the_sidebar() {
        let mut app = busy();
        let ops = app.room_index(&RoomId::Channel(name("ops"))).unwrap();
        let terminal = draw(&app, 80, 20);
        let row = |terminal: &Terminal<TestBackend>| {
            let buffer = terminal.backend().buffer();
            (0..20)
                .find(|&y| buffer[(0, y)].symbol() == "#" && buffer[(1, y)].symbol() == "o")
                .map(|y| buffer[(1, y)].modifier)
                .unwrap()
        };
        assert!(!row(&terminal).contains(Modifier::CROSSED_OUT));
        app.rooms[ops].closed = Some("kicked".into());
        assert!(row(&draw(&app, 80, 20)).contains(Modifier::CROSSED_OUT));
    }

    #[test]
    fn main_screen() {
        insta::assert_snapshot!(draw(&busy(), 100, 20).backend());
    }

    #[test]
    fn narrow_terminal() {
        insta::assert_snapshot!(draw(&busy(), 40, 12).backend());
    }

    #[test]
    fn split_panes() {
        let mut app = busy();
        type_text(&mut app, "/split");
        key(&mut app, KeyCode::Enter);
        key_with(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
        insta::assert_snapshot!(draw(&app, 100, 16).backend());
    }

    #[test]
    fn help_overlay() {
        let mut app = busy();
        key(&mut app, KeyCode::F(1));
        insta::assert_snapshot!(draw(&app, 100, 30).backend());
    }

    #[test]
    fn help_at_60x20_scrolls_to_its_last_line() {
        let mut app = busy();
        key(&mut app, KeyCode::F(1));
        let first = format!("{:?}", draw(&app, 60, 20).backend());
        assert!(first.contains("help 1-18 of"), "{first}");
        key(&mut app, KeyCode::End);
        insta::assert_snapshot!(draw(&app, 60, 20).backend());
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.overlay, None);
    }

    #[test]
    fn a_reply_shows_the_start_of_what_it_answers_above_it() {
        let mut app = connected();
        live(
            &mut app,
            message("general", 1, "bob/desk/cli", "ship it?\nsecond line"),
        );
        let mut reply = message("general", 2, "carol/desk/cli", "yes");
        reply.reply_to = Some(1);
        live(&mut app, reply);
        let mut gone = message("general", 3, "carol/desk/cli", "and that");
        gone.reply_to = Some(0);
        live(&mut app, gone);
        insta::assert_snapshot!(draw(&app, 80, 12).backend());
    }

    #[test]
    fn edits_deletes_and_reactions_change_the_message_in_place() {
        let mut app = connected();
        live(&mut app, message("general", 1, "bob/desk/cli", "helo all"));
        live(
            &mut app,
            message("general", 2, "carol/desk/cli", "a mistake"),
        );
        let change = |seq, from, change, text| crate::net::protocol::ChatMessage {
            change: Some(change),
            ..message("general", seq, from, text)
        };
        use crate::net::protocol::Change;
        live(
            &mut app,
            change(3, "bob/desk/cli", Change::Edit { target: 1 }, "hello all"),
        );
        live(
            &mut app,
            change(4, "carol/desk/cli", Change::Delete { target: 2 }, ""),
        );
        let react = |seq, from| {
            change(
                seq,
                from,
                Change::React {
                    target: 1,
                    removed: false,
                },
                "👍",
            )
        };
        live(&mut app, react(5, "carol/desk/cli"));
        live(&mut app, react(6, "dave/desk/cli"));
        live(
            &mut app,
            change(
                7,
                "dave/desk/cli",
                Change::React {
                    target: 1,
                    removed: false,
                },
                "seen",
            ),
        );
        insta::assert_snapshot!(draw(&app, 80, 12).backend());
        // In a room out of view, a change adds nothing to the unread count.
        live(&mut app, message("ops", 1, "bob/desk/cli", "deploying"));
        let edit = crate::net::protocol::ChatMessage {
            change: Some(Change::Edit { target: 1 }),
            ..message("ops", 2, "bob/desk/cli", "deployed")
        };
        live(&mut app, edit);
        let ops = app.room_index(&RoomId::Channel(name("ops"))).unwrap();
        assert_eq!(app.rooms[ops].unread, 1, "changes are not unread messages");
    }

    #[test]
    fn the_newest_pin_sits_atop_the_pane_and_pin_acts_ask_for_the_pins_again() {
        use crate::app::update::Cmd;
        use crate::app::update::tests::moderation;
        use crate::net::protocol::{ChannelAct, Pin};
        let mut app = connected();
        live(
            &mut app,
            message("general", 1, "bob/desk/cli", "freeze until Friday"),
        );
        live(&mut app, message("general", 2, "carol/desk/cli", "noted"));
        let asked = update(
            &mut app,
            moderation("general", "bob/desk/tui", ChannelAct::Pin { seq: 1 }, None),
        );
        assert!(
            matches!(&asked[..], [Cmd::Describe(c)] if c.as_str() == "general"),
            "{asked:?}"
        );
        let pin = |seq: u64, text: &str| {
            Pin::of(
                seq,
                path("bob/desk/cli"),
                text,
                crate::net::names::Name::user("bob").unwrap(),
            )
        };
        let mut details = crate::app::update::tests::details("general");
        details.pins = vec![pin(1, "freeze until Friday"), pin(7, "older")];
        update(&mut app, Msg::Done(Reply::Details(Box::new(details))));
        insta::assert_snapshot!(draw(&app, 80, 10).backend());
    }

    #[test]
    fn reconnect_banner() {
        let mut app = busy();
        update(
            &mut app,
            Msg::Link(LinkEvent::Disconnected {
                reason: "connection refused".into(),
                retry_in: std::time::Duration::from_secs(3),
            }),
        );
        insta::assert_snapshot!(draw(&app, 100, 12).backend());
    }

    #[test]
    fn wide_characters_and_a_long_wrapped_message() {
        let mut app = connected();
        let long = "a long message that goes on and on so that it must wrap over several lines of the pane without losing a word";
        for (seq, text) in [
            (1, "日本語のテキストも折り返します 🦀🦀🦀 emoji too"),
            (2, long),
        ] {
            live(&mut app, message("general", seq, "bob/desk/cli", text));
        }
        insta::assert_snapshot!(draw(&app, 50, 14).backend());
    }

    #[test]
    fn permission_request_banner_and_agents_view() {
        let mut app = busy();
        update(
            &mut app,
            Msg::Link(LinkEvent::Relay {
                from: path("alice/laptop/api"),
                from_kind: SessionKind::Agent,
                body: RelayBody::PermissionRequest {
                    request_id: "abcde".into(),
                    tool_name: "Bash".into(),
                    description: "run cargo test".into(),
                    input_preview: "{\"command\":\"cargo test\"}".into(),
                    expires_in_ms: 300_000,
                },
            }),
        );
        insta::assert_snapshot!("banner", draw(&app, 100, 12).backend());
        key(&mut app, KeyCode::F(2));
        insta::assert_snapshot!("agents", draw(&app, 100, 16).backend());
        // Past its time it may have been settled in Claude Code's own dialog.
        let expires = app.approvals[0].expires;
        crate::app::update::tests::update_at(&mut app, Msg::Tick, expires);
        let screen = format!("{:?}", draw(&app, 100, 16).backend());
        assert!(
            screen.contains("[may have been answered in the terminal]"),
            "{screen}"
        );
    }

    #[test]
    fn scrolled_up_with_new_messages_below() {
        let mut app = busy();
        key(&mut app, KeyCode::PageUp);
        live(&mut app, message("general", 5, "bob/desk/cli", "ping"));
        insta::assert_snapshot!(draw(&app, 100, 12).backend());
    }

    #[test]
    fn search_brings_the_match_into_view() {
        let mut app = connected();
        for seq in 1..=40 {
            let text = format!("line {seq} of a long discussion that wraps over two lines here");
            live(&mut app, message("general", seq, "bob/desk/cli", &text));
        }
        draw(&app, 60, 14);
        key_with(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
        type_text(&mut app, "line 3 ");
        key(&mut app, KeyCode::Enter);
        let screen = format!("{:?}", draw(&app, 60, 14).backend());
        assert!(screen.contains("line 3 of a long"), "{screen}");
    }

    #[test]
    fn what_i_typed_shows_pending_then_failed_with_its_reason() {
        let mut app = busy();
        type_text(&mut app, "on its way");
        key(&mut app, KeyCode::Enter);
        type_text(&mut app, "this one fails");
        key(&mut app, KeyCode::Enter);
        update(
            &mut app,
            Msg::Done(Reply::NotSent {
                id: 2,
                error: "you are not a member of #general".into(),
            }),
        );
        insta::assert_snapshot!(draw(&app, 100, 12).backend());
    }

    #[test]
    fn a_long_draft_wraps_in_the_input_box_instead_of_scrolling_sideways() {
        let mut app = busy();
        type_text(
            &mut app,
            "a draft long enough to need more than one row of the input box, so it wraps at words",
        );
        insta::assert_snapshot!(draw(&app, 60, 12).backend());
    }

    #[test]
    fn one_line_between_regions_never_two() {
        let mut app = busy();
        for screen in [draw(&app, 100, 20), draw(&app, 60, 12)] {
            let text = format!("{:?}", screen.backend());
            for double in ["││", "│┌", "┐│", "│└", "┘│"] {
                assert!(!text.contains(double), "{double} in\n{text}");
            }
        }
        type_text(&mut app, "/split");
        key(&mut app, KeyCode::Enter);
        let text = format!("{:?}", draw(&app, 100, 20).backend());
        assert!(!text.contains("││"), "{text}");
    }

    #[test]
    fn the_sidebar_shows_mentions_and_the_unread_count_together() {
        let mut app = busy();
        live(&mut app, message("ops", 4, "carol/ci/bot", "@alice look"));
        let text = format!("{:?}", draw(&app, 100, 20).backend());
        assert!(text.contains("#ops       @1 4│"), "{text}");
    }

    #[test]
    fn alt_a_shows_the_new_marker_at_the_top_of_the_pane() {
        let mut app = busy();
        for seq in 4..=40 {
            live(
                &mut app,
                message("ops", seq, "carol/ci/bot", &format!("build {seq}")),
            );
        }
        draw(&app, 100, 20);
        key_with(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
        let screen = draw(&app, 100, 20);
        let row = |y: u16| {
            (15..85)
                .map(|x| screen.backend().buffer()[(x, y)].symbol().to_owned())
                .collect::<String>()
        };
        assert!(row(1).contains(" new "), "{:?}", screen.backend());
        assert!(row(2).contains("build ok"), "{:?}", screen.backend());
    }

    #[test]
    fn a_click_lands_on_the_sidebar_only_while_it_is_drawn() {
        use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mut app = busy();
        let click = Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 2,
            row: 2,
            modifiers: KeyModifiers::NONE,
        });
        draw(&app, 100, 20);
        draw(&app, 40, 12);
        update(&mut app, click);
        assert_eq!(
            app.focused_room().id.label(),
            "#general",
            "no sidebar at 40 columns"
        );
        draw(&app, 100, 20);
        let click = Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 2,
            row: 2,
            modifiers: KeyModifiers::NONE,
        });
        update(&mut app, click);
        assert_eq!(app.focused_room().id.label(), "#ops");
    }

    #[test]
    fn the_topic_sits_in_the_pane_title_cut_to_fit_beside_a_moderation_line() {
        use crate::app::update::tests::{moderation, user};
        use crate::net::protocol::ChannelAct;
        let mut app = busy();
        let topic = ChannelAct::Topic {
            topic: "deploys go through @claude; humans review every PR before merge".into(),
        };
        update(&mut app, moderation("general", "bob/desk/tui", topic, None));
        let mute = ChannelAct::Mute {
            user: user("carol"),
            for_ms: Some(600_000),
        };
        let reason = Some("spamming");
        update(
            &mut app,
            moderation("general", "bob/desk/tui", mute, reason),
        );
        insta::assert_snapshot!(draw(&app, 100, 12).backend());
        update(
            &mut app,
            moderation("general", "bob/desk/tui", ChannelAct::Archive, None),
        );
        let screen = format!("{:?}", draw(&app, 100, 12).backend());
        assert!(
            screen.contains(" #general archived · deploys go"),
            "{screen}"
        );
    }

    #[test]
    fn the_audit_view_reads_like_a_room_oldest_first() {
        use crate::app::update::AuditPage;
        use crate::net::protocol::AuditEntry;
        let mut app = busy();
        type_text(&mut app, "/audit");
        key(&mut app, KeyCode::Enter);
        let entry = |id: u64, action: &str, detail: &str, reason: Option<&str>| AuditEntry {
            id,
            ts: 1_764_000_000_000 + id as i64 * 60_000,
            by: path("alice/laptop/tui"),
            action: action.into(),
            channel: Some(name("general")),
            target: None,
            detail: detail.into(),
            reason: reason.map(Into::into),
        };
        let entries = vec![
            entry(3, "floor", "gave the floor to @claude", None),
            entry(2, "mute", "muted carol for 10m", Some("spamming")),
            entry(1, "topic", "set the topic: ship it", None),
        ];
        update(
            &mut app,
            Msg::Done(Reply::Audit {
                channel: name("general"),
                older: false,
                page: Ok(AuditPage {
                    entries,
                    more: false,
                }),
            }),
        );
        insta::assert_snapshot!(draw(&app, 100, 12).backend());
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let app = busy();
        for (w, h) in [(20, 5), (1, 1), (10, 3), (0, 0)] {
            draw(&app, w, h);
        }
    }
}
