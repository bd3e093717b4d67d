//! Accounts and machines: registration, key lookup, enrolling by invite code, the human key,
//! and the server's identity.

use conclave::net::protocol::ErrorCode;
use conclave::server::store::{INVITE_TTL_MS, MAX_MACHINES, Signer, Store, now_ms};

use crate::support::{name, refused, setup, user};

pub async fn the_server_id_is_kept_once_saved(store: impl Store) {
    assert_eq!(store.stored_server_id().await.unwrap(), None);
    store.save_server_id("s1").await.unwrap();
    assert_eq!(
        store.stored_server_id().await.unwrap().as_deref(),
        Some("s1")
    );
}

pub async fn registration_claims_a_name_once(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let again = store
        .register(&name("alice"), &name("laptop"), &[1; 32])
        .await;
    assert_eq!(again.unwrap(), alice, "re-running register is harmless");
    let taken = store
        .register(&name("alice"), &name("other"), &[2; 32])
        .await;
    refused(taken, ErrorCode::Conflict, "the user name `alice` is taken");
    let reused = store.register(&name("bob"), &name("x"), &[1; 32]).await;
    refused(
        reused,
        ErrorCode::Conflict,
        "already registered as alice/laptop",
    );
}

pub async fn a_key_signs_in_as_its_account_and_an_unknown_key_as_nobody(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let found = store.account_by_key(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(
        (found.user.as_str(), found.machine.as_str()),
        ("alice", "laptop")
    );
    assert!(!found.uses_human_keys && !found.is_human_key && found.banned.is_none());
    assert!(store.account_by_key(&[9; 32]).await.unwrap().is_none());
}

pub async fn machines_are_enrolled_listed_and_removed_but_not_the_last(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let (me, soon) = (alice.user_id, now_ms() + INVITE_TTL_MS);
    let machine = Signer::MachineKey;
    // Two codes for one name: the second enrollment finds the name taken.
    for code in ["c1", "c0"] {
        store
            .invite_machine(me, &name("desk"), code, soon, machine)
            .await
            .unwrap();
    }
    store.enroll("c1", &[3; 32]).await.unwrap();
    let second = store.enroll("c0", &[4; 32]).await;
    refused(
        second,
        ErrorCode::Conflict,
        "already have a machine named `desk`",
    );
    let listed = store.list_machines(me).await.unwrap();
    let listed: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(listed, ["desk", "laptop"]);
    let twice = store
        .invite_machine(me, &name("desk"), "c2", soon, machine)
        .await;
    refused(
        twice,
        ErrorCode::Conflict,
        "already have a machine named `desk`",
    );
    let missing = store.remove_machine(me, &name("nowhere"), machine).await;
    refused(missing, ErrorCode::NotFound, "no machine named `nowhere`");
    store
        .remove_machine(me, &name("laptop"), machine)
        .await
        .unwrap();
    assert!(
        store.account_by_key(&[1; 32]).await.unwrap().is_none(),
        "its key stops working"
    );
    let last = store.remove_machine(me, &name("desk"), machine).await;
    refused(last, ErrorCode::Forbidden, "your only machine");
}

pub async fn machines_per_user_are_capped(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let soon = now_ms() + INVITE_TTL_MS;
    for n in 1..MAX_MACHINES {
        let code = format!("code-{n}");
        let machine = name(&format!("m{n}"));
        let signer = Signer::MachineKey;
        store
            .invite_machine(alice.user_id, &machine, &code, soon, signer)
            .await
            .unwrap();
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&n.to_le_bytes());
        key[31] = 0xee;
        store.enroll(&code, &key).await.unwrap();
    }
    let full = store
        .invite_machine(
            alice.user_id,
            &name("one-more"),
            "x",
            soon,
            Signer::MachineKey,
        )
        .await;
    refused(full, ErrorCode::RateLimited, "you have 100 machines");
}

