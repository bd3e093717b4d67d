//! The PostgreSQL schema as numbered migrations (`migrations/V{N}__{name}.sql`, kept by
//! refinery in `refinery_schema_history`), applied in order when the store opens. Instances
//! starting together take turns under an advisory lock; a database written by a newer version
//! is refused instead of guessed at. Add a file at the end; never edit one that has shipped.

use deadpool_postgres::Object;

use super::{OpenError, one_line};

refinery::embed_migrations!("src/server/store/postgres/migrations");

/// The advisory lock instances take while they migrate (any fixed number of our own).
const MIGRATION_LOCK: i64 = 0x636f_6e63_6c61_7601;

/// The newest schema version this build knows.
fn ours() -> i64 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// Brings the database `conn` is on to the newest schema, or refuses a newer one. `url` is
/// how errors name the database.
pub async fn migrate(conn: &mut Object, url: &str) -> Result<(), OpenError> {
    let failed = |e: &dyn std::error::Error| OpenError::Migrate {
        url: url.to_owned(),
        reason: one_line(e),
    };
    let client: &mut tokio_postgres::Client = conn;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed(&e))?;
    let done = async {
        let found = applied_version(client).await.map_err(|e| failed(&e))?;
        let ours = ours();
        if found > ours {
            return Err(OpenError::Newer {
                url: url.to_owned(),
                found,
                ours,
            });
        }
        migrations::runner()
            .run_async(client)
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
    }
    .await;
    // A connection that failed midway is dropped by the pool, and its lock with it.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    done
}

/// The newest version applied to the database; 0 for a new one.
async fn applied_version(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
