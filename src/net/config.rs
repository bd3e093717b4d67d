//! The client side's files in the config directory: where they live and the small TOML file
//! that remembers the default server and user. The key itself is `identity.rs`'s business.

use std::fs;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::protocol::Autonomy;

/// Where `conclave serve` listens and clients connect when nothing else is said.
pub const DEFAULT_BIND: &str = "127.0.0.1:7420";
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:7420";

const CONFIG_FILE: &str = "config.toml";

/// Autonomy key for every channel without its own level.
pub const AUTONOMY_DEFAULT: &str = "default";
/// Autonomy key for whispers.
pub const AUTONOMY_WHISPERS: &str = "whispers";

/// The autonomy table key for what a person typed: `default`, `whispers`, or a channel name.
pub fn autonomy_key(text: &str) -> Result<String, super::names::NameError> {
    match text {
        AUTONOMY_DEFAULT | AUTONOMY_WHISPERS => Ok(text.to_owned()),
        channel => Ok(super::names::Name::channel(channel)?.to_string()),
    }
}

/// An autonomy key as people read it: `#general`, `default`, `whispers`.
pub fn autonomy_place(key: &str) -> String {
    match key {
        AUTONOMY_DEFAULT | AUTONOMY_WHISPERS => key.to_owned(),
        channel => format!("#{channel}"),
    }
}

/// `$XDG_CONFIG_HOME/conclave` (or the platform's equivalent).
pub fn default_config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("conclave")
}

/// `$XDG_DATA_HOME/conclave` (or the platform's equivalent).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("conclave")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `config.toml` holds. Unknown keys are kept out of the way of newer versions by serde's
/// default of ignoring them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The server verbs talk to when `--server` is not given; set by `register`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The user name registered on that server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Agents' autonomy per channel name; the keys `default` (every other channel) and
    /// `whispers` (replies by whisper) are special. Set with `conclave perm set`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub autonomy: BTreeMap<String, Autonomy>,
}

impl ClientConfig {
    /// Reads the config file; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: e.message().to_owned(),
        })
    }

    /// Writes the config file atomically (temp file, then rename). Only the keys this type
    /// owns change: other tables in the file (the TUI's `[tui.*]`) are kept.
    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let write = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        let parse = |message: String| ConfigError::Parse {
            path: path.clone(),
            message,
        };
        let mut table: toml::Table = match fs::read_to_string(&path) {
            Ok(text) => text
                .parse()
                .map_err(|e: toml::de::Error| parse(e.message().to_owned()))?,
            Err(_) => toml::Table::new(),
        };
        let ours = toml::Table::try_from(self).map_err(|e| parse(e.to_string()))?;
        for key in ["server", "user", "autonomy"] {
            table.remove(key);
        }
        table.extend(ours);
        let text = toml::to_string(&table).map_err(|e| parse(e.to_string()))?;
        fs::create_dir_all(dir).map_err(write)?;
        let tmp = dir.join(format!(".{CONFIG_FILE}.tmp"));
        fs::write(&tmp, text).map_err(write)?;
        fs::rename(&tmp, &path).map_err(write)
    }

    /// The server to use: the explicit one, else the remembered one, else the local default.
    pub fn server_or_default(&self, explicit: Option<&str>) -> String {
        explicit
            .map(str::to_owned)
            .or_else(|| self.server.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_round_trips_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ClientConfig::load(dir.path()).unwrap(),
            ClientConfig::default()
        );
        let config = ClientConfig {
            server: Some("ws://example:1".into()),
            user: Some("alice".into()),
            autonomy: BTreeMap::from([("general".to_owned(), Autonomy::Converse)]),
        };
        config.save(dir.path()).unwrap();
        assert_eq!(ClientConfig::load(dir.path()).unwrap(), config);
        assert_eq!(config.server_or_default(None), "ws://example:1");
        assert_eq!(config.server_or_default(Some("ws://x:2")), "ws://x:2");
        assert_eq!(
            ClientConfig::default().server_or_default(None),
            DEFAULT_SERVER
        );
    }

    #[test]
    fn saving_keeps_tables_it_does_not_own() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(CONFIG_FILE),
            "user = \"old\"\n[tui.theme]\naccent = \"red\"\n[tui.bell]\ndefault = \"all\"\n",
        )
        .unwrap();
        let mut config = ClientConfig::load(dir.path()).unwrap();
        config.user = Some("alice".into());
        config.autonomy.insert("general".into(), Autonomy::Act);
        config.save(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["user"].as_str(), Some("alice"));
        assert_eq!(
            table["tui"]["theme"]["accent"].as_str(),
            Some("red"),
            "{text}"
        );
        assert_eq!(table["tui"]["bell"]["default"].as_str(), Some("all"));
        assert_eq!(ClientConfig::load(dir.path()).unwrap(), config);
    }

    #[test]
    fn broken_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), "server = [").unwrap();
        let e = ClientConfig::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("config.toml"), "{e}");
    }
}
