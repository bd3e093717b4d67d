//! The link's side of the handshake: `hello`, the signed answer to the challenge (`auth`,
//! `register` or `enroll`), and the welcome.

use super::*;

/// What the server said in `welcome`.
pub(super) struct Welcome {
    pub(super) path: SessionPath,
    pub(super) server_id: String,
    pub(super) admin: bool,
}

impl LinkTask {
    pub(super) async fn handshake(&mut self, conn: &mut Conn) -> Result<Welcome, Ended> {
        let lost = |what: &str| Ended::Lost(format!("connection closed during {what}"));
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            handle: self.handle.clone(),
            kind: self.config.kind,
            on_conflict: self.on_conflict,
            instance: Some(self.instance.clone()),
        };
        conn.tx.send(hello).await.map_err(|_| lost("hello"))?;
        let (nonce, server_id) = match conn.rx.recv().await {
            Some(ServerFrame::Challenge { nonce, server_id }) => (nonce, server_id),
            Some(ServerFrame::Error { code, message, .. }) => {
                return Err(handshake_error(code, message));
            }
            Some(other) => {
                return Err(Ended::Fatal(format!(
                    "server sent {} instead of a challenge",
                    other.kind()
                )));
            }
            None => return Err(lost("the handshake")),
        };
        self.check_server_id(&server_id)?;
        let identity = &self.config.identity;
        let signature = identity
            .sign_challenge(&server_id, &nonce, &self.handle, self.config.kind)
            .to_vec();
        let public_key = identity.public_key().to_vec();
        let answer = match &self.config.login {
            Login::Key => ClientFrame::Auth {
                public_key,
                signature,
            },
            Login::Register { username, machine } => ClientFrame::Register {
                username: username.clone(),
                machine: machine.clone(),
                public_key,
                signature,
            },
            Login::Enroll { code } => ClientFrame::Enroll {
                code: code.clone(),
                public_key,
                signature,
            },
        };
        conn.tx
            .send(answer)
            .await
            .map_err(|_| lost("authentication"))?;
        match conn.rx.recv().await {
            Some(ServerFrame::Welcome {
                path,
                server_id: welcomed,
                admin,
                ..
            }) if welcomed == server_id => Ok(Welcome {
                path,
                server_id,
                admin,
            }),
            Some(ServerFrame::Welcome { .. }) => Err(Ended::Fatal(
                "the server's welcome names another server id than its challenge did".into(),
            )),
            Some(ServerFrame::Error { code, message, .. }) => Err(handshake_error(code, message)),
            Some(other) => Err(Ended::Fatal(format!(
                "server sent {} instead of welcome",
                other.kind()
            ))),
            None => Err(lost("authentication")),
        }
    }
}

/// Handshake refusals are final, except a server that is busy or broken for a moment.
fn handshake_error(code: ErrorCode, message: String) -> Ended {
    match code {
        ErrorCode::Internal | ErrorCode::RateLimited | ErrorCode::Unavailable => {
            Ended::Lost(message)
        }
        _ => Ended::Fatal(message),
    }
}
