//! One TUI on two servers: each server's rooms, connection and commands stay its own.

use super::*;
use crate::app::model::{ServerView, SidebarRow};

/// A TUI on `work` (first) and `home`, connected to both, #general joined on each and
/// #general of `work` in view.
fn on_two_servers() -> App {
    let servers = vec![
        ServerView::new("work".into(), "ws://work:7420".into()),
        ServerView::new("home".into(), "ws://home:7420".into()),
    ];
    let offset = chrono::FixedOffset::east_opt(0).unwrap();
    let mut app = App::on_servers(Settings::defaults(), servers, offset);
    for server in [0, 1] {
        let connected = LinkEvent::Connected {
            path: path(if server == 0 {
                "alice/laptop/tui"
            } else {
                "al/pc/tui"
            }),
            server_id: format!("s{server}"),
            admin: false,
        };
        update(&mut app, on(server, Msg::Link(connected)));
        update(
            &mut app,
            on(server, Msg::Done(Reply::Joined(joined("general")))),
        );
    }
    app
}

fn on(server: usize, msg: Msg) -> Msg {
    Msg::On {
        server,
        msg: Box::new(msg),
    }
}

fn general_on(app: &App, server: usize) -> usize {
    let id = RoomId::Channel(name("general"));
    app.rooms
        .iter()
        .position(|r| r.id == id && r.server == server)
        .unwrap()
}

#[test]
fn a_channel_of_the_same_name_on_two_servers_is_two_rooms() {
    let mut app = on_two_servers();
    let (work, home) = (general_on(&app, 0), general_on(&app, 1));
    assert_ne!(work, home);
    let m = message("general", 1, "bob/desk/cli", "from home");
    update(&mut app, on(1, Msg::Link(LinkEvent::Message(m))));
    assert_eq!(app.rooms[home].entries.back().unwrap().text, "from home");
    assert!(
        app.rooms[work]
            .entries
            .iter()
            .all(|e| e.text != "from home")
    );
    assert_eq!(app.rooms[home].unread, 1);
}

#[test]
fn what_is_typed_goes_to_the_focused_room_s_server() {
    let mut app = on_two_servers();
    let home = general_on(&app, 1);
    super::super::open_room(&mut app, home);
    type_text(&mut app, "hi home");
    let cmds = key(&mut app, KeyCode::Enter);
    assert!(matches!(&cmds[..], [Cmd::Send { text, .. }] if text == "hi home"));
    assert_eq!(app.active, 1, "the send goes to home's link");
    // The message I typed shows as mine on that server.
    let mine = app.rooms[home].entries.back().unwrap();
    assert_eq!(mine.from, Some(path("al/pc/tui")));
}

#[test]
fn a_command_may_name_another_server_and_an_unknown_one_is_refused() {
    let mut app = on_two_servers();
    assert_eq!(app.focused_room().server, 0);
    type_text(&mut app, "/join ops@home");
    let cmds = key(&mut app, KeyCode::Enter);
    assert!(matches!(&cmds[..], [Cmd::Join { channel, .. }] if channel == &name("ops")));
    assert_eq!(app.active, 1);
    update(&mut app, on(1, Msg::Done(Reply::Joined(joined("ops")))));
    let ops = app.focused_room();
    assert_eq!(
        (ops.id.clone(), ops.server),
        (RoomId::Channel(name("ops")), 1)
    );

    type_text(&mut app, "/join ops@nowhere");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let said = &app.focused_room().entries.back().unwrap().text;
    assert!(said.contains("no server `nowhere`"), "{said}");
}

#[test]
fn one_server_going_down_shows_on_its_own_rooms_only() {
    let mut app = on_two_servers();
    let down = LinkEvent::Disconnected {
        reason: "connection lost".into(),
        retry_in: Duration::from_secs(3),
    };
    update(&mut app, on(1, Msg::Link(down)));
    assert!(matches!(
        app.servers[1].connection,
        Connection::Reconnecting { .. }
    ));
    assert_eq!(app.servers[0].connection, Connection::Connected);
    assert_eq!(app.focused_server().alias, "work");
    assert!(crate::app::widgets::status::banner(&app).is_none());
    let home = general_on(&app, 1);
    super::super::open_room(&mut app, home);
    assert!(crate::app::widgets::status::banner(&app).is_some());
}

#[test]
fn the_sidebar_groups_rooms_under_their_server() {
    let app = on_two_servers();
    let rows = app.sidebar_rows();
    let (work, home) = (general_on(&app, 0), general_on(&app, 1));
    assert_eq!(
        rows,
        [
            SidebarRow::Room(0),
            SidebarRow::Server(0),
            SidebarRow::Room(work),
            SidebarRow::Server(1),
            SidebarRow::Room(home),
        ]
    );
}

#[test]
fn reads_are_marked_through_the_room_s_own_server() {
    let mut app = on_two_servers();
    let m = message("general", 4, "bob/desk/cli", "x");
    update(&mut app, on(0, Msg::Link(LinkEvent::Message(m))));
    // The tick for home marks nothing: #general of work is the room in view.
    assert!(update(&mut app, on(1, Msg::Tick)).is_empty());
    let cmds = update(&mut app, on(0, Msg::Tick));
    assert!(matches!(&cmds[..], [Cmd::MarkRead { seq: 4, .. }]));
}

#[test]
fn two_servers_on_screen() {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut app = on_two_servers();
    let m = message("general", 1, "bob/desk/cli", "from home");
    update(&mut app, on(1, Msg::Link(LinkEvent::Message(m))));
    let down = LinkEvent::Disconnected {
        reason: "connection lost".into(),
        retry_in: Duration::from_secs(3),
    };
    update(&mut app, on(1, Msg::Link(down)));
    let mut terminal = Terminal::new(TestBackend::new(80, 12)).unwrap();
    terminal.draw(|f| crate::app::view::view(&app, f)).unwrap();
    insta::assert_snapshot!(terminal.backend());
}
