//! Delivery in seq order when messages arrive out of order, twice, or not at all.
#![allow(clippy::unwrap_used)]
use super::tests::{attach, claim, decode, joined_frame, message, outbox, path, subscribe};
use super::*;
use crate::server::outbox::Frames;

fn encoded(seq: u64) -> (u64, Bytes) {
    let bytes = codec::encode(&ServerFrame::Message(message(seq))).unwrap();
    (seq, Bytes::from(bytes))
}

/// The seqs of the messages waiting in `frames`, skipping other frames.
fn received(frames: &mut Frames) -> Vec<u64> {
    let mut seqs = Vec::new();
    while let Some(bytes) = frames.try_recv() {
        if let ServerFrame::Message(m) = decode(&bytes) {
            seqs.push(m.seq);
        }
    }
    seqs
}

/// A hub with one subscriber to channel 1, whose store holds messages up to `stored`.
fn subscribed(stored: u64) -> (Hub, Frames) {
    let hub = Hub::default();
    let (out, frames) = outbox(8192);
    let base = path("bob/desk/tui");
    let me = attach(
        &hub,
        claim(2, base, SessionKind::Human, OnConflict::Refuse),
        out,
    )
    .unwrap();
    let general = Name::channel("general").unwrap();
    subscribe(
        &hub,
        1,
        &general,
        stored,
        &me,
        PresenceChange::Joined,
        joined_frame,
    );
    (hub, frames)
}

#[test]
fn a_message_after_a_gap_waits_for_the_gap_to_be_filled_from_the_store() {
    let (hub, mut frames) = subscribed(5);
    hub.receive_messages(1, vec![encoded(8)]);
    assert_eq!(
        received(&mut frames),
        Vec::<u64>::new(),
        "delivered ahead of 6 and 7"
    );
    assert_eq!(hub.next_gap(), Some((1, 5, 7)));
    hub.fill(1, vec![encoded(6), encoded(7)], Some(7));
    assert_eq!(received(&mut frames), vec![6, 7, 8]);
    assert_eq!(hub.next_gap(), None);
}

#[test]
fn a_message_delivered_already_is_dropped_whichever_way_it_comes_again() {
    let (hub, mut frames) = subscribed(5);
    hub.publish(1, message(6));
    hub.receive_messages(1, vec![encoded(6), encoded(7)]);
    hub.fill(1, vec![encoded(6), encoded(7)], Some(7));
    hub.publish(1, message(7));
    assert_eq!(received(&mut frames), vec![6, 7]);
}

#[test]
fn a_newer_seq_in_the_store_is_a_gap_even_when_nothing_arrives() {
    let (hub, mut frames) = subscribed(5);
    hub.note_stored(1, 9);
    assert_eq!(hub.next_gap(), Some((1, 5, 9)));
    // A page that is not the whole gap: the rest is asked for next.
    hub.fill(1, vec![encoded(6), encoded(7)], None);
    assert_eq!(hub.next_gap(), Some((1, 7, 9)));
    // Seq 8 expired before it was fetched: the fetch was complete, so it is skipped.
    hub.fill(1, vec![encoded(9)], Some(9));
    assert_eq!(received(&mut frames), vec![6, 7, 9]);
    assert_eq!(hub.next_gap(), None);
}

#[test]
fn a_room_nobody_receives_here_keeps_no_gap_and_holds_nothing() {
    let hub = Hub::default();
    hub.publish(1, message(40));
    hub.note_stored(1, 50);
    assert_eq!(hub.next_gap(), None);
    assert!(hub.subscribed_rooms().is_empty());
}

#[test]
fn what_waits_behind_a_gap_is_bounded() {
    let (hub, mut frames) = subscribed(0);
    let burst: Vec<_> = (2..=5000).map(encoded).collect();
    hub.receive_messages(1, burst);
    assert!(hub.lock().rooms[&1].pending.len() <= 1024);
    // The fill fetches what was not held as well, in pages.
    let (_, after, upto) = hub.next_gap().unwrap();
    assert_eq!((after, upto), (0, 1));
    hub.fill(1, vec![encoded(1)], Some(1));
    let mut seqs = received(&mut frames);
    while let Some((_, after, upto)) = hub.next_gap() {
        let page: Vec<_> = (after + 1..=upto.min(after + 128)).map(encoded).collect();
        let complete = (upto <= after + 128).then_some(upto);
        hub.fill(1, page, complete);
        seqs.extend(received(&mut frames));
    }
    let expected: Vec<u64> = (1..=5000).collect();
    assert!(
        seqs == expected,
        "lost or reordered: {} delivered",
        seqs.len()
    );
}
