//! The only code that calls rmp-serde: frames to bytes and back, with the size cap applied to
//! the raw bytes before decoding allocates anything.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::protocol::{MAX_FRAME_BYTES, ProtocolError};

/// Encodes a frame as a MessagePack map with named fields.
pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>, ProtocolError> {
    rmp_serde::to_vec_named(frame)
        .map_err(|e| ProtocolError::internal(format!("cannot encode frame: {e}")))
}

/// Decodes one client frame, refusing oversized input before looking at it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    decode_limited(bytes, MAX_FRAME_BYTES)
}

/// Decodes one frame of at most `limit` bytes (clients read server frames up to
/// `MAX_WIRE_BYTES`).
pub fn decode_limited<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, ProtocolError> {
    if bytes.len() > limit {
        return Err(ProtocolError::over_limit("frame", bytes.len(), limit));
    }
    rmp_serde::from_slice(bytes)
        .map_err(|e| ProtocolError::invalid(format!("malformed frame: {e}")))
}

/// The request id of a frame that failed to decode as a whole (malformed or too large), so
/// that the error can still answer the request it belongs to instead of leaving the caller
/// waiting. Skipped fields are not allocated, so this is safe on anything the transport read.
pub fn salvage_request_id(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<u64>,
    }
    rmp_serde::from_slice::<IdOnly>(bytes).ok()?.id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::names::{Name, SessionPath};
    use crate::net::protocol::*;

    fn name(s: &str) -> Name {
        Name::parse("test", s).unwrap()
    }

    fn path() -> SessionPath {
        SessionPath::parse("alice/laptop/tui").unwrap()
    }

    fn msg() -> ChatMessage {
        ChatMessage {
            from_kind: None,
            channel: name("general"),
            seq: 7,
            ts: 1_700_000_000_000,
            from: path(),
            text: "héllo 🌍".into(),
            reply_to: None,
            change: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }

    fn every_client_frame() -> Vec<ClientFrame> {
        vec![
            ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                handle: name("tui"),
                kind: SessionKind::Human,
                on_conflict: OnConflict::Suffix,
                instance: Some("4f2a".into()),
            },
            ClientFrame::Auth {
                public_key: vec![1; 32],
                signature: vec![2; 64],
            },
            ClientFrame::Register {
                username: name("alice"),
                machine: name("laptop"),
                public_key: vec![1; 32],
                signature: vec![2; 64],
            },
            ClientFrame::CreateChannel {
                id: 1,
                channel: name("general"),
                visibility: Visibility::Private,
            },
            ClientFrame::ListChannels {
                id: 2,
                after: None,
                limit: None,
            },
            ClientFrame::Join {
                invite: None,
                id: 3,
                channel: name("general"),
            },
            ClientFrame::Leave {
                id: 4,
                channel: name("general"),
            },
            ClientFrame::Send {
                id: 5,
                channel: name("general"),
                client_id: "abc".into(),
                text: "hi".into(),
                reply_to: None,
                change: None,
            },
            ClientFrame::Whisper {
                id: 6,
                to: path(),
                text: "psst".into(),
            },
            ClientFrame::History {
                id: 7,
                channel: name("general"),
                after: Some(3),
                before: None,
                limit: 50,
                thread: None,
            },
            ClientFrame::Who {
                id: 8,
                channel: None,
            },
            ClientFrame::MarkRead {
                id: 9,
                channel: name("general"),
                seq: 4,
            },
            ClientFrame::AddMachine {
                id: 10,
                machine: name("desk"),
                public_key: vec![3; 32],
            },
            ClientFrame::ListMachines { id: 11 },
            ClientFrame::RemoveMachine {
                id: 12,
                machine: name("desk"),
            },
            ClientFrame::Relay {
                id: 13,
                to: None,
                audience: Some(Audience::Humans),
                body: RelayBody::PermissionRequest {
                    request_id: "abcde".into(),
                    tool_name: "Bash".into(),
                    description: "run tests".into(),
                    input_preview: "{}".into(),
                    expires_in_ms: 300_000,
                },
            },
            ClientFrame::Relay {
                id: 14,
                to: Some(path()),
                audience: None,
                body: RelayBody::AutonomyQuery,
            },
            ClientFrame::InviteMachine {
                id: 15,
                machine: name("desk"),
            },
            ClientFrame::Enroll {
                code: "c0de".into(),
                public_key: vec![1; 32],
                signature: vec![2; 64],
            },
            ClientFrame::SetHumanKey {
                id: 16,
                public_key: vec![1; 32],
                signature: vec![2; 64],
            },
        ]
    }

    fn every_server_frame() -> Vec<ServerFrame> {
        let info = ChannelInfo {
            topic: String::new(),
            archived: false,
            name: name("general"),
            visibility: Visibility::Public,
            member: true,
            last_seq: 9,
            members: 0,
        };
        let session = SessionInfo {
            path: path(),
            kind: SessionKind::Agent,
        };
        vec![
            ServerFrame::Challenge {
                nonce: vec![9; NONCE_LEN],
                server_id: "srv".into(),
            },
            ServerFrame::Welcome {
                path: path(),
                server_id: "srv".into(),
                version: PROTOCOL_VERSION,
                admin: false,
            },
            ServerFrame::error(Some(3), ProtocolError::not_found("no such channel")),
            ServerFrame::Done { id: 1 },
            ServerFrame::ChannelCreated {
                id: 1,
                channel: info.clone(),
            },
            ServerFrame::Channels {
                id: 2,
                channels: vec![info.clone()],
                more: true,
            },
            ServerFrame::Joined {
                id: 3,
                channel: info,
                read_seq: 2,
                new_member: true,
            },
            ServerFrame::Sent {
                id: 5,
                channel: name("general"),
                seq: 10,
                ts: 5,
                duplicate: false,
            },
            ServerFrame::History {
                id: 7,
                channel: name("general"),
                messages: vec![msg()],
                more: true,
            },
            ServerFrame::Who {
                id: 8,
                channel: Some(name("general")),
                sessions: vec![session.clone()],
                members: vec![name("alice")],
                truncated: true,
            },
            ServerFrame::Machines {
                id: 11,
                machines: vec![MachineInfo {
                    name: name("laptop"),
                    public_key: "ed25519:AAAA".into(),
                    added: 1,
                }],
            },
            ServerFrame::Message(msg()),
            ServerFrame::Whisper(WhisperMessage {
                from: path(),
                to: path(),
                ts: 3,
                text: "psst".into(),
            }),
            ServerFrame::Presence(PresenceEvent {
                channel: name("general"),
                session,
                change: PresenceChange::Online,
            }),
            ServerFrame::Closing {
                reason: CloseReason::TooSlow,
                message: "queue full".into(),
            },
            ServerFrame::Relay {
                from: path(),
                from_kind: SessionKind::Human,
                body: RelayBody::PermissionVerdict {
                    request_id: "abcde".into(),
                    allow: true,
                },
            },
            ServerFrame::Relay {
                from: path(),
                from_kind: SessionKind::Agent,
                body: RelayBody::AutonomyReport {
                    levels: vec![ChannelAutonomy {
                        channel: name("general"),
                        level: Autonomy::Converse,
                    }],
                    default: Autonomy::Notify,
                    not_applicable: false,
                },
            },
            ServerFrame::MachineInvite {
                id: 15,
                machine: name("desk"),
                code: "c0de".into(),
                expires: 1_764_000_000_000,
            },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in every_client_frame() {
            let bytes = encode(&frame).unwrap();
            assert_eq!(
                decode::<ClientFrame>(&bytes).unwrap(),
                frame,
                "{}",
                frame.kind()
            );
        }
        for frame in every_server_frame() {
            let bytes = encode(&frame).unwrap();
            assert_eq!(
                decode::<ServerFrame>(&bytes).unwrap(),
                frame,
                "{}",
                frame.kind()
            );
        }
    }

    #[test]
    fn frames_are_maps_tagged_by_type_with_named_fields() {
        // Pinned bytes: a change here breaks every deployed peer.
        let bytes = encode(&ClientFrame::ListChannels {
            id: 2,
            after: None,
            limit: None,
        })
        .unwrap();
        assert_eq!(
            bytes,
            [
                0x82, 0xa4, b't', b'y', b'p', b'e', 0xad, b'l', b'i', b's', b't', b'_', b'c', b'h',
                b'a', b'n', b'n', b'e', b'l', b's', 0xa2, b'i', b'd', 0x02
            ]
        );
        let bytes = encode(&ServerFrame::Done { id: 1 }).unwrap();
        assert_eq!(
            bytes,
            [
                0x82, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'd', b'o', b'n', b'e', 0xa2, b'i', b'd',
                0x01
            ]
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_default() {
        // A newer peer's extra field, and an older peer's missing optional fields.
        let value = serde_json::json!({"type": "who", "id": 4, "future": [1, 2]});
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(
            decode::<ClientFrame>(&bytes).unwrap(),
            ClientFrame::Who {
                id: 4,
                channel: None
            }
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_invalid_not_panics() {
        let value = serde_json::json!({"type": "launch_rockets", "id": 1});
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        let e = decode::<ClientFrame>(&bytes).unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.contains("launch_rockets"), "{}", e.message);

        for garbage in [
            &b""[..],
            b"\xc1",
            b"\xff\xff\xff",
            b"\x82\xa4type",
            b"\x92\x01",
        ] {
            assert_eq!(
                decode::<ClientFrame>(garbage).unwrap_err().code,
                ErrorCode::Invalid
            );
        }
        // A map that claims four billion entries must fail fast, not allocate.
        let huge = [0xdf, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode::<ClientFrame>(&huge).unwrap_err().code,
            ErrorCode::Invalid
        );
    }

    #[test]
    fn truncated_frames_are_invalid() {
        let bytes = encode(&every_client_frame()[7]).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode::<ClientFrame>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn oversized_frames_are_refused_before_decoding() {
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            decode::<ClientFrame>(&big).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn invalid_names_in_frames_are_refused() {
        let value = serde_json::json!({"type": "join", "id": 5, "channel": "no spaces"});
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        let e = decode::<ClientFrame>(&bytes).unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert_eq!(salvage_request_id(&bytes), Some(5));
    }
}
