//! One connection's life after the WebSocket upgrade: handshake under a deadline, then one
//! request at a time. Transport-free: frames come in on a channel and encoded frames go out on
//! another, so the same code runs over channel pairs in tests. `ws.rs` owns the socket.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};

use crate::net::codec;
use crate::net::human_key::registration_message;
use crate::net::identity::{random_bytes, verify, verify_challenge};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::{
    Audience, ClientFrame, CloseReason, MAX_CHANNEL_PAGE, MAX_CLIENT_ID_BYTES, MAX_HISTORY_PAGE,
    MAX_WHO_ENTRIES, NONCE_LEN, PROTOCOL_VERSION, PresenceChange, ProtocolError, RelayBody,
    ServerFrame, SessionKind, WhisperMessage, check_text, remaining_in_words,
};

use super::admission::{Admission, Slot, Spend};
use super::bus::Bus;
use super::hub::{Attached, Claim, Hub, Outbox, Refusal, RoomRef};
use super::store::{Account, Actor, Append, Backend, INVITE_TTL_MS, Signer, Store, UserId, now_ms};

/// Sends one session may have queued for the store at once.
const MAX_SENDS_IN_FLIGHT: usize = 64;

mod channels;
mod direct;
mod governance;
mod machines;
mod messages;
mod requests;

use requests::{INVITE_CODE_BYTES, handle, invite_code};

/// How long a client has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the transport hands the session: a decoded frame, or the reason one could not be.
#[derive(Debug)]
pub enum Inbound {
    Frame(ClientFrame),
    Bad {
        id: Option<u64>,
        error: ProtocolError,
    },
}

/// What every session shares.
#[derive(Clone)]
pub struct Shared {
    pub hub: Arc<Hub>,
    /// The other instances, if any.
    pub bus: Bus,
    pub store: Backend,
    pub server_id: String,
    pub admins: Arc<Vec<Name>>,
    /// Ping interval of every connection (see `ws.rs`).
    pub heartbeat: Duration,
    pub admission: Arc<Admission>,
}

/// Who this connection is, once authenticated.
struct Me {
    user_id: UserId,
    kind: SessionKind,
    attached: Attached,
    /// Which of the machine's keys signed this session in, and that key.
    signer: Signer,
    signer_key: Vec<u8>,
    /// Sends stored but not yet committed (see `MAX_SENDS_IN_FLIGHT`).
    sends: Arc<Semaphore>,
    /// This sign-in's claim on its path, when instances share the store (see
    /// `Store::claim_path`).
    claim: Option<i64>,
}

impl Me {
    fn path(&self) -> &SessionPath {
        &self.attached.path
    }

    /// This session as the author of an audited act.
    fn actor(&self, shared: &Shared) -> Actor {
        Actor {
            user_id: self.user_id,
            path: self.path().clone(),
            admin: shared.admins.contains(&self.path().user),
        }
    }
}

/// Runs a connection's session until the peer leaves, breaks the protocol, or is told to close.
pub async fn run(
    shared: Shared,
    peer: IpAddr,
    slot: Arc<Slot>,
    inbound: mpsc::Receiver<Inbound>,
    outbox: Outbox,
) {
    serve(shared, peer, &slot, inbound, &outbox).await;
    // Whatever ended the session ends the connection too (a no-op if something else did).
    outbox.control.close(CloseReason::Protocol, "session ended");
}

async fn serve(
    shared: Shared,
    peer: IpAddr,
    slot: &Slot,
    mut inbound: mpsc::Receiver<Inbound>,
    outbox: &Outbox,
) {
    let outbox = outbox.clone();
    let control = outbox.control.clone();
    let me = tokio::select! {
        result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&shared, peer, &mut inbound, &outbox)) => match result {
            Ok(Ok(me)) => {
                slot.signed_in();
                me
            }
            Ok(Err(e)) => {
                outbox.deliver_frame(&ServerFrame::error(None, e));
                return;
            }
            Err(_) => {
                outbox.deliver_frame(&ServerFrame::error(None, ProtocolError::invalid("handshake timed out")));
                return;
            }
        },
        () = control.closed() => return,
        () = slot.evicted() => {
            outbox.deliver_frame(&ServerFrame::error(
                None,
                ProtocolError::rate_limited("the server is taking many new connections: sign in promptly, or try again"),
            ));
            return;
        }
    };
    tracing::debug!(path = %me.path(), kind = %me.kind, "session started");
    loop {
        // A closed connection (revoked, replaced) runs nothing more it had queued.
        let next = tokio::select! {
            biased;
            () = control.closed() => break,
            next = inbound.recv() => next,
        };
        let Some(next) = next else { break };
        let (id, result) = match next {
            Inbound::Bad { id, error } => (id, Err(error)),
            Inbound::Frame(frame) => {
                let id = frame.request_id();
                tracing::debug!(path = %me.path(), kind = frame.kind(), ?id, "request");
                (id, handle(&shared, &me, &outbox, frame).await)
            }
        };
        match result {
            Ok(Some(reply)) => outbox.deliver_frame(&reply),
            Ok(None) => {}
            // A client over its budget is not read again until it could be served: a flood
            // costs the server a refusal every few hundred milliseconds, not one per frame it
            // pipelines. (Boxed and out of line, so the hot path stays as it was.)
            Err(e) => {
                if let Some(pause) = refuse(&outbox, id, e)
                    && Box::pin(closed_within(&control, pause)).await
                {
                    break;
                }
            }
        }
    }
    shared.hub.detach(&me.attached);
    tracing::debug!(path = %me.path(), "session ended");
}