pub async fn an_invite_code_enrolls_one_key_once_before_it_expires(store: impl Store) {
    let alice = user(&store, "alice", 1).await;
    let (me, signer) = (alice.user_id, Signer::MachineKey);
    store
        .invite_machine(
            me,
            &name("desk"),
            "code-1",
            now_ms() + INVITE_TTL_MS,
            signer,
        )
        .await
        .unwrap();
    // A key already enrolled is refused, and the code survives the refusal.
    refused(
        store.enroll("code-1", &[1; 32]).await,
        ErrorCode::Conflict,
        "already enrolled",
    );
    let desk = store.enroll("code-1", &[5; 32]).await.unwrap();
    assert_eq!(
        (desk.user.as_str(), desk.machine.as_str()),
        ("alice", "desk")
    );
    let again = store.enroll("code-1", &[6; 32]).await;
    refused(again, ErrorCode::Forbidden, "unknown, used or expired");
    store
        .invite_machine(me, &name("box"), "code-3", now_ms() - 1, signer)
        .await
        .unwrap();
    refused(
        store.enroll("code-3", &[7; 32]).await,
        ErrorCode::Forbidden,
        "expired",
    );
}

pub async fn a_human_key_signs_in_as_its_machine_and_only_itself_replaces_it(store: impl Store) {
    let alice = setup(&store).await;
    let (me, laptop) = (alice.user_id, name("laptop"));
    store
        .set_human_key(me, &laptop, &[9; 32], &[1; 32])
        .await
        .unwrap();
    let by_machine_key = store.account_by_key(&[1; 32]).await.unwrap().unwrap();
    assert!(by_machine_key.uses_human_keys && !by_machine_key.is_human_key);
    let by_human_key = store.account_by_key(&[9; 32]).await.unwrap().unwrap();
    assert!(by_human_key.uses_human_keys && by_human_key.is_human_key);
    assert_eq!(by_human_key.machine, laptop);
    let swap = store.set_human_key(me, &laptop, &[8; 32], &[1; 32]).await;
    refused(
        swap,
        ErrorCode::Forbidden,
        "only a session signed in with it",
    );
    let reuse = store.set_human_key(me, &laptop, &[1; 32], &[9; 32]).await;
    refused(reuse, ErrorCode::Conflict, "already in use");
    store
        .set_human_key(me, &laptop, &[8; 32], &[9; 32])
        .await
        .unwrap();
    assert!(
        store.account_by_key(&[9; 32]).await.unwrap().is_none(),
        "the old one is gone"
    );
}

pub async fn once_an_account_uses_human_keys_only_they_manage_its_machines(store: impl Store) {
    let alice = setup(&store).await;
    let me = alice.user_id;
    store
        .set_human_key(me, &name("laptop"), &[9; 32], &[1; 32])
        .await
        .unwrap();
    let soon = now_ms() + INVITE_TTL_MS;
    // An agent holding only a machine key can neither mint a machine nor drop one.
    let minted = store
        .invite_machine(me, &name("ghost"), "c1", soon, Signer::MachineKey)
        .await;
    refused(minted, ErrorCode::Forbidden, "uses human keys");
    let dropped = store
        .remove_machine(me, &name("laptop"), Signer::MachineKey)
        .await;
    refused(dropped, ErrorCode::Forbidden, "uses human keys");
    // A person invites; the new machine gets its first human key while newly enrolled.
    store
        .invite_machine(me, &name("desk"), "c2", soon, Signer::HumanKey)
        .await
        .unwrap();
    store.enroll("c2", &[5; 32]).await.unwrap();
    store
        .set_human_key(me, &name("desk"), &[6; 32], &[5; 32])
        .await
        .unwrap();
    // Removing a machine (as a person) takes the user's open codes with it.
    store
        .invite_machine(me, &name("spare"), "c4", soon, Signer::HumanKey)
        .await
        .unwrap();
    store
        .remove_machine(me, &name("desk"), Signer::HumanKey)
        .await
        .unwrap();
    assert!(store.enroll("c4", &[3; 32]).await.is_err());
}
