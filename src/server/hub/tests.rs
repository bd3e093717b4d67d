#![allow(clippy::unwrap_used)]
use super::*;
use crate::server::outbox::{Frames, MAX_QUEUED_BYTES};
use tokio_util::sync::CancellationToken;

pub(super) fn path(s: &str) -> SessionPath {
    SessionPath::parse(s).unwrap()
}

pub(super) fn outbox(capacity: usize) -> (Outbox, Frames) {
    let control = Control::new(&CancellationToken::new());
    Outbox::new(capacity, MAX_QUEUED_BYTES, control)
}

pub(super) fn attach(hub: &Hub, claim: Claim, outbox: Outbox) -> Result<Attached, ProtocolError> {
    let checked = hub.epoch(claim.user_id);
    hub.attach(claim, outbox, checked).map_err(|r| match r {
        Refusal::Refused(e) => e,
        Refusal::Stale => panic!("no revocation happened"),
    })
}

pub(super) fn subscribe(
    hub: &Hub,
    channel_id: ChannelId,
    channel: &Name,
    last_seq: u64,
    attached: &Attached,
    change: PresenceChange,
    joined: impl FnOnce(u64) -> ServerFrame,
) {
    let room = RoomRef {
        id: channel_id,
        name: channel,
        stored_last_seq: last_seq,
    };
    let user_id = hub.lock().sessions[&attached.path].user_id;
    let checked = hub.epoch(user_id);
    assert!(
        hub.subscribe(room, attached, change, checked, joined)
            .is_ok()
    );
}

pub(super) fn decode(bytes: &Bytes) -> ServerFrame {
    codec::decode(bytes).unwrap()
}

pub(super) fn message(seq: u64) -> ChatMessage {
    ChatMessage {
        from_kind: None,
        channel: Name::channel("general").unwrap(),
        seq,
        ts: 0,
        from: path("alice/laptop/cli"),
        text: format!("m{seq}"),
        reply_to: None,
        change: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
    }
}

pub(super) fn claim(
    user_id: UserId,
    base: SessionPath,
    kind: SessionKind,
    policy: OnConflict,
) -> Claim {
    Claim {
        user_id,
        elsewhere: HashSet::new(),
        base,
        kind,
        policy,
        instance: None,
    }
}

pub(super) fn joined_frame(last_seq: u64) -> ServerFrame {
    ServerFrame::Done { id: last_seq }
}

#[test]
fn handles_clash_by_policy() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let first = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/api"),
            SessionKind::Agent,
            OnConflict::Suffix,
        ),
        a.clone(),
    )
    .unwrap();
    assert_eq!(first.path.to_string(), "alice/laptop/api");
    let second = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/api"),
            SessionKind::Agent,
            OnConflict::Suffix,
        ),
        a.clone(),
    )
    .unwrap();
    assert_eq!(second.path.to_string(), "alice/laptop/api-2");
    let e = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/api"),
            SessionKind::Agent,
            OnConflict::Refuse,
        ),
        a.clone(),
    )
    .unwrap_err();
    assert_eq!(e.code, crate::net::protocol::ErrorCode::Conflict);

    let (b, _rb) = outbox(8);
    let replacing = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/api"),
            SessionKind::Agent,
            OnConflict::Replace,
        ),
        b,
    )
    .unwrap();
    assert!(a.control.is_closed());
    assert_eq!(a.control.reason().0, CloseReason::Replaced);
    // The replaced connection's late detach must not remove its successor.
    hub.detach(&first);
    assert_eq!(hub.who(None).len(), 2);
    hub.detach(&replacing);
    assert_eq!(hub.who(None).len(), 1);
}

#[test]
fn a_reconnect_takes_back_only_its_own_path() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let (b, _rb) = outbox(8);
    let (c, _rc) = outbox(8);
    let mut mine = claim(
        1,
        path("alice/laptop/api"),
        SessionKind::Agent,
        OnConflict::Suffix,
    );
    mine.instance = Some("one".into());
    attach(&hub, mine.clone(), a.clone()).unwrap();
    // The same instance again (its old connection not yet reaped): replaced.
    let again = attach(&hub, mine.clone(), b.clone()).unwrap();
    assert_eq!(again.path.to_string(), "alice/laptop/api");
    assert!(a.control.is_closed());
    // Another instance asking for the path gets the policy, and evicts no one.
    let mut other = mine.clone();
    other.instance = Some("two".into());
    let suffixed = attach(&hub, other, c).unwrap();
    assert_eq!(suffixed.path.to_string(), "alice/laptop/api-2");
    assert!(!b.control.is_closed());
}

