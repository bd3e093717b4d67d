//! This instance's claim on the database it serves (see `InstanceClaim`).

use std::time::Duration;

use tokio_postgres::NoTls;

use super::{OpenError, one_line, parse_url, shown};

/// Which advisory lock marks a database (and schema) as served; the second key is the schema.
const INSTANCE_LOCK: i32 = 0x636f_6e63;

/// This instance's claim on its database, held while it serves. Instances without a bus
/// would leave each other's clients blind to what the other stores, so an instance without
/// one must be the only one (an exclusive lock), and instances with a bus may be many (a
/// shared lock). The claim is a session advisory lock on a connection of its own: it ends
/// with this process, killed or not. When the database goes away and comes back, the claim
/// is taken again.
pub struct InstanceClaim {
    keeper: tokio::task::AbortHandle,
}

impl Drop for InstanceClaim {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// How long the keeper of a lost claim waits between tries.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(1);

impl InstanceClaim {
    /// Claims the database at `url`, or says which rule refuses.
    pub async fn claim(url: &str, with_bus: bool) -> Result<Self, OpenError> {
        let config = parse_url(url)?;
        let mut held = Self::lock(&config, with_bus).await?;
        let keeper = tokio::spawn(async move {
            loop {
                if let Err(e) = held.await.unwrap_or(Ok(())) {
                    tracing::warn!(%e, "the connection holding this instance's claim ended");
                }
                held = loop {
                    tokio::time::sleep(RECLAIM_INTERVAL).await;
                    match Self::lock(&config, with_bus).await {
                        Ok(again) => break again,
                        Err(OpenError::Unreachable { .. }) => {}
                        Err(e) => tracing::error!(
                            "{e} (it started while this instance could not reach the database)"
                        ),
                    }
                };
                tracing::info!("this instance's claim on the database is held again");
            }
        });
        Ok(Self {
            keeper: keeper.abort_handle(),
        })
    }

    /// Takes the lock on a connection of its own; the task driving that connection ends
    /// when the connection does, and the lock with it.
    async fn lock(
        config: &tokio_postgres::Config,
        with_bus: bool,
    ) -> Result<tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>, OpenError> {
        const SHARED: &str = "SELECT pg_try_advisory_lock_shared($1, hashtext(current_schema()))";
        const EXCLUSIVE: &str = "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))";
        let label = shown(config);
        let unreachable = |e: &tokio_postgres::Error| OpenError::Unreachable {
            url: label.clone(),
            reason: one_line(e),
        };
        let (client, connection) = config.connect(NoTls).await.map_err(|e| unreachable(&e))?;
        let connection = tokio::spawn(connection);
        let lock = if with_bus { SHARED } else { EXCLUSIVE };
        let taken: bool = client
            .query_one(lock, &[&INSTANCE_LOCK])
            .await
            .map_err(|e| unreachable(&e))?
            .get(0);
        if taken {
            return Ok(tokio::spawn(async move {
                let ended = connection.await.unwrap_or(Ok(()));
                // The client lives as long as its connection: dropping it ends the claim.
                drop(client);
                ended
            }));
        }
        // A shared claim refused means an instance without a bus holds it; an exclusive one
        // refused may mean either, which a shared try tells apart (this connection is
        // dropped right after, and its claim with it).
        let cluster_holds = !with_bus
            && client
                .query_one(SHARED, &[&INSTANCE_LOCK])
                .await
                .map_err(|e| unreachable(&e))?
                .get::<_, bool>(0);
        Err(if cluster_holds {
            OpenError::TakenByCluster { url: label }
        } else {
            OpenError::TakenAlone { url: label }
        })
    }
}
