//! The conformance suite of the store API: what every `Store` backend must do, asked through
//! the trait alone. Each case is an `async fn(impl Store)` in the module of its concern
//! (`accounts`, `channels`, `messages`, `governance`) and runs once per backend, on a store
//! of its own with nothing in it.
//!
//! Backends: `conformance!(NAME, OPEN)` below, one line each. `OPEN` is an async fn returning
//! `Option<impl Store>`: `None` skips the cases (they pass without running). SQLite always
//! runs, in memory. PostgreSQL's opener reads the database URL from `CONCLAVE_TEST_POSTGRES`,
//! returns `None` when it is unset (or fails, with `CONCLAVE_REQUIRE_POSTGRES=1`, as in CI),
//! and otherwise hands each case a store on an empty schema of its own.
//!
//! A new case: write it in its module, then name it once in `cases!`. What only one backend
//! has to prove lives beside it (`postgres_only`; SQLite's in `src/server/store/sqlite`).
#![allow(clippy::unwrap_used)]

mod accounts;
mod changes;
mod channels;
mod governance;
mod messages;
mod postgres_only;
mod search;
mod support;
#[path = "../common/postgres.rs"]
mod test_postgres;

/// Every case of the suite, for one backend.
macro_rules! cases {
    ($open:path; $($module:ident :: $case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(store) = $open().await {
                    crate::$module::$case(store).await;
                }
            }
        )+
    };
}

/// The suite for one backend, as a module of its own.
macro_rules! conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            cases! {
                $open;
                accounts::the_server_id_is_kept_once_saved,
                accounts::registration_claims_a_name_once,
                accounts::a_key_signs_in_as_its_account_and_an_unknown_key_as_nobody,
                accounts::machines_are_enrolled_listed_and_removed_but_not_the_last,
                accounts::machines_per_user_are_capped,
                accounts::an_invite_code_enrolls_one_key_once_before_it_expires,
                accounts::a_human_key_signs_in_as_its_machine_and_only_itself_replaces_it,
                accounts::once_an_account_uses_human_keys_only_they_manage_its_machines,
                channels::a_new_channel_has_its_creator_as_owner_and_only_member,
                channels::a_taken_name_is_not_available_whoever_asks,
                channels::channels_per_creator_are_capped,
                channels::the_channel_list_comes_in_pages_by_name,
                channels::private_channels_stay_hidden_and_unlisted_ones_open_to_their_name,
                channels::joining_twice_makes_one_membership_and_leaving_ends_it,
                channels::members_come_by_name_up_to_a_limit,
                channels::the_owner_leaving_hands_the_channel_to_a_moderator_first,
                messages::a_resend_with_the_same_client_id_gets_the_same_seq,
                messages::a_batch_of_appends_gets_gap_free_seqs_in_queue_order,
                messages::a_resend_queued_right_behind_its_first_send_is_stored_once,
                messages::non_members_cannot_post_and_private_channels_look_missing,
                messages::history_pages_forward_and_backward,
                messages::history_pages_are_cut_by_size,
                messages::read_positions_only_move_forward_and_stop_at_the_newest,
                messages::a_purge_drops_only_what_is_past_the_cutoff,
                messages::an_instance_catches_up_on_a_channel_by_seq_range,
                messages::a_reply_names_an_earlier_message_of_its_channel,
                messages::a_thread_pages_its_root_and_the_replies_to_it_only,
                search::search_finds_words_and_phrases_newest_first,
                search::search_pages_and_filters,
                search::search_never_shows_a_channel_the_user_may_not_read,
                search::a_purged_message_is_no_longer_found,
                messages::an_agent_run_stops_at_the_turn_budget_until_a_person_posts,
                governance::members_cannot_moderate_nor_learn_who_exists,
                governance::a_ban_ends_the_membership_and_keeps_the_user_out,
                governance::a_mute_stops_posts_but_not_reading,
                governance::roles_come_from_the_owner_and_a_handover_keeps_the_old_owner_a_moderator,
                governance::a_rename_keeps_the_history_and_frees_the_old_name,
                governance::archiving_makes_a_channel_read_only_and_deleting_takes_it_away,
                governance::the_hook_runs_after_a_done_act_and_never_after_a_refused_one,
                governance::invites_admit_to_private_channels_for_their_uses,
                governance::moderators_add_members_who_are_not_banned,
                governance::a_server_ban_shows_at_sign_in_until_it_is_lifted,
                governance::users_come_in_pages_by_name,
                governance::the_audit_log_pages_newest_first_and_each_reader_sees_their_part,
                governance::timed_bans_mutes_and_invites_run_out,
                changes::an_edit_is_an_event_that_rewrites_its_target_for_its_sender_only,
                changes::a_delete_leaves_a_tombstone_and_moderators_may_delete_any,
                changes::reactions_are_counted_once_per_user_and_taken_back,
                changes::moderators_pin_messages_that_a_delete_unpins,
                changes::agents_edits_are_turns_and_deletes_forget_the_edited_text,
                changes::a_direct_conversation_is_made_once_and_leaving_it_keeps_the_other_out,
                changes::one_user_starts_at_most_sixty_direct_conversations_an_hour,
            }
        }
    };
}

conformance!(sqlite, crate::support::sqlite);
conformance!(postgres, crate::support::postgres);
