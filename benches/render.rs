//! How long one frame of a pane holding 100,000 messages takes to draw, and the memory the TUI
//! holds for them. Prints figures; asserts nothing. Run: `cargo bench --bench render`.

use std::time::Instant;

use conclave::app::model::App;
use conclave::app::settings::Settings;
use conclave::app::update::{Msg, Reply, update};
use conclave::app::view::view;
use conclave::net::link::{HistoryPage, JoinReceipt};
use conclave::net::names::{Name, SessionPath};
use conclave::net::protocol::{ChannelInfo, ChatMessage, Visibility};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const MESSAGES: u64 = 100_000;
const FRAMES: u32 = 200;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let general = Name::channel("general").expect("valid name");
    let senders: Vec<SessionPath> = [
        "alice/laptop/tui",
        "bob/desk/cli",
        "alice/laptop/api",
        "carol/ci/bot",
    ]
    .iter()
    .map(|p| SessionPath::parse(p).expect("valid path"))
    .collect();
    let mut app = App::new(
        Settings::defaults(),
        "ws://127.0.0.1:7420".into(),
        chrono::FixedOffset::east_opt(0).expect("offset"),
    );
    update(
        &mut app,
        Msg::Done(Reply::Joined(JoinReceipt {
            channel: ChannelInfo {
                topic: String::new(),
                archived: false,
                name: general.clone(),
                visibility: Visibility::Public,
                member: true,
                last_seq: 0,
                members: 0,
            },
            read_seq: 0,
            new_member: false,
        })),
        1_764_000_000_000,
    );
    let before = rss_kib();
    let mut seq = 0;
    while seq < MESSAGES {
        let messages = (0..1000)
            .map(|i| {
                seq += 1;
                ChatMessage {
from_kind: None,
                    channel: general.clone(),
                    seq,
                    ts: 1_764_000_000_000 + seq as i64 * 1000,
                    from: senders[(seq % 4) as usize].clone(),
                    text: format!("message {seq}: the build of branch feature-{i} finished, all {} tests passed", seq % 700),
                    reply_to: None,
                change: None, edited: None, deleted: false, reactions: Vec::new(),
}
            })
            .collect();
        update(
            &mut app,
            Msg::Done(Reply::History {
                channel: general.clone(),
                page: HistoryPage {
                    messages,
                    more: false,
                },
                older: false,
            }),
            1_764_000_000_000,
        );
    }
    let after = rss_kib();
    let held = app.rooms.iter().map(|r| r.entries.len()).sum::<usize>();

    for (label, width, height, scroll) in [
        ("120x40 at the newest", 120, 40, 0),
        ("120x40 scrolled 2,000 lines up", 120, 40, 2000),
        ("120x40 at the oldest loaded", 120, 40, usize::MAX / 2),
    ] {
        app.panes[0].scroll = scroll;
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal.draw(|f| view(&app, f)).expect("draw");
        let start = Instant::now();
        for _ in 0..FRAMES {
            terminal.draw(|f| view(&app, f)).expect("draw");
        }
        let per_frame = start.elapsed() / FRAMES;
        println!(
            "render  {label}, {held} messages in the pane: {:.3} ms per frame",
            per_frame.as_secs_f64() * 1e3
        );
    }
    println!(
        "memory  {held} messages held: {:.1} MiB resident ({:.0} bytes per message)",
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 * 1024.0 / held as f64
    );
}
