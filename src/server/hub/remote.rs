//! What another instance asks of the sessions here while it signs a session in: which paths
//! of that user and machine are live here, and taking one of them over.

use super::*;

impl Hub {
    /// Paths of `base`'s user and machine live here. When a session of another instance claims
    /// `base` and may take it (`Replace`, or the same client `instance` reconnecting there),
    /// the session here is closed as replaced first and is not listed.
    pub fn yield_path(
        &self,
        base: &SessionPath,
        instance: Option<&str>,
        policy: OnConflict,
    ) -> Vec<SessionPath> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let same_instance =
            |live: &Live| instance.is_some() && live.instance.as_deref() == instance;
        let taken_over = state
            .sessions
            .get(base)
            .is_some_and(|live| policy == OnConflict::Replace || same_instance(live));
        if taken_over && let Some(old) = state.remove_session(base) {
            old.outbox.control.close(
                CloseReason::Replaced,
                format!("{base} connected again from elsewhere"),
            );
            Self::drop_from_rooms(state, base, &old, PresenceChange::Offline);
        }
        state
            .sessions
            .keys()
            .filter(|p| p.user == base.user && p.machine == base.machine)
            .cloned()
            .collect()
    }
}
