//! Message requests: send (answered after the commit, in order with fan-out), whisper,
//! history, read positions and search.

use super::*;
use crate::net::protocol::{
    Change, ErrorCode, MAX_SEARCH_PAGE, SearchHit, SearchRequest, marks, search_terms,
};
use crate::server::store::{HistoryRange, Search, SearchCursor, Sender};

/// What a `ClientFrame::Send` posts.
pub(super) struct Post {
    pub channel: Name,
    pub client_id: String,
    pub text: String,
    pub reply_to: Option<u64>,
    pub change: Option<Change>,
}

/// `ClientFrame::Send`.
pub(super) async fn send(
    shared: &Shared,
    me: &Me,
    outbox: &Outbox,
    id: u64,
    post: Post,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let Post {
        channel,
        client_id,
        text,
        reply_to,
        change,
    } = post;
    let user = me.user_id;
    match &change {
        None => check_text(&text)?,
        Some(_) if reply_to.is_some() => {
            return Err(ProtocolError::invalid(
                "an edit, delete or reaction answers no message",
            ));
        }
        Some(change) => change.checks_text(&text)?,
    }
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(ProtocolError::invalid(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
        )));
    }
    shared
        .admission
        .spend(user, me.kind, Spend::Send, Instant::now())?;
    direct::open(shared, me, &channel).await?;
    let ack_to = outbox.clone();
    // A client pipelining sends waits here once it has this many in flight, and its
    // connection stops being read: the server holds a bounded amount per session.
    let in_flight = me
        .sends
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ProtocolError::internal("the session is closing"))?;
    shared
        .store
        .append(Append {
            channel,
            sender_id: user,
            from: me.path().clone(),
            kind: me.kind,
            client_id,
            text,
            reply_to,
            change,
            admin: shared.admins.contains(&me.path().user),
            claim: me.claim,
            then: Box::new(move |result| match result {
                Ok(stored) => {
                    drop(in_flight);
                    ack_to.deliver_frame(&ServerFrame::Sent {
                        id,
                        channel: stored.message.channel.clone(),
                        seq: stored.message.seq,
                        ts: stored.message.ts,
                        duplicate: stored.duplicate,
                    });
                }
                Err(e) if e.code == ErrorCode::Conflict => {
                    // Taken over on another instance: this session is over.
                    let why = e.message.clone();
                    ack_to.deliver_frame(&ServerFrame::error(Some(id), e));
                    ack_to.control.close(CloseReason::Replaced, why);
                }
                Err(e) => ack_to.deliver_frame(&ServerFrame::error(Some(id), e)),
            }),
        })
        .await;
    Ok(None)
}

/// `ClientFrame::Whisper`.
pub(super) async fn whisper(
    shared: &Shared,
    me: &Me,
    id: u64,
    to: SessionPath,
    text: String,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    check_text(&text)?;
    shared
        .admission
        .spend(user, me.kind, Spend::Whisper, Instant::now())?;
    let frame = ServerFrame::Whisper(WhisperMessage {
        from: me.path().clone(),
        to: to.clone(),
        ts: now_ms(),
        text,
    });
    let bytes = Bytes::from(codec::encode(&frame)?);
    if !shared.hub.whisper(&to, &bytes) && !shared.bus.whisper(&to, &bytes).await {
        return Err(ProtocolError::not_found(format!("{to} is not online")));
    }
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::History`.
pub(super) async fn history(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    range: HistoryRange,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let page = shared.store.history(&channel, me.user_id, range).await?;
    Ok(Some(ServerFrame::History {
        id,
        channel,
        messages: page.messages,
        more: page.more,
    }))
}

/// `ClientFrame::MarkRead`.
pub(super) async fn mark_read(
    shared: &Shared,
    me: &Me,
    id: u64,
    channel: Name,
    seq: u64,
) -> Result<Option<ServerFrame>, ProtocolError> {
    shared
        .store
        .mark_read(me.user_id, &me.path().session, &channel, seq)
        .await?;
    Ok(Some(ServerFrame::Done { id }))
}

/// `ClientFrame::Search`.
pub(super) async fn search(
    shared: &Shared,
    me: &Me,
    id: u64,
    request: SearchRequest,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let SearchRequest {
        query,
        channel,
        from,
        kind,
        since,
        until,
        before,
        limit,
    } = request;
    shared
        .admission
        .spend(me.user_id, me.kind, Spend::Search, Instant::now())?;
    let terms = search_terms(&query)?;
    let from = match from.as_deref() {
        None => None,
        Some(text) if text.contains('/') => Some(Sender::Session(
            SessionPath::parse(text).map_err(|e| ProtocolError::invalid(e.to_string()))?,
        )),
        Some(text) => Some(Sender::User(
            Name::user(text.trim_start_matches('@'))
                .map_err(|e| ProtocolError::invalid(e.to_string()))?,
        )),
    };
    let search = Search {
        channel,
        from,
        kind,
        since,
        until,
        before: before.as_deref().map(SearchCursor::decode).transpose()?,
        limit: limit.clamp(1, MAX_SEARCH_PAGE),
        terms,
    };
    let found = shared.store.search(me.user_id, &search).await?;
    let next = found.next().map(|c| c.encode());
    let hits = found
        .hits
        .into_iter()
        .map(|(_, m)| SearchHit {
            marks: marks(&m.text, &search.terms),
            channel: m.channel,
            seq: m.seq,
            ts: m.ts,
            from: m.from,
            from_kind: m.from_kind,
            text: m.text,
        })
        .collect();
    Ok(Some(ServerFrame::SearchResults { id, hits, next }))
}
