//! The server's identity: a random id made on first start, kept in the database and in a
//! small file beside it. Clients sign the id into every login, so keys registered here are
//! useless elsewhere. The file is the witness that a database existed: a data directory whose
//! database went missing or was emptied (truncated, restored wrongly) would otherwise start as
//! a brand-new server, with every user name free for anyone to take.

use std::io::Write;
use std::path::Path;

use color_eyre::eyre::{Result, WrapErr, bail};

use super::store::Store;

/// The file beside the database that names the server it belongs to.
pub const ID_FILE: &str = "server-id";

/// The id of the server in `dir` (or of one with no directory: in memory, or on PostgreSQL),
/// made and recorded on first start. Refuses a database that does not match the directory's
/// id. A PostgreSQL store keeps only the database's copy: there is no directory beside it for
/// a witness file, and the instances sharing it must all read the one id.
pub async fn server_id(store: &impl Store, dir: Option<&Path>) -> Result<String> {
    let stored = store
        .stored_server_id()
        .await
        .wrap_err("cannot read the server id")?;
    let Some(dir) = dir else {
        return match stored {
            Some(id) => Ok(id),
            None => create(store).await,
        };
    };
    let file = dir.join(ID_FILE);
    let witnessed = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).wrap_err_with(|| format!("cannot read {}", file.display())),
    };
    match (witnessed, stored) {
        (Some(expected), Some(id)) if expected == id => Ok(id),
        (Some(expected), Some(id)) => bail!(
            "the database in {} belongs to server {id}, but {} says {expected}: was a database from another server copied here? Put the right one back, or remove {} if this is intended",
            dir.display(),
            file.display(),
            file.display()
        ),
        (Some(expected), None) => bail!(
            "the database in {} is empty, but this directory belonged to server {expected}: refusing to start as a new server, which would free every user name and forget every key. Restore conclave.db from a backup, or remove {} to start a new server here",
            dir.display(),
            file.display()
        ),
        (None, Some(id)) => {
            write_atomically(&file, &id)?;
            Ok(id)
        }
        (None, None) => {
            let id = create(store).await?;
            write_atomically(&file, &id)?;
            Ok(id)
        }
    }
}

async fn create(store: &impl Store) -> Result<String> {
    let mut bytes = [0u8; 16];
    crate::net::identity::random_bytes(&mut bytes).wrap_err("no randomness for a server id")?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    store
        .save_server_id(&id)
        .await
        .wrap_err("cannot record the server id")?;
    Ok(id)
}

/// Writes `file` whole or not at all, and durably: a crash leaves the old file or the new.
fn write_atomically(file: &Path, id: &str) -> Result<()> {
    let partial = file.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut out = std::fs::File::create(&partial)?;
        writeln!(out, "{id}")?;
        out.sync_all()?;
        std::fs::rename(&partial, file)
    };
    write().wrap_err_with(|| format!("cannot write {}", file.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::server::store::SqliteStore;

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(Some(dir), Duration::from_secs(3600), Box::new(|_| {})).unwrap()
    }

    #[tokio::test]
    async fn an_emptied_database_is_refused_and_a_kept_one_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let first = server_id(&open(dir.path()), Some(dir.path()))
            .await
            .unwrap();
        assert_eq!(
            server_id(&open(dir.path()), Some(dir.path()))
                .await
                .unwrap(),
            first
        );
        // Truncated to nothing, as a failed copy or a full disk can leave it.
        for name in ["conclave.db", "conclave.db-wal", "conclave.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(name));
        }
        std::fs::File::create(dir.path().join("conclave.db")).unwrap();
        let refused = server_id(&open(dir.path()), Some(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("is empty, but this directory belonged to server"),
            "{refused}"
        );
        assert!(refused.contains(&first), "{refused}");
    }

    #[tokio::test]
    async fn a_database_from_before_the_file_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.save_server_id("old").await.unwrap();
        assert_eq!(server_id(&store, Some(dir.path())).await.unwrap(), "old");
        let written = std::fs::read_to_string(dir.path().join(ID_FILE)).unwrap();
        assert_eq!(written.trim(), "old");
    }
}
