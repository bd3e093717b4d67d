//! What each request does once a session is signed in: `handle` matches the frame and hands
//! it to the one named function that answers it (in `channels`, `messages`, `machines`,
//! `governance`, or `relay` here).

use super::*;
use crate::net::protocol::SearchRequest;
use crate::server::store::HistoryRange;

/// Handles one request. `Ok(None)` means the answer is sent some other way (joins and sends,
/// whose answers must be ordered against fan-out).
pub(super) async fn handle(
    shared: &Shared,
    me: &Me,
    outbox: &Outbox,
    frame: ClientFrame,
) -> Result<Option<ServerFrame>, ProtocolError> {
    direct::check(&frame)?;
    match frame {
        ClientFrame::Hello { .. } | ClientFrame::Auth { .. } | ClientFrame::Register { .. } => Err(
            ProtocolError::invalid("this connection is already authenticated"),
        ),
        ClientFrame::CreateChannel {
            id,
            channel,
            visibility,
        } => channels::create_channel(shared, me, id, channel, visibility).await,
        ClientFrame::ListChannels { id, after, limit } => {
            channels::list_channels(shared, me, id, after, limit).await
        }
        ClientFrame::Join {
            id,
            channel,
            invite,
        } => channels::join(shared, me, id, channel, invite).await,
        ClientFrame::Leave { id, channel } => channels::leave(shared, me, id, channel).await,
        ClientFrame::Send {
            id,
            channel,
            client_id,
            text,
            reply_to,
            change,
        } => {
            let post = messages::Post {
                channel,
                client_id,
                text,
                reply_to,
                change,
            };
            messages::send(shared, me, outbox, id, post).await
        }
        ClientFrame::Whisper { id, to, text } => messages::whisper(shared, me, id, to, text).await,
        ClientFrame::History {
            id,
            channel,
            after,
            before,
            limit,
            thread,
        } => {
            let range = HistoryRange {
                after,
                before,
                limit: limit.clamp(1, MAX_HISTORY_PAGE),
                thread,
            };
            messages::history(shared, me, id, channel, range).await
        }
        ClientFrame::Who { id, channel } => channels::who(shared, me, id, channel).await,
        ClientFrame::MarkRead { id, channel, seq } => {
            messages::mark_read(shared, me, id, channel, seq).await
        }
        ClientFrame::AddMachine { .. } => Err(ProtocolError::forbidden(
            "a key is enrolled only by the machine that holds it: run `conclave machine invite NAME` here, then `conclave machine enroll CODE` there",
        )),
        ClientFrame::InviteMachine { id, machine } => {
            machines::invite_machine(shared, me, id, machine).await
        }
        ClientFrame::SetHumanKey {
            id,
            public_key,
            signature,
        } => machines::set_human_key(shared, me, outbox, id, public_key, signature).await,
        ClientFrame::Enroll { .. } => Err(ProtocolError::invalid(
            "enroll belongs to the handshake; this connection is already authenticated",
        )),
        ClientFrame::ListMachines { id } => machines::list_machines(shared, me, id).await,
        ClientFrame::Relay {
            id,
            to,
            audience,
            body,
        } => relay(shared, me, id, to, audience, body).await,
        ClientFrame::AddMember {
            id,
            channel,
            user: member,
        } => governance::add_member(shared, me, id, channel, member).await,
        ClientFrame::RemoveMember {
            id,
            channel,
            user: member,
        } => governance::remove_member(shared, me, id, channel, member).await,
        ClientFrame::Moderate {
            id,
            channel,
            act,
            reason,
        } => governance::moderate(shared, me, id, channel, act, reason).await,
        ClientFrame::CreateInvite {
            id,
            channel,
            uses,
            ttl_ms,
        } => governance::create_invite(shared, me, id, channel, uses, ttl_ms).await,
        ClientFrame::Search {
            id,
            query,
            channel,
            from,
            kind,
            since,
            until,
            before,
            limit,
        } => {
            let request = SearchRequest {
                query,
                channel,
                from,
                kind,
                since,
                until,
                before,
                limit,
            };
            messages::search(shared, me, id, request).await
        }
        ClientFrame::ListInvites { id, channel } => {
            governance::list_invites(shared, me, id, channel).await
        }
        ClientFrame::DescribeChannel { id, channel } => {
            governance::describe_channel(shared, me, id, channel).await
        }
        ClientFrame::BanUser {
            id,
            user: target,
            for_ms,
            reason,
        } => governance::ban_user(shared, me, id, target, for_ms, reason).await,
        ClientFrame::UnbanUser { id, user: target } => {
            governance::unban_user(shared, me, id, target).await
        }
        ClientFrame::ListUsers { id, after, limit } => {
            governance::list_users(shared, me, id, after, limit).await
        }
        ClientFrame::Audit {
            id,
            channel,
            before,
            limit,
        } => governance::audit(shared, me, id, channel, before, limit).await,
        ClientFrame::RemoveMachine { id, machine } => {
            machines::remove_machine(shared, me, outbox, id, machine).await
        }
    }
}

/// `ClientFrame::Relay`.
pub(super) async fn relay(
    shared: &Shared,
    me: &Me,
    id: u64,
    to: Option<SessionPath>,
    audience: Option<Audience>,
    body: RelayBody,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    if body.steers_an_agent() && me.kind != SessionKind::Human {
        return Err(ProtocolError::forbidden(
            "only a person's session may answer permission requests or steer an agent",
        ));
    }
    let audited = body.steers_an_agent();
    if audited {
        shared
            .admission
            .spend(user, me.kind, Spend::Act, Instant::now())?;
    }
    let frame = ServerFrame::Relay {
        from: me.path().clone(),
        from_kind: me.kind,
        body,
    };
    let audience = audience.unwrap_or(Audience::Humans);
    let bytes = Bytes::from(codec::encode(&frame)?);
    let (user, sender) = (me.user_id, me.path());
    let mut delivered = shared
        .hub
        .relay(user, sender, to.as_ref(), audience, &bytes);
    let only_here = to.is_some() && delivered > 0;
    if !only_here {
        delivered += (shared.bus)
            .relay(user, sender, to.as_ref(), audience, &bytes)
            .await;
    }
    if delivered == 0 {
        return Err(ProtocolError::not_found(match (&to, audience) {
            (Some(to), _) => format!("{to} is not one of your online sessions"),
            (None, Audience::Humans) => "none of your human sessions is online".to_owned(),
            (None, Audience::Agents) => "none of your agent sessions is online".to_owned(),
        }));
    }
    // Written once delivered: a relay that reached nobody did nothing to record.
    if let (true, ServerFrame::Relay { body, .. }) = (audited, &frame) {
        governance::audit_relay(shared, me, to.as_ref(), body).await?;
    }
    Ok(Some(ServerFrame::Done { id }))
}

/// Random bytes in an invite code or token (printed as 26 characters).
pub(super) const INVITE_CODE_BYTES: usize = 16;

/// Base32 in lower case (`a`–`z`, `2`–`7`): nothing to misread when typed, and never a
/// leading `-` that a command line would take for an option.
pub(super) fn invite_code(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut code = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            code.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        code.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes_are_lower_case_base32_that_no_shell_or_parser_misreads() {
        // RFC 4648's own test vector, in lower case and unpadded.
        assert_eq!(invite_code(b"foobar"), "mzxw6ytboi");
        let code = invite_code(&[0xff; INVITE_CODE_BYTES]);
        assert_eq!(code.len(), 26);
        assert!(
            code.chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
    }
}
