//! The server addresses a link dials (one, or several instances of one server tried in
//! turn) and the id each must answer with, checked before anything is signed.

use super::*;

/// Tries each address in turn, from `first`, until one answers; returns the outcome and the
/// index of the address that answered (or of the first one tried, when none did).
pub(super) async fn dial<C, F>(
    connect: &C,
    urls: &[String],
    first: usize,
) -> (Result<Conn, ConnectError>, usize)
where
    C: Fn(String) -> F + Sync,
    F: Future<Output = Result<Conn, ConnectError>>,
{
    if urls.is_empty() {
        return (Err(ConnectError::fatal("no server address given")), 0);
    }
    let mut failures = Vec::new();
    for step in 0..urls.len() {
        let index = (first + step) % urls.len();
        match connect(urls[index].clone()).await {
            Ok(conn) => return (Ok(conn), index),
            Err(e) if e.fatal => return (Err(e), index),
            Err(e) => failures.push(e.message),
        }
    }
    (
        Err(ConnectError::transient(failures.join("; "))),
        first % urls.len(),
    )
}

impl LinkTask {
    /// Refuses, before anything is signed, a server whose id is not the one expected: the
    /// one registered under this address's alias, else (with several addresses) the one the
    /// first connection reached. Registering at an address that answers with the id of
    /// another of the person's servers is refused too: a server relaying that one's challenge
    /// would get a signature valid there. (An address never registered that answers with a
    /// known id is taken as another way to that server, a proxy say.)
    pub(super) fn check_server_id(&self, server_id: &str) -> Result<(), Ended> {
        let well_formed = !server_id.is_empty()
            && server_id.len() <= MAX_SERVER_ID_LEN
            && server_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(Ended::Fatal(format!(
                "{} sent a malformed server id; not signing in",
                self.current_url()
            )));
        }
        let pin = &self.config.pin;
        // Registering or enrolling at a new address that answers as one of the person's other
        // servers: the new server may be passing that one's challenge on, to be let in there.
        let first_contact = !matches!(self.config.login, Login::Key);
        if let Some((_, alias)) = pin.others.iter().find(|(id, _)| id == server_id) {
            if first_contact && pin.expected.as_deref() != Some(server_id) {
                return Err(Ended::Fatal(format!(
                    "{} answers as your server `{alias}`: not signing in there again (if it is `{alias}` reached another way, use --server {alias}; if not, it may be passing on `{alias}`'s challenge to sign in there as you)",
                    self.current_url()
                )));
            }
        }
        if let Some((registry, alias)) = &pin.registry
            && let Err(first) = registry.claim(server_id, alias)
        {
            return Err(Ended::Fatal(format!(
                "`{alias}` ({}) reaches the same server as `{first}`, which is open already: not opening it twice",
                self.current_url()
            )));
        }
        let several = self.urls.len() > 1;
        let expected = pin
            .expected
            .as_deref()
            .or(self.server_id.as_deref().filter(|_| several));
        match expected {
            Some(expected) if expected != server_id => Err(Ended::Fatal(format!(
                "{} is not the server registered here (its id is {server_id}, not {expected}); if it was reset, register again",
                self.current_url()
            ))),
            _ => Ok(()),
        }
    }

    /// The address dialled last.
    fn current_url(&self) -> &str {
        self.urls
            .get(self.next_url % self.urls.len().max(1))
            .map_or("", String::as_str)
    }
}

/// Longest server id a client accepts (ids are 32 hex digits).
const MAX_SERVER_ID_LEN: usize = 64;
