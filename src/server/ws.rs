//! The server's WebSocket glue: upgrade one TCP connection, then pump frames between the
//! socket and the transport-free session. Also the heartbeat: a ping every `heartbeat`
//! (15 s unless configured), and a peer silent for three of them is reaped so presence stays
//! true.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::net::protocol::{
    CloseReason, MAX_FRAME_BYTES, MAX_WIRE_BYTES, MISSED_HEARTBEATS, ProtocolError, ServerFrame,
};

use super::admission::Slot;
use super::outbox::{Control, Frames, MAX_QUEUED_BYTES, Outbox};
use super::session::{self, Inbound, Shared};

/// Frames waiting to be written to one connection (bytes are bounded too, by
/// `MAX_QUEUED_BYTES`). A subscriber this far behind is dropped (see `Outbox::deliver`); it
/// reconnects and catches up from history.
const OUTBOUND_QUEUE: usize = 8192;

/// Decoded frames waiting for the session. Small: the reader simply stops reading when the
/// session is busy, which pushes back on the client through TCP.
const INBOUND_QUEUE: usize = 32;

/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 256;

/// The read buffer is kept small: most sessions are idle, and memory per idle session is what
/// limits how many a server holds. The write buffer size is only a threshold (nothing is
/// allocated up front), so it stays at tungstenite's default: frames fed in one wake-up go out
/// in one write instead of one `sendto` each.
fn socket_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_WIRE_BYTES);
    config.max_frame_size = Some(MAX_WIRE_BYTES);
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = WRITE_BUFFER_BYTES;
    config.max_write_buffer_size = 4 * MAX_WIRE_BYTES;
    config
}

/// Bytes gathered before the socket is written without waiting for the flush.
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// Serves one accepted TCP connection until it ends or `shutdown` fires.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Shared,
    shutdown: CancellationToken,
) {
    // Held until the connection is fully done; dropping it frees the slot.
    let slot = std::sync::Arc::new(slot);
    let _ = stream.set_nodelay(true);
    let upgrade = tokio_tungstenite::accept_async_with_config(stream, Some(socket_config()));
    let upgraded = tokio::select! {
        upgraded = tokio::time::timeout(session::HANDSHAKE_TIMEOUT, upgrade) => upgraded,
        () = slot.evicted() => {
            tracing::debug!(%peer, "a handshake ended to make room for newer ones");
            return;
        }
    };
    let socket = match upgraded {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => {
            tracing::debug!(%peer, %e, "websocket upgrade failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "websocket upgrade timed out");
            return;
        }
    };
    let (sink, mut stream) = socket.split();
    let control = Control::new(&shutdown);
    let (outbox, out_rx) = Outbox::new(OUTBOUND_QUEUE, MAX_QUEUED_BYTES, control.clone());
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
    let heartbeat = shared.heartbeat;
    let silence_timeout = heartbeat * MISSED_HEARTBEATS;
    let writer = tokio::spawn(write_pump(sink, out_rx, control.clone(), heartbeat));
    let session = tokio::spawn(session::run(shared, peer.ip(), slot.clone(), in_rx, outbox));

    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(silence_timeout, stream.next()) => next,
            () = control.closed() => break,
        };
        let inbound = match next {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                if bytes.len() > MAX_FRAME_BYTES {
                    Inbound::Bad {
                        id: crate::net::codec::salvage_request_id(&bytes),
                        error: ProtocolError::over_limit("frame", bytes.len(), MAX_FRAME_BYTES),
                    }
                } else {
                    session::inbound_from_bytes(&bytes)
                }
            }
            Ok(Some(Ok(Message::Text(_)))) => Inbound::Bad {
                id: None,
                error: ProtocolError::invalid(
                    "text frames are not part of the protocol: send MessagePack in binary frames",
                ),
            },
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => break,
            Ok(Some(Ok(_))) => continue, // ping, pong: activity is all that matters
            Ok(Some(Err(e))) => {
                // Oversized beyond what is safe to read, or a broken stream: this connection
                // cannot go on, the others are unaffected.
                tracing::debug!(%peer, %e, "connection error");
                control.close(CloseReason::Protocol, format!("connection error: {e}"));
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "peer silent; reaping");
                break;
            }
        };
        if in_tx.send(inbound).await.is_err() {
            break;
        }
    }
    drop(in_tx);
    let _ = session.await;
    control.close(CloseReason::Protocol, "connection closed");
    let _ = writer.await;
}

/// How long a refused connection gets to hear why.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Tells a connection the server will not take it, and why (as an error frame, which a client
/// reports and retries later), then closes it. Bounded in time: a peer that does not complete
/// the upgrade is simply dropped.
pub async fn refuse_connection(stream: TcpStream, refusal: ProtocolError) {
    let refuse = async {
        let mut socket =
            tokio_tungstenite::accept_async_with_config(stream, Some(socket_config())).await?;
        if let Some(bytes) = session::encoded(&ServerFrame::error(None, refusal)) {
            socket.send(Message::Binary(bytes)).await?;
        }
        socket.close(None).await
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse).await;
}

/// Writes queued frames, batching whatever is ready into one flush, and pings when idle. When
/// the connection is told to close it writes what is already queued (unless the peer is the
/// one too slow to read it), then a `Closing` frame saying why, then the close handshake.
/// Every write has a deadline: a peer that stops reading cannot hold the task forever.
async fn write_pump(
    mut sink: Sink,
    mut frames: Frames,
    control: std::sync::Arc<Control>,
    heartbeat: Duration,
) {
    let deadline = heartbeat * MISSED_HEARTBEATS;
    let mut ping = tokio::time::interval(heartbeat);
    ping.reset();
    let result: Result<(), WriteError> = async {
        loop {
            tokio::select! {
                biased;
                frame = frames.recv() => {
                    let Some(frame) = frame else { return Ok(()) };
                    let batch = async {
                        sink.feed(Message::Binary(frame)).await?;
                        for _ in 1..WRITE_BATCH {
                            match frames.try_recv() {
                                Some(frame) => sink.feed(Message::Binary(frame)).await?,
                                None => break,
                            }
                        }
                        sink.flush().await
                    };
                    within(deadline, batch).await?;
                }
                _ = ping.tick() => within(deadline, sink.send(Message::Ping(Bytes::new()))).await?,
                () = control.closed() => return Ok(()),
            }
        }
    }
    .await;
    if result.is_err() {
        // Nothing more can be written: end the reading side and the session too.
        control.close(
            CloseReason::Protocol,
            "the connection stopped taking writes",
        );
        return;
    }
    let (reason, message) = control.reason();
    let farewell = async {
        frames.close();
        if reason != CloseReason::TooSlow {
            // Flush what the session already queued (its last answers, in-flight acks).
            while let Some(frame) = frames.try_recv() {
                sink.feed(Message::Binary(frame)).await?;
            }
        }
        if let Some(bytes) = session::encoded(&ServerFrame::Closing { reason, message }) {
            sink.feed(Message::Binary(bytes)).await?;
        }
        sink.flush().await?;
        sink.close().await
    };
    let _ = within(deadline, farewell).await;
}

/// A write that failed or missed its deadline; either way the connection is done.
struct WriteError;

async fn within<F>(deadline: Duration, write: F) -> Result<(), WriteError>
where
    F: std::future::Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    match tokio::time::timeout(deadline, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(WriteError),
    }
}
