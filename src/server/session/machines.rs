//! A user's machines and keys: invite, list, remove, and the human key.

use super::*;

/// `ClientFrame::InviteMachine`.
pub(super) async fn invite_machine(
    shared: &Shared,
    me: &Me,
    id: u64,
    machine: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let mut bytes = [0u8; INVITE_CODE_BYTES];
    random_bytes(&mut bytes).map_err(|e| ProtocolError::internal(e.to_string()))?;
    let code = invite_code(&bytes);
    let expires = now_ms() + INVITE_TTL_MS;
    shared
        .store
        .invite_machine(me.user_id, &machine, &code, expires, me.signer)
        .await?;
    Ok(Some(ServerFrame::MachineInvite {
        id,
        machine,
        code,
        expires,
    }))
}

/// `ClientFrame::SetHumanKey`.
pub(super) async fn set_human_key(
    shared: &Shared,
    me: &Me,
    outbox: &Outbox,
    id: u64,
    public_key: Vec<u8>,
    signature: Vec<u8>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    let path = me.path();
    let signed = registration_message(&shared.server_id, &path.user, &path.machine, &public_key);
    if !verify(&public_key, &signed, &signature) {
        return Err(ProtocolError::forbidden(
            "the signature does not match the human key",
        ));
    }
    shared
        .store
        .set_human_key(user, &path.machine, &public_key, &me.signer_key)
        .await?;
    // Every other session of the machine ends now: human ones signed in with the
    // machine key or a replaced human key, and whatever else held the old key.
    outbox.deliver_frame(&ServerFrame::Done { id });
    shared
        .hub
        .end_machine_sessions(user, &path.machine, &me.attached);
    Ok(None)
}

/// `ClientFrame::ListMachines`.
pub(super) async fn list_machines(
    shared: &Shared,
    me: &Me,
    id: u64,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let machines = shared.store.list_machines(me.user_id).await?;
    Ok(Some(ServerFrame::Machines { id, machines }))
}

/// `ClientFrame::RemoveMachine`.
pub(super) async fn remove_machine(
    shared: &Shared,
    me: &Me,
    outbox: &Outbox,
    id: u64,
    machine: Name,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let user = me.user_id;
    shared
        .store
        .remove_machine(user, &machine, me.signer)
        .await?;
    // Answer first: when the machine is this one, the answer must still get out.
    outbox.deliver_frame(&ServerFrame::Done { id });
    shared.hub.revoke_machine(user, &machine);
    Ok(None)
}
