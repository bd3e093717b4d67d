//! One named place for what each request does once a session is signed in: `handle` matches
//! the frame and answers it (or sends the answer some other way, for joins and sends, whose
//! answers must be ordered against fan-out).

use super::*;
use crate::net::protocol::{Role, remaining_in_words};

/// Handles one request. `Ok(None)` means the answer is sent some other way (joins and sends,
/// whose answers must be ordered against fan-out).
pub(super) async fn handle(
    shared: &Shared,
    me: &Me,
    outbox: &Outbox,
    frame: ClientFrame,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    let store = &shared.store;
    match frame {
        ClientFrame::Hello { .. } | ClientFrame::Auth { .. } | ClientFrame::Register { .. } => Err(
            ProtocolError::invalid("this connection is already authenticated"),
        ),
        ClientFrame::CreateChannel {
            id,
            channel,
            visibility,
        } => {
            let admin = shared.admins.contains(&me.path().user);
            let limits = shared.admission.limits();
            let max = (!admin).then_some(limits.max_channels_per_user);
            let turns = limits.agent_turns;
            let channel = store
                .call(move |db| db.create_channel(&channel, visibility, user, max, turns))
                .await?;
            Ok(Some(ServerFrame::ChannelCreated { id, channel }))
        }
        ClientFrame::ListChannels { id, after, limit } => {
            let limit = limit.unwrap_or(MAX_CHANNEL_PAGE).clamp(1, MAX_CHANNEL_PAGE);
            let (channels, more) = store
                .call(move |db| db.list_channels(user, after.as_ref(), limit))
                .await?;
            Ok(Some(ServerFrame::Channels { id, channels, more }))
        }
        ClientFrame::Join {
            id,
            channel,
            invite,
        } => {
            let mut tries = 0;
            loop {
                let checked = shared.hub.epoch(user);
                let handle = me.path().session.clone();
                let (name, token) = (channel.clone(), invite.clone());
                let joining = store
                    .call(move |db| db.join(&name, user, &handle, token.as_deref()))
                    .await?;
                let change = if joining.new_member {
                    PresenceChange::Joined
                } else {
                    PresenceChange::Online
                };
                let read_seq = joining.read_seq;
                let new_member = joining.new_member;
                let channel = joining.channel;
                let room = RoomRef {
                    id: channel.id,
                    name: &channel.name,
                    stored_last_seq: channel.last_seq,
                };
                let subscribing =
                    shared
                        .hub
                        .subscribe(room, &me.attached, change, checked, |last_seq| {
                            ServerFrame::Joined {
                                id,
                                channel: crate::net::protocol::ChannelInfo {
                                    name: channel.name.clone(),
                                    visibility: channel.visibility,
                                    member: true,
                                    last_seq,
                                    members: 0,
                                    topic: channel.topic.clone(),
                                    archived: channel.archived,
                                },
                                read_seq,
                                new_member,
                            }
                        });
                if let Some(done) = settled(subscribing, &mut tries) {
                    break done?;
                }
            }
            Ok(None)
        }
        ClientFrame::Leave { id, channel } => {
            let name = channel.clone();
            let found = store
                .call(move |db| db.visible_channel(&name, user))
                .await?;
            let others_remain = shared.hub.unsubscribe(found.id, &me.attached);
            if !others_remain {
                let removed = store
                    .call(move |db| db.remove_member(found.id, user))
                    .await?;
                if !removed {
                    return Err(ProtocolError::not_found(format!(
                        "you are not in #{channel}"
                    )));
                }
            }
            Ok(Some(ServerFrame::Left {
                id,
                channel,
                membership_ended: !others_remain,
            }))
        }
        ClientFrame::Send {
            id,
            channel,
            client_id,
            text,
        } => {
            check_text(&text)?;
            if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
                return Err(ProtocolError::invalid(format!(
                    "client_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
                )));
            }
            shared
                .admission
                .spend(user, me.kind, Spend::Send, Instant::now())?;
            let ack_to = outbox.clone();
            // A client pipelining sends waits here once it has this many in flight, and its
            // connection stops being read: the server holds a bounded amount per session.
            let in_flight = me
                .sends
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ProtocolError::internal("the session is closing"))?;
            store
                .append(Append {
                    channel,
                    sender_id: user,
                    from: me.path().clone(),
                    kind: me.kind,
                    client_id,
                    text,
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
                        Err(e) => ack_to.deliver_frame(&ServerFrame::error(Some(id), e)),
                    }),
                })
                .await;
            Ok(None)
        }
        ClientFrame::Whisper { id, to, text } => {
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
            shared.hub.whisper(&to, &frame)?;
            Ok(Some(ServerFrame::Done { id }))
        }
        ClientFrame::History {
            id,
            channel,
            after,
            before,
            limit,
        } => {
            let limit = limit.clamp(1, MAX_HISTORY_PAGE);
            let lookup = channel.clone();
            let page = store
                .call(move |db| {
                    let found = db.readable_channel(&lookup, user)?;
                    db.history(&found, after, before, limit)
                })
                .await?;
            Ok(Some(ServerFrame::History {
                id,
                channel,
                messages: page.messages,
                more: page.more,
            }))
        }
        ClientFrame::Who { id, channel } => {
            let (channel_id, mut members) = match &channel {
                None => (None, Vec::new()),
                Some(name) => {
                    let lookup = name.clone();
                    store
                        .call(move |db| {
                            let found = db.readable_channel(&lookup, user)?;
                            Ok((Some(found.id), db.members(found.id, MAX_WHO_ENTRIES + 1)?))
                        })
                        .await?
                }
            };
            let mut sessions = shared.hub.who(channel_id);
            let truncated = sessions.len() > MAX_WHO_ENTRIES || members.len() > MAX_WHO_ENTRIES;
            sessions.truncate(MAX_WHO_ENTRIES);
            members.truncate(MAX_WHO_ENTRIES);
            Ok(Some(ServerFrame::Who {
                id,
                channel,
                sessions,
                members,
                truncated,
            }))
        }
        ClientFrame::MarkRead { id, channel, seq } => {
            let handle = me.path().session.clone();
            store
                .call(move |db| {
                    let found = db.visible_channel(&channel, user)?;
                    db.mark_read(user, &handle, found.id, seq.min(found.last_seq))
                })
                .await?;
            Ok(Some(ServerFrame::Done { id }))
        }
        ClientFrame::AddMachine { .. } => Err(ProtocolError::forbidden(
            "a key is enrolled only by the machine that holds it: run `conclave machine invite NAME` here, then `conclave machine enroll CODE` there",
        )),
        ClientFrame::InviteMachine { id, machine } => {
            let mut bytes = [0u8; INVITE_CODE_BYTES];
            random_bytes(&mut bytes).map_err(|e| ProtocolError::internal(e.to_string()))?;
            let code = invite_code(&bytes);
            let expires = now_ms() + INVITE_TTL_MS;
            let (stored, invited) = (code.clone(), machine.clone());
            let signer = me.signer;
            store
                .call(move |db| db.invite_machine(user, &invited, &stored, expires, signer))
                .await?;
            Ok(Some(ServerFrame::MachineInvite {
                id,
                machine,
                code,
                expires,
            }))
        }
        ClientFrame::SetHumanKey {
            id,
            public_key,
            signature,
        } => {
            let path = me.path();
            let signed =
                registration_message(&shared.server_id, &path.user, &path.machine, &public_key);
            if !verify(&public_key, &signed, &signature) {
                return Err(ProtocolError::forbidden(
                    "the signature does not match the human key",
                ));
            }
            let (machine, signer_key) = (path.machine.clone(), me.signer_key.clone());
            store
                .call(move |db| db.set_human_key(user, &machine, &public_key, &signer_key))
                .await?;
            // Every other session of the machine ends now: human ones signed in with the
            // machine key or a replaced human key, and whatever else held the old key.
            outbox.deliver_frame(&ServerFrame::Done { id });
            shared
                .hub
                .end_machine_sessions(user, &path.machine, &me.attached);
            Ok(None)
        }
        ClientFrame::Enroll { .. } => Err(ProtocolError::invalid(
            "enroll belongs to the handshake; this connection is already authenticated",
        )),
        ClientFrame::ListMachines { id } => {
            let machines = store.call(move |db| db.list_machines(user)).await?;
            Ok(Some(ServerFrame::Machines { id, machines }))
        }
        ClientFrame::Relay {
            id,
            to,
            audience,
            body,
        } => {
            if body.steers_an_agent() && me.kind != SessionKind::Human {
                return Err(ProtocolError::forbidden(
                    "only a person's session may answer permission requests or steer an agent",
                ));
            }
            if body.steers_an_agent() {
                shared
                    .admission
                    .spend(user, me.kind, Spend::Act, Instant::now())?;
                governance::audit_relay(shared, me, to.as_ref(), &body).await?;
            }
            let frame = ServerFrame::Relay {
                from: me.path().clone(),
                from_kind: me.kind,
                body,
            };
            let audience = audience.unwrap_or(Audience::Humans);
            shared
                .hub
                .relay(&me.attached, to.as_ref(), audience, &frame)?;
            Ok(Some(ServerFrame::Done { id }))
        }
        ClientFrame::AddMember {
            id,
            channel,
            user: member,
        } => {
            let admin = shared.admins.contains(&me.path().user);
            store
                .call(move |db| {
                    let found = db.managed_channel(&channel, user, admin)?;
                    if !admin && db.role(found.id, user)?.is_none_or(|r| r == Role::Member) {
                        return Err(ProtocolError::forbidden(format!(
                            "only moderators and the owner of #{channel} may add members"
                        )));
                    }
                    let member_id = db.user_id(&member)?;
                    if let Some(ban) = db.ban_of(found.id, member_id, now_ms())? {
                        return Err(ProtocolError::forbidden(format!(
                            "{member} is banned from #{channel} {}; unban them first",
                            remaining_in_words(ban.until, now_ms())
                        )));
                    }
                    db.add_member(found.id, member_id)
                })
                .await?;
            Ok(Some(ServerFrame::Done { id }))
        }
        ClientFrame::RemoveMember {
            id,
            channel,
            user: member,
        } => {
            let admin = shared.admins.contains(&me.path().user);
            let (channel_id, member_id) = store
                .call(move |db| {
                    let found = db.managed_channel(&channel, user, admin)?;
                    let member_id = db.user_id(&member)?;
                    let mut outranks = || -> Result<bool, ProtocolError> {
                        let mine = db.role(found.id, user)?;
                        let theirs = db.role(found.id, member_id)?;
                        Ok(mine.is_some_and(|m| m >= Role::Moderator && theirs < Some(m)))
                    };
                    if member_id != user && !admin && !outranks()? {
                        return Err(ProtocolError::forbidden(format!(
                            "only moderators and the owner of #{channel} may remove members, and only those below them"
                        )));
                    }
                    if !db.remove_member(found.id, member_id)? {
                        return Err(ProtocolError::not_found(format!(
                            "`{member}` is not in #{channel}"
                        )));
                    }
                    Ok((found.id, member_id))
                })
                .await?;
            shared.hub.remove_user_from_room(channel_id, member_id);
            Ok(Some(ServerFrame::Done { id }))
        }
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
            let removing = machine.clone();
            let signer = me.signer;
            store
                .call(move |db| db.remove_machine(user, &removing, signer))
                .await?;
            // Answer first: when the machine is this one, the answer must still get out.
            outbox.deliver_frame(&ServerFrame::Done { id });
            shared.hub.revoke_machine(user, &machine);
            Ok(None)
        }
    }
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