/// Waits `pause`, or less if the connection closes meanwhile; whether it closed.
async fn closed_within(control: &super::outbox::Control, pause: Duration) -> bool {
    tokio::select! {
        biased;
        () = control.closed() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Longest a connection goes unread after a `rate_limited` refusal (slow mode may ask a
/// client to wait far longer; its other requests should not).
const MAX_OVER_BUDGET_PAUSE: Duration = Duration::from_millis(250);

/// Tells the client its request failed; how long to stop reading it when it was over a budget.
#[cold]
#[inline(never)]
fn refuse(outbox: &Outbox, id: Option<u64>, e: ProtocolError) -> Option<Duration> {
    let pause = over_budget_pause(&e);
    outbox.deliver_frame(&ServerFrame::error(id, e));
    pause
}

/// How long to stop reading a connection whose request was refused as over a budget.
fn over_budget_pause(e: &ProtocolError) -> Option<Duration> {
    let ms = e
        .retry_after_ms
        .filter(|_| e.code == crate::net::protocol::ErrorCode::RateLimited)?;
    Some(Duration::from_millis(ms).min(MAX_OVER_BUDGET_PAUSE))
}

async fn next_frame(inbound: &mut mpsc::Receiver<Inbound>) -> Result<ClientFrame, ProtocolError> {
    match inbound.recv().await {
        Some(Inbound::Frame(frame)) => Ok(frame),
        Some(Inbound::Bad { error, .. }) => Err(error),
        None => Err(ProtocolError::invalid(
            "connection closed during the handshake",
        )),
    }
}

async fn handshake(
    shared: &Shared,
    peer: IpAddr,
    inbound: &mut mpsc::Receiver<Inbound>,
    outbox: &Outbox,
) -> Result<Me, ProtocolError> {
    let (handle, kind, policy, instance) = match next_frame(inbound).await? {
        ClientFrame::Hello {
            version,
            handle,
            kind,
            on_conflict,
            instance,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(ProtocolError::new(
                    crate::net::protocol::ErrorCode::VersionMismatch,
                    format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, the client {version}; upgrade the older side"
                    ),
                ));
            }
            direct::plain(&handle, "session handle")?;
            (handle, kind, on_conflict, instance)
        }
        other => {
            return Err(ProtocolError::invalid(format!(
                "expected hello, got {}",
                other.kind()
            )));
        }
    };
    let mut nonce = vec![0u8; NONCE_LEN];
    random_bytes(&mut nonce).map_err(|e| ProtocolError::internal(e.to_string()))?;
    outbox.deliver_frame(&ServerFrame::Challenge {
        nonce: nonce.clone(),
        server_id: shared.server_id.clone(),
    });

    let (public_key, signature, first_contact) = match next_frame(inbound).await? {
        ClientFrame::Auth {
            public_key,
            signature,
        } => (public_key, signature, None),
        ClientFrame::Register {
            username,
            machine,
            public_key,
            signature,
        } => (
            public_key,
            signature,
            Some(FirstContact::Register { username, machine }),
        ),
        ClientFrame::Enroll {
            code,
            public_key,
            signature,
        } => (public_key, signature, Some(FirstContact::Enroll { code })),
        other => {
            return Err(ProtocolError::invalid(format!(
                "expected auth or register, got {}",
                other.kind()
            )));
        }
    };
    // Possession is proven before anything is read or written.
    if !verify_challenge(
        &public_key,
        &signature,
        &shared.server_id,
        &nonce,
        &handle,
        kind,
    ) {
        return Err(ProtocolError::forbidden(
            "the signature does not match the key",
        ));
    }
    match first_contact {
        Some(FirstContact::Register { username, machine }) => {
            direct::plain(&username, "user name")?;
            direct::plain(&machine, "machine name")?;
            let now = Instant::now();
            let known = shared.store.account_by_key(&public_key).await?.is_some();
            // Re-running `register` with an enrolled key makes nothing, so it is not counted.
            if !known {
                shared.admission.register(peer, now)?;
            }
            let made = shared
                .store
                .register(&username, &machine, &public_key)
                .await;
            if let Err(e) = made {
                if !known {
                    shared.admission.unregister(peer, now);
                }
                return Err(e);
            }
        }
        Some(FirstContact::Enroll { code }) => {
            shared.store.enroll(&code, &public_key).await?;
        }
        None => {}
    }
    let lookup = async || -> Result<Account, ProtocolError> {
        shared
            .store
            .account_by_key(&public_key)
            .await?
            .ok_or_else(|| {
                ProtocolError::forbidden(
                    "this key is not enrolled here: run `conclave register NAME` first",
                )
            })
    };
    // Whose revocations to watch is known only after a first look.
    let user_id = lookup().await?.user_id;
    let mut tries = 0;
    let (account, attached) = loop {
        let checked = shared.hub.epoch(user_id);
        let account = lookup().await?;
        if let Some(ban) = &account.banned {
            return Err(ProtocolError::forbidden(format!(
                "{} is banned from this server {}{}",
                account.user,
                remaining_in_words(ban.until, now_ms()),
                ban.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )));
        }
        if kind == SessionKind::Human && account.uses_human_keys && !account.is_human_key {
            return Err(ProtocolError::forbidden(format!(
                "{} uses human keys: a human session must sign in with one (`conclave tui` asks for its passphrase); machine keys are for agents and scripts",
                account.user
            )));
        }
        let base = SessionPath::new(
            account.user.clone(),
            account.machine.clone(),
            handle.clone(),
        );
        let elsewhere = shared.bus.claim(&base, instance.as_deref(), policy).await;
        let claim = Claim {
            user_id: account.user_id,
            elsewhere,
            base,
            kind,
            policy,
            instance: instance.clone(),
        };
        let attaching = shared.hub.attach(claim, outbox.clone(), checked);
        if let Some(done) = settled(attaching, &mut tries) {
            break (account, done?);
        }
    };
    outbox.deliver_frame(&ServerFrame::Welcome {
        path: attached.path.clone(),
        server_id: shared.server_id.clone(),
        version: PROTOCOL_VERSION,
        admin: shared.admins.contains(&account.user),
    });
    // With other instances beside this one, the path is claimed in the shared store too, so
    // a session this claim took over there can post no more.
    let claim = match &shared.bus {
        Bus::Cluster(_) => match shared.store.claim_path(&attached.path).await {
            Ok(claim) => claim,
            Err(e) => {
                shared.hub.detach(&attached);
                return Err(e);
            }
        },
        Bus::Local => None,
    };
    Ok(Me {
        claim,
        user_id: account.user_id,
        kind,
        attached,
        sends: Arc::new(Semaphore::new(MAX_SENDS_IN_FLIGHT)),
        signer: if account.is_human_key {
            Signer::HumanKey
        } else {
            Signer::MachineKey
        },
        signer_key: public_key,
    })
}

/// What a handshake does before signing in, besides proving the key.
enum FirstContact {
    /// Claim a user name with this key.
    Register { username: Name, machine: Name },
    /// Enroll this key under the user whose invite `code` it is.
    Enroll { code: String },
}

/// Times a store check is repeated because a revocation raced it, before giving up.
const MAX_SETTLE_TRIES: usize = 8;

/// The outcome of a store check followed by a hub change that grants access, or `None` when
/// a revocation happened between the two and the check must run again. So a removal racing a
/// join or a login always wins.
fn settled<T>(result: Result<T, Refusal>, tries: &mut usize) -> Option<Result<T, ProtocolError>> {
    match result {
        Ok(value) => Some(Ok(value)),
        Err(Refusal::Refused(e)) => Some(Err(e)),
        Err(Refusal::Stale) if *tries + 1 < MAX_SETTLE_TRIES => {
            *tries += 1;
            None
        }
        Err(Refusal::Stale) => Some(Err(ProtocolError::rate_limited(
            "your access rights kept changing while this was checked; try again",
        ))),
    }
}

/// Decodes one binary frame for the session; undecodable input keeps its request id when it
/// can be found, so the error answers the request instead of leaving it hanging.
pub fn inbound_from_bytes(bytes: &[u8]) -> Inbound {
    match codec::decode::<ClientFrame>(bytes) {
        Ok(frame) => Inbound::Frame(frame),
        Err(error) => Inbound::Bad {
            id: codec::salvage_request_id(bytes),
            error,
        },
    }
}

/// Encodes a frame for a queue of encoded frames.
pub fn encoded(frame: &ServerFrame) -> Option<Bytes> {
    codec::encode(frame).ok().map(Bytes::from)
}
