//! What the agent and its owner's people tell each other through the server: permission
//! requests and verdicts, autonomy reports and changes (kept in `config.toml`). Verdicts and
//! changes count only from a human session of the agent's own user.

use std::sync::Arc;
use std::time::Instant;

use crate::net::config::{AutonomyKey, ClientConfig};
use crate::net::names::SessionPath;
use crate::net::protocol::{Audience, Autonomy, RelayBody, SessionKind};

use super::gate::{OpenRequest, PERMISSION_TTL};
use super::{Agent, Effect};

/// Writes one autonomy level into `config.toml` in `dir` (what `conclave perm set` does),
/// keeping the rest of the file.
fn save_level(
    dir: &std::path::Path,
    key: AutonomyKey,
    level: Autonomy,
) -> Result<(), crate::net::config::ConfigError> {
    let mut config = ClientConfig::load(dir)?;
    config.autonomy.insert(key, level);
    config.save(dir)
}

impl Agent {
    /// A relay from a session of this agent's user on server `server`.
    pub(super) fn on_relay(
        self: &Arc<Self>,
        server: usize,
        from: SessionPath,
        from_kind: SessionKind,
        body: RelayBody,
    ) -> Effect {
        // The server only relays between sessions of one user; checked again here because a
        // verdict is the one thing that must never come from anyone else.
        match body {
            RelayBody::PermissionVerdict { request_id, allow } => {
                let outcome = self.lock().permissions.verdict(
                    &self.conn(server).me.user,
                    &from,
                    from_kind,
                    &request_id,
                    Instant::now(),
                );
                match outcome {
                    Ok(_) => {
                        let agent = self.clone();
                        let answered = RelayBody::PermissionAnswered {
                            request_id: request_id.clone(),
                            allow,
                            by: from,
                        };
                        tokio::spawn(async move {
                            agent.relay_everywhere(Audience::Humans, answered).await
                        });
                        Effect::Verdict { request_id, allow }
                    }
                    Err(refused) => {
                        tracing::warn!(%from, ?refused, %request_id, "ignored a permission verdict");
                        Effect::None
                    }
                }
            }
            RelayBody::SetAutonomy { channel, .. }
                if self.is_owner_person(server, &from, from_kind) && !self.gated =>
            {
                tracing::info!(%channel, by = %from, "autonomy does not apply to a program");
                let agent = self.clone();
                tokio::spawn(async move { agent.report_autonomy(Some((server, from))).await });
                Effect::None
            }
            RelayBody::SetAutonomy { channel, level }
                if self.is_owner_person(server, &from, from_kind) =>
            {
                self.lock()
                    .levels
                    .live
                    .insert(AutonomyKey::Channel(channel.clone()), level);
                tracing::info!(%channel, level = %level, by = %from, "autonomy changed");
                let agent = self.clone();
                tokio::spawn(async move {
                    // Kept where the agent reads its levels, so a restart keeps it and
                    // `perm show` lists it; the file watcher then finds nothing new.
                    let dir = agent.config_dir.clone();
                    let key = AutonomyKey::Channel(channel);
                    let saved =
                        tokio::task::spawn_blocking(move || save_level(&dir, key, level)).await;
                    match saved {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(%e, "autonomy change not saved"),
                        Err(e) => tracing::warn!(%e, "autonomy change not saved"),
                    }
                    agent.report_autonomy(None).await;
                });
                Effect::None
            }
            RelayBody::AutonomyQuery if self.is_owner_person(server, &from, from_kind) => {
                // A person's TUI asks this whenever it connects: the moment to offer it the
                // permission requests raised while none of the owner's people was online.
                let agent = self.clone();
                tokio::spawn(async move {
                    agent.report_autonomy(Some((server, from.clone()))).await;
                    agent.offer_open_requests(server, from).await;
                });
                Effect::None
            }
            other => {
                tracing::debug!(%from, ?other, "ignored relay");
                Effect::None
            }
        }
    }

    fn is_owner_person(&self, server: usize, from: &SessionPath, kind: SessionKind) -> bool {
        kind == SessionKind::Human && from.user == self.conn(server).me.user
    }

    /// Sends a relay to this user's own sessions on one server; failures (nobody online) are
    /// only logged.
    async fn relay(
        &self,
        server: usize,
        to: Option<SessionPath>,
        audience: Audience,
        body: RelayBody,
    ) -> bool {
        match self.conn(server).link.relay(to, audience, body).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%e, "relay not delivered");
                false
            }
        }
    }

    /// Sends a relay to this user's sessions on every server; whether any got it.
    async fn relay_everywhere(&self, audience: Audience, body: RelayBody) -> bool {
        let mut delivered = false;
        for server in 0..self.servers.len() {
            delivered |= self.relay(server, None, audience, body.clone()).await;
        }
        delivered
    }

    /// Tells the owner's people (everywhere, or one of their sessions) this agent's autonomy
    /// levels, or that autonomy does not apply to it (JSON lines).
    pub async fn report_autonomy(&self, to: Option<(usize, SessionPath)>) {
        let (levels, default) = {
            let state = self.lock();
            (state.levels.report(), state.levels.default_level())
        };
        let body = if self.gated {
            RelayBody::AutonomyReport {
                levels,
                default,
                not_applicable: false,
            }
        } else {
            RelayBody::AutonomyReport {
                levels: Vec::new(),
                default,
                not_applicable: true,
            }
        };
        match to {
            Some((server, to)) => {
                self.relay(server, Some(to), Audience::Humans, body).await;
            }
            None => {
                self.relay_everywhere(Audience::Humans, body).await;
            }
        }
    }

    /// Forwards Claude Code's permission request to the owner's people on every server.
    /// Returns whether any of them is online to answer (if not, only the local dialog can);
    /// the first verdict wins.
    /// The request stays open until `PERMISSION_TTL` passes, and is offered again to each of
    /// the owner's people who connects before then.
    pub async fn ask_permission(
        &self,
        request_id: String,
        tool_name: String,
        description: String,
        input_preview: String,
    ) -> bool {
        self.lock().permissions.open(
            request_id.clone(),
            OpenRequest {
                tool_name: tool_name.clone(),
                description: description.clone(),
                input_preview: input_preview.clone(),
                expires: Instant::now() + PERMISSION_TTL,
            },
        );
        let body = RelayBody::PermissionRequest {
            request_id,
            tool_name,
            description,
            input_preview,
            expires_in_ms: PERMISSION_TTL.as_millis() as u64,
        };
        self.relay_everywhere(Audience::Humans, body).await
    }

    /// Sends `to` (on `server`) every permission request still open, with the time each has
    /// left.
    async fn offer_open_requests(&self, server: usize, to: SessionPath) {
        let now = Instant::now();
        let open = self.lock().permissions.open_requests(now);
        for (request_id, request) in open {
            let left = request.expires.saturating_duration_since(now);
            let body = RelayBody::PermissionRequest {
                request_id,
                tool_name: request.tool_name,
                description: request.description,
                input_preview: request.input_preview,
                expires_in_ms: left.as_millis() as u64,
            };
            self.relay(server, Some(to.clone()), Audience::Humans, body)
                .await;
        }
    }
}
