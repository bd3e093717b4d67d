#![allow(clippy::unwrap_used)]
use super::status::brakes_json;
use super::*;
use crate::net::names::Name;
use crate::net::names::SessionPath;
use crate::net::protocol::{ChannelDetails, FOREVER};

fn page(seqs: &[u64]) -> Vec<ChatMessage> {
    seqs.iter()
        .map(|&seq| ChatMessage {
            from_kind: None,
            channel: Name::channel("general").unwrap(),
            seq,
            ts: 0,
            from: SessionPath::parse("bob/m/a").unwrap(),
            text: "x".into(),
            reply_to: None,
            change: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        })
        .collect()
}

#[test]
fn the_send_tool_states_the_size_limit_and_refuses_past_it_in_words() {
    let send = args::specs()
        .into_iter()
        .find(|s| s.name == "send")
        .unwrap();
    let limit = format!("{} KiB", MAX_TEXT_BYTES / 1024);
    assert!(send.description.contains(&limit), "{}", send.description);
    assert!(check_size(&"a".repeat(MAX_TEXT_BYTES)).is_ok());
    let e = check_size(&"a".repeat(MAX_TEXT_BYTES + 1)).unwrap_err();
    assert!(e.contains("limited to 16 KiB (16384 bytes"), "{e}");
    assert!(e.contains("16385 bytes"), "{e}");
}

#[test]
fn a_read_page_names_the_cursor_for_the_next_one() {
    let general = "general";
    let back = next_page(general, None, None, &page(&[8, 9, 10]), true);
    let text = Outcome::Messages {
        messages: labelled(general, page(&[8, 9, 10])),
        more: back.clone(),
    }
    .to_text();
    assert!(
        text.contains("call read(channel=\"general\", before=8)"),
        "{text}"
    );
    let forward = next_page(general, Some(3), Some(20), &page(&[4, 5]), true);
    assert_eq!(
        forward.to_text().unwrap(),
        "Newer messages remain: call read(channel=\"general\", since=5, before=20) for the next page."
    );
    assert_eq!(
        next_page(general, None, None, &page(&[1, 2]), false),
        More::No
    );
    let json = Outcome::Messages {
        messages: labelled(general, page(&[8])),
        more: back,
    }
    .to_json();
    assert_eq!(
        (json["more"].clone(), json["next"].clone()),
        (json!(true), json!({"before": 8}))
    );
}

#[test]
fn status_says_what_the_brakes_mean_for_this_agent() {
    use crate::net::protocol::{ReplyMode, Visibility};
    let me = SessionPath::parse("alice/m/claude").unwrap();
    let mut details = ChannelDetails {
        name: Name::channel("ops").unwrap(),
        visibility: Visibility::Public,
        topic: "deploys".into(),
        archived: false,
        owner: None,
        moderators: Vec::new(),
        role: None,
        muted_until: Some(1_000 + 540_000),
        agent_turns: 20,
        agent_run: 14,
        reply_mode: ReplyMode::Mention,
        slow_seconds: 30,
        floor: Some("alice".into()),
        last_seq: 9,
        pins: vec![crate::net::protocol::Pin::of(
            3,
            SessionPath::parse("bob/m/tui").unwrap(),
            "review every PR",
            Name::user("bob").unwrap(),
        )],
    };
    let brakes = Value::Object(brakes_json(&details, &me, 1_000));
    assert_eq!(
        brakes,
        json!({
            "reply_mode": "mention",
            "agent_turns_left": 6,
            "slow_mode": "one message every 30s per agent",
            "muted": "for 9m",
            "archived": false,
            "topic": "deploys",
            "holds_floor": true,
            "pinned": [{"seq": 3, "from": "bob/m/tui", "text": "review every PR"}],
        })
    );
    details.agent_turns = 0;
    details.muted_until = Some(FOREVER);
    details.slow_seconds = 0;
    details.floor = Some("bob/m/bot".into());
    let brakes = brakes_json(&details, &me, 1_000);
    assert_eq!(brakes["agent_turns_left"], "unlimited");
    assert_eq!(brakes["muted"], "until a moderator unmutes you");
    assert_eq!(brakes["slow_mode"], "off");
    assert_eq!(brakes["holds_floor"], false);
    details.muted_until = Some(999);
    assert_eq!(
        brakes_json(&details, &me, 1_000)["muted"],
        Value::Null,
        "expired"
    );
}
