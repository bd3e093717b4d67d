//! The server addresses a link dials: one, or several instances of one server tried in turn,
//! all of which must turn out to be the same server.

use super::*;

/// The server addresses in a `--server` value: one, or several separated by commas (instances
/// of one server, tried in turn).
pub fn server_urls(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

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
    /// With several server addresses, refuses an address that reaches another server than the
    /// first one did.
    pub(super) fn check_same_server(&mut self, server_id: &str) -> Option<Ended> {
        match &self.server_id {
            None => {
                self.server_id = Some(server_id.to_owned());
                None
            }
            Some(first) if first == server_id || !self.config.url.contains(',') => None,
            Some(first) => Some(Ended::Fatal(format!(
                "{} reaches another server (id {server_id}) than the first address did (id {first}): every address in --server must be an instance of one server",
                server_urls(&self.config.url)[self.next_url % server_urls(&self.config.url).len()]
            ))),
        }
    }
}