#[test]
fn join_answer_precedes_live_messages_and_presence_is_announced() {
    let hub = Hub::default();
    let (a, mut ra) = outbox(8);
    let (b, mut rb) = outbox(8);
    let alice = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a,
    )
    .unwrap();
    let bob = attach(
        &hub,
        claim(
            2,
            path("bob/desk/bot"),
            SessionKind::Agent,
            OnConflict::Refuse,
        ),
        b,
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    subscribe(
        &hub,
        7,
        &general,
        3,
        &alice,
        PresenceChange::Joined,
        joined_frame,
    );
    assert_eq!(decode(&ra.try_recv().unwrap()), ServerFrame::Done { id: 3 });
    subscribe(
        &hub,
        7,
        &general,
        3,
        &bob,
        PresenceChange::Joined,
        joined_frame,
    );
    assert_eq!(decode(&rb.try_recv().unwrap()), ServerFrame::Done { id: 3 });
    match decode(&ra.try_recv().unwrap()) {
        ServerFrame::Presence(p) => {
            assert_eq!(p.session.path, bob.path);
            assert_eq!(p.session.kind, SessionKind::Agent);
            assert_eq!(p.change, PresenceChange::Joined);
        }
        other => panic!("expected presence, got {other:?}"),
    }
    hub.publish(7, message(4));
    assert!(matches!(decode(&ra.try_recv().unwrap()), ServerFrame::Message(m) if m.seq == 4));
    assert!(matches!(decode(&rb.try_recv().unwrap()), ServerFrame::Message(m) if m.seq == 4));
    assert_eq!(hub.who(Some(7)).len(), 2);

    hub.detach(&bob);
    match decode(&ra.try_recv().unwrap()) {
        ServerFrame::Presence(p) => assert_eq!(p.change, PresenceChange::Offline),
        other => panic!("expected presence, got {other:?}"),
    }
    assert_eq!(hub.who(Some(7)).len(), 1);
}

#[test]
fn slow_consumer_is_dropped_instead_of_buffered() {
    let hub = Hub::default();
    let (fast, mut rf) = outbox(64);
    let (slow, _rs) = outbox(2);
    let f = attach(
        &hub,
        claim(1, path("a/m/fast"), SessionKind::Agent, OnConflict::Refuse),
        fast.clone(),
    )
    .unwrap();
    let s = attach(
        &hub,
        claim(2, path("b/m/slow"), SessionKind::Agent, OnConflict::Refuse),
        slow.clone(),
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    subscribe(
        &hub,
        1,
        &general,
        0,
        &s,
        PresenceChange::Joined,
        joined_frame,
    );
    subscribe(
        &hub,
        1,
        &general,
        0,
        &f,
        PresenceChange::Joined,
        joined_frame,
    );
    for seq in 1..=10 {
        hub.publish(1, message(seq));
    }
    assert!(slow.control.is_closed());
    assert_eq!(slow.control.reason().0, CloseReason::TooSlow);
    assert!(!fast.control.is_closed());
    let mut got = 0;
    while let Some(bytes) = rf.try_recv() {
        if matches!(decode(&bytes), ServerFrame::Message(_)) {
            got += 1;
        }
    }
    assert_eq!(got, 10);
}

#[test]
fn whispers_reach_only_live_paths() {
    let hub = Hub::default();
    let (a, mut ra) = outbox(8);
    attach(
        &hub,
        claim(
            1,
            path("alice/laptop/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a,
    )
    .unwrap();
    let frame = Bytes::from_static(b"whisper");
    assert!(hub.whisper(&path("alice/laptop/tui"), &frame));
    assert!(ra.try_recv().is_some());
    assert!(!hub.whisper(&path("alice/laptop/gone"), &frame));
}

#[test]
fn unsubscribe_reports_other_sessions_of_the_same_user() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let tui = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a.clone(),
    )
    .unwrap();
    let bot = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/bot"),
            SessionKind::Agent,
            OnConflict::Refuse,
        ),
        a,
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    subscribe(
        &hub,
        1,
        &general,
        0,
        &tui,
        PresenceChange::Joined,
        joined_frame,
    );
    subscribe(
        &hub,
        1,
        &general,
        0,
        &bot,
        PresenceChange::Online,
        joined_frame,
    );
    assert!(hub.unsubscribe(1, &bot));
    assert!(!hub.unsubscribe(1, &tui));
}

