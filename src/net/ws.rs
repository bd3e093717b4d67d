//! The client's WebSocket transport: dials `ws://` or `wss://` and turns the socket into a
//! [`Conn`] of typed frames with two pump tasks. The link never sees a socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_tungstenite::Connector;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::codec;
use super::link::{LinkConfig, LinkEvent, LinkHandle, spawn_with};
use super::protocol::{ClientFrame, MAX_WIRE_BYTES, SILENCE_TIMEOUT, ServerFrame};
use super::transport::{CONN_QUEUE, Conn, ConnectError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connector trusting only the CAs in `ca_file`, for servers with a private CA.
fn private_roots(ca_file: &Path) -> Result<Connector, ConnectError> {
    let bad = |e: String| {
        ConnectError::fatal(format!("cannot use the CA file {}: {e}", ca_file.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// Refuses what is not a WebSocket address, before anything is dialled.
pub fn check_address(url: &str) -> Result<(), ConnectError> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Ok(());
    }
    Err(ConnectError::fatal(format!(
        "`{url}` is not a server address: expected ws://HOST:PORT or wss://HOST:PORT"
    )))
}

/// Dials `url` and starts the pumps. `wss://` trusts the public web roots, or only the CAs in
/// `ca_file` when one is given.
pub async fn connect(url: String, ca_file: Option<PathBuf>) -> Result<Conn, ConnectError> {
    check_address(&url)?;
    // rustls needs a process-wide crypto provider; a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_WIRE_BYTES);
    config.max_frame_size = Some(MAX_WIRE_BYTES);
    let connector = match &ca_file {
        Some(path) if url.starts_with("wss://") => Some(private_roots(path)?),
        _ => None,
    };
    let dial = tokio_tungstenite::connect_async_tls_with_config(
        url.as_str(),
        Some(config),
        true,
        connector,
    );
    let (socket, _) = match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            return Err(ConnectError::transient(format!(
                "cannot reach {url}: {}",
                describe(&e)
            )));
        }
        Err(_) => {
            return Err(ConnectError::transient(format!(
                "cannot reach {url}: timed out"
            )));
        }
    };
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<ClientFrame>(CONN_QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<ServerFrame>(CONN_QUEUE);
    let stop = CancellationToken::new();

    let writer_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                frame = out_rx.recv() => frame,
                () = writer_stop.cancelled() => None,
            };
            let Some(frame) = frame else { break };
            let bytes = match codec::encode(&frame) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(%e, kind = frame.kind(), "cannot encode frame");
                    continue;
                }
            };
            let sent = tokio::select! {
                sent = sink.send(Message::Binary(bytes.into())) => sent.is_ok(),
                () = writer_stop.cancelled() => false,
            };
            if !sent {
                break;
            }
        }
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, sink.close()).await;
        writer_stop.cancel();
    });

    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(SILENCE_TIMEOUT, stream.next()) => next,
                () = stop.cancelled() => break,
            };
            let bytes = match next {
                Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
                Ok(Some(Ok(_))) => continue,
                Err(_) => {
                    tracing::info!(
                        "server silent for {SILENCE_TIMEOUT:?}; dropping the connection"
                    );
                    break;
                }
            };
            match codec::decode_limited::<ServerFrame>(&bytes, MAX_WIRE_BYTES) {
                Ok(frame) => {
                    if in_tx.send(frame).await.is_err() {
                        break;
                    }
                }
                // A newer server may send frames this client does not know: skip them.
                Err(e) => tracing::debug!(%e, "skipped undecodable frame"),
            }
        }
        stop.cancel();
    });

    Ok(Conn {
        tx: out_tx,
        rx: in_rx,
    })
}

/// Words for connection failures that a person can act on.
fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is `conclave serve` running there?)".to_owned()
        }
        Error::Io(io) => io.to_string(),
        Error::Url(url) => format!("bad address: {url}"),
        Error::Http(response) => format!("not a conclave server (HTTP {})", response.status()),
        other => other.to_string(),
    }
}

/// Starts a link over WebSocket (`ws://`, or `wss://` with the public roots or `ca_file`).
pub fn spawn_link(config: LinkConfig) -> (LinkHandle, mpsc::Receiver<LinkEvent>) {
    let ca_file = config.ca_file.clone();
    spawn_with(config, move |url| connect(url, ca_file.clone()))
}
