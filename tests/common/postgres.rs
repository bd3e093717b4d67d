//! A PostgreSQL database for the tests that need one: `CONCLAVE_TEST_POSTGRES` names it
//! (`scripts/test-services.sh start` makes a throw-away one). Without it those tests skip,
//! unless `CONCLAVE_REQUIRE_POSTGRES=1` (as in CI), which makes them fail instead. Each test
//! gets an empty schema of its own, so they run in parallel on one database.
#![allow(dead_code, clippy::unwrap_used)]

/// The test database's URL, or `None` to skip.
pub fn test_url() -> Option<String> {
    match std::env::var("CONCLAVE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CONCLAVE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => panic!(
            "CONCLAVE_REQUIRE_POSTGRES=1 but CONCLAVE_TEST_POSTGRES is unset: start a database \
             with `eval \"$(scripts/test-services.sh start)\"`"
        ),
        _ => None,
    }
}

/// Makes an empty schema no other test uses, and returns `url` with every connection set to
/// work in it.
pub async fn fresh_schema(url: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("test_{}_{nanos}_{n}", std::process::id());
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    drop(client);
    let _ = connection.await;
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// `fresh_schema` for a test without a runtime of its own.
pub fn fresh_schema_blocking(url: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fresh_schema(url))
}