#[test]
fn relays_stay_within_one_user_and_reach_the_chosen_kind() {
    let hub = Hub::default();
    let (tui, mut r_tui) = outbox(8);
    let (bot, mut r_bot) = outbox(8);
    let (other, mut r_other) = outbox(8);
    attach(
        &hub,
        claim(
            1,
            path("alice/laptop/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        tui,
    )
    .unwrap();
    let agent = attach(
        &hub,
        claim(
            1,
            path("alice/laptop/bot"),
            SessionKind::Agent,
            OnConflict::Refuse,
        ),
        bot,
    )
    .unwrap();
    attach(
        &hub,
        claim(
            2,
            path("bob/desk/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        other,
    )
    .unwrap();
    let frame = Bytes::from_static(b"relay");
    let sender = &agent.path;
    assert_eq!(hub.relay(1, sender, None, Audience::Humans, &frame), 1);
    assert!(r_tui.try_recv().is_some());
    assert!(
        r_other.try_recv().is_none(),
        "another user's session got the relay"
    );
    assert!(r_bot.try_recv().is_none(), "the sender got its own relay");
    let bobs = path("bob/desk/tui");
    assert_eq!(
        hub.relay(1, sender, Some(&bobs), Audience::Humans, &frame),
        0,
        "a relay reached another user's session"
    );
    assert_eq!(hub.relay(1, sender, None, Audience::Agents, &frame), 0);
}

#[test]
fn removing_a_machine_closes_only_its_sessions() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let (b, _rb) = outbox(8);
    attach(
        &hub,
        claim(
            1,
            path("alice/laptop/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a.clone(),
    )
    .unwrap();
    attach(
        &hub,
        claim(
            1,
            path("alice/desk/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        b.clone(),
    )
    .unwrap();
    hub.revoke_machine(1, &Name::machine("laptop").unwrap());
    assert_eq!(a.control.reason().0, CloseReason::Revoked);
    assert!(!b.control.is_closed());
}

#[test]
fn a_removal_racing_a_join_wins() {
    let hub = Hub::default();
    let (b, _rb) = outbox(8);
    let bob = attach(
        &hub,
        claim(2, path("bob/m/cli"), SessionKind::Agent, OnConflict::Refuse),
        b,
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    // bob's join read the epoch and passed the membership check in the store ...
    let checked = hub.epoch(2);
    // ... then his removal committed and was applied before his subscription.
    hub.remove_user_from_room(1, 2);
    let room = RoomRef {
        id: 1,
        name: &general,
        stored_last_seq: 0,
    };
    let late = hub.subscribe(room, &bob, PresenceChange::Joined, checked, joined_frame);
    assert!(matches!(late, Err(Refusal::Stale)));
    assert!(hub.who(Some(1)).is_empty(), "bob must not receive #general");
}

#[test]
fn a_machine_removal_racing_a_login_wins() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let checked = hub.epoch(1);
    hub.revoke_machine(1, &Name::machine("laptop").unwrap());
    let claim = claim(
        1,
        path("alice/laptop/tui"),
        SessionKind::Human,
        OnConflict::Refuse,
    );
    assert!(matches!(hub.attach(claim, a, checked), Err(Refusal::Stale)));
    assert!(hub.who(None).is_empty());
}

#[test]
fn sessions_per_user_are_capped_but_a_replacement_still_fits() {
    let hub = Hub::new(2);
    let (a, _ra) = outbox(8);
    let mine = |handle: &str, policy| {
        claim(
            1,
            path(&format!("alice/laptop/{handle}")),
            SessionKind::Agent,
            policy,
        )
    };
    attach(&hub, mine("one", OnConflict::Refuse), a.clone()).unwrap();
    attach(&hub, mine("two", OnConflict::Refuse), a.clone()).unwrap();
    let e = attach(&hub, mine("three", OnConflict::Refuse), a.clone()).unwrap_err();
    assert_eq!(e.code, crate::net::protocol::ErrorCode::RateLimited);
    assert!(e.message.contains("alice already has 2 sessions"), "{e}");
    attach(&hub, mine("two", OnConflict::Replace), a.clone()).unwrap();
    attach(
        &hub,
        claim(2, path("bob/m/x"), SessionKind::Agent, OnConflict::Refuse),
        a,
    )
    .unwrap();
}

#[test]
fn someone_else_s_revocations_never_hold_up_my_join() {
    let hub = Hub::default();
    let (b, _rb) = outbox(8);
    let bob = attach(
        &hub,
        claim(2, path("bob/m/cli"), SessionKind::Agent, OnConflict::Refuse),
        b,
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    let checked = hub.epoch(2);
    // mallory (user 3) leaves and rejoins a room as fast as she can.
    for _ in 0..100 {
        hub.remove_user_from_room(9, 3);
    }
    let room = RoomRef {
        id: 1,
        name: &general,
        stored_last_seq: 0,
    };
    let joined = hub.subscribe(room, &bob, PresenceChange::Joined, checked, joined_frame);
    assert!(joined.is_ok());
}

#[test]
fn a_deletion_racing_anyone_s_join_wins_and_the_room_hears_of_it_first() {
    let hub = Hub::default();
    let (a, mut ra) = outbox(8);
    let (b, _rb) = outbox(8);
    let alice = attach(
        &hub,
        claim(
            1,
            path("alice/m/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a,
    )
    .unwrap();
    let bob = attach(
        &hub,
        claim(2, path("bob/m/cli"), SessionKind::Agent, OnConflict::Refuse),
        b,
    )
    .unwrap();
    let ops = Name::channel("ops").unwrap();
    subscribe(
        &hub,
        1,
        &ops,
        0,
        &alice,
        PresenceChange::Joined,
        joined_frame,
    );
    let _joined = ra.try_recv().unwrap();
    // bob's join read the channel before it was deleted; the deletion is nobody's revocation
    // of bob, yet it must win.
    let checked = hub.epoch(2);
    let event = ServerFrame::Closing {
        reason: CloseReason::Shutdown,
        message: "stand-in for the moderation event".into(),
    };
    hub.moderate(1, &event, RoomEffect::Close);
    assert_eq!(decode(&ra.try_recv().unwrap()), event);
    let room = RoomRef {
        id: 1,
        name: &ops,
        stored_last_seq: 0,
    };
    let late = hub.subscribe(room, &bob, PresenceChange::Joined, checked, joined_frame);
    assert!(matches!(late, Err(Refusal::Stale)));
    assert!(hub.who(Some(1)).is_empty());
    assert!(hub.lock().sessions[&alice.path].rooms.is_empty());
}

#[test]
fn a_server_ban_closes_only_that_user_s_sessions() {
    let hub = Hub::default();
    let (a, _ra) = outbox(8);
    let (b, _rb) = outbox(8);
    let (a_control, b_control) = (a.control.clone(), b.control.clone());
    attach(
        &hub,
        claim(
            1,
            path("alice/m/tui"),
            SessionKind::Human,
            OnConflict::Refuse,
        ),
        a,
    )
    .unwrap();
    attach(
        &hub,
        claim(2, path("bob/m/cli"), SessionKind::Agent, OnConflict::Refuse),
        b,
    )
    .unwrap();
    let checked = hub.epoch(2);
    hub.ban_user(2, "banned: spam");
    assert_eq!(
        b_control.reason(),
        (CloseReason::Banned, "banned: spam".into())
    );
    assert!(!a_control.is_closed());
    assert_ne!(
        hub.epoch(2),
        checked,
        "a login racing the ban must look again"
    );
    assert_eq!(hub.online_counts(&[1, 2])[&1], 1);
}

#[test]
fn a_deletion_holds_up_joins_but_never_a_login() {
    let hub = Hub::default();
    let checked = hub.epoch(7);
    let event = ServerFrame::Closing {
        reason: CloseReason::Shutdown,
        message: "stand-in for the moderation event".into(),
    };
    hub.moderate(1, &event, RoomEffect::Close);
    let (o, _rx) = outbox(8);
    let login = claim(
        7,
        path("carol/m/tui"),
        SessionKind::Human,
        OnConflict::Refuse,
    );
    assert!(
        hub.attach(login, o, checked).is_ok(),
        "someone else's deletion"
    );
}
