//! Keys and the mouse: input history, scrolling, search, help, shell keys, the sidebar.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn up_and_down_on_an_empty_box_walk_the_input_history() {
    let mut app = connected();
    for text in ["one", "two"] {
        type_text(&mut app, text);
        key(&mut app, KeyCode::Enter);
    }
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["two"]);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["one"]);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input.lines(), ["one"]);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input.lines(), ["two"]);
    key(&mut app, KeyCode::Down);
    assert!(app.input.is_empty());
}

#[test]
fn scrolling_past_the_oldest_loaded_message_pages_older_history() {
    let mut app = connected();
    history(&mut app, 51..=60, true, false);
    assert!(!room(&app, "general").older_exhausted);
    // The view found the oldest entry on screen.
    app.panes[0].at_top.set(true);
    let cmds = key(&mut app, KeyCode::PageUp);
    assert_eq!(
        cmds,
        [Cmd::History {
            channel: name("general"),
            before: Some(51),
            after: None
        }]
    );
    // One request at a time.
    assert!(key(&mut app, KeyCode::PageUp).is_empty());
    history(&mut app, 41..=50, false, true);
    let r = room(&app, "general");
    assert_eq!(
        (r.oldest_seq(), r.newest_seq(), r.entries.len()),
        (Some(41), Some(60), 20)
    );
    assert!(r.older_exhausted);
    assert!(key(&mut app, KeyCode::PageUp).is_empty());

    // New messages while scrolled up are counted, End goes back down.
    live(&mut app, message("general", 61, "bob/desk/cli", "new"));
    assert_eq!(app.panes[0].unseen, 1);
    key(&mut app, KeyCode::End);
    assert_eq!((app.panes[0].scroll, app.panes[0].unseen), (0, 0));
}

#[test]
fn scrolling_settles_at_the_top_the_view_found() {
    let mut app = connected();
    for _ in 0..5 {
        key(&mut app, KeyCode::PageUp);
    }
    // The last draw found the whole room fits 3 lines of scrolling.
    app.panes[0].max_scroll.set(Some(3));
    key(&mut app, KeyCode::PageUp);
    assert!(app.panes[0].scroll <= 3 + app.panes[0].viewport.get() as usize);
    update(&mut app, Msg::Tick);
    assert_eq!(
        app.panes[0].scroll, 3,
        "clamped before anything else happens"
    );
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.panes[0].scroll, 0, "PageDown moves at once");
}

#[test]
fn search_finds_older_then_newer_matches() {
    let mut app = connected();
    for (seq, text) in [(1, "deploy started"), (2, "lunch"), (3, "deploy done")] {
        live(&mut app, message("general", seq, "bob/desk/cli", text));
    }
    key_with(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    type_text(&mut app, "DEPLOY");
    key(&mut app, KeyCode::Enter);
    let hit = |app: &App| {
        app.search
            .as_ref()
            .unwrap()
            .hit
            .map(|i| app.focused_room().entries[i].text.clone())
    };
    assert_eq!(hit(&app).as_deref(), Some("deploy done"));
    key(&mut app, KeyCode::Enter);
    assert_eq!(hit(&app).as_deref(), Some("deploy started"));
    key(&mut app, KeyCode::Enter);
    assert!(app.search.as_ref().unwrap().failed);
    key(&mut app, KeyCode::Down);
    assert_eq!(hit(&app).as_deref(), Some("deploy done"));
    key(&mut app, KeyCode::Esc);
    assert!(app.search.is_none());
}

#[test]
fn help_opens_with_f1_or_question_mark_on_an_empty_box() {
    let mut app = connected();
    key(&mut app, KeyCode::F(1));
    assert_eq!(app.overlay, Some(Overlay::Help { scroll: 0 }));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(app.overlay, Some(Overlay::Help { scroll: 0 }));
    key(&mut app, KeyCode::Char('x'));
    type_text(&mut app, "why?");
    assert_eq!(app.overlay, None, "? inside text is text");
    assert_eq!(app.input.lines(), ["why?"]);
}

#[test]
fn pasted_lines_keep_their_breaks_and_never_send_a_bare_cr() {
    let mut app = connected();
    update(&mut app, Msg::Paste("A\rB\r\nC".into()));
    type_text(&mut app, "\rD");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Cmd::Send {
            channel: name("general"),
            text: "A\nB\nC\nD".into(),
            id: 1,
            reply_to: None,
        }]
    );
}

#[test]
fn shell_keys_ctrl_u_clears_to_the_line_start_and_ctrl_z_undoes() {
    let mut app = connected();
    type_text(&mut app, "a draft to drop");
    key_with(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert!(app.input.is_empty(), "{:?}", app.input.lines());
    key_with(&mut app, KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(app.input.lines(), ["a draft to drop"]);
}

#[test]
fn ctrl_c_drops_a_draft_first_and_quits_from_an_empty_box() {
    let mut app = connected();
    type_text(&mut app, "half a thought");
    key_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(app.input.is_empty());
    assert!(!app.quit);
    key_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(app.quit);
}

#[test]
fn alt_m_gives_the_mouse_to_the_terminal_and_back() {
    let mut app = connected();
    assert_eq!(
        key_with(&mut app, KeyCode::Char('m'), KeyModifiers::ALT),
        [Cmd::MouseCapture(false)]
    );
    assert!(!app.mouse_capture);
    assert_eq!(
        key_with(&mut app, KeyCode::Char('m'), KeyModifiers::ALT),
        [Cmd::MouseCapture(true)]
    );
}

#[test]
fn a_click_on_the_sidebar_shows_that_room() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut app = connected();
    // As drawn: the sidebar's rows from the top, one room each (home, #general, #ops).
    app.sidebar_area
        .set(ratatui::layout::Rect::new(0, 0, 14, 10));
    let click = |column, row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut app, click(3, 2));
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
    update(&mut app, click(3, 0));
    assert_eq!(app.focused_room().id, RoomId::Home);
    update(&mut app, click(3, 7));
    update(&mut app, click(30, 1));
    assert_eq!(
        app.focused_room().id,
        RoomId::Home,
        "below the rooms or outside: nothing"
    );
}

#[test]
fn alt_a_opens_at_the_new_marker_not_the_bottom() {
    let mut app = connected();
    for seq in 1..=30 {
        live(&mut app, message("ops", seq, "bob/desk/cli", "x"));
    }
    // As the pane was last drawn: 10 rows, 80 columns.
    app.panes[0].viewport.set(10);
    app.panes[0].width.set(80);
    key_with(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(app.focused_room().id, RoomId::Channel(name("ops")));
    // 30 one-line messages and the marker line: the marker at the top of 10 rows.
    assert_eq!(app.panes[0].scroll, 21);
}
