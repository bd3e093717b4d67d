//! The client side's files in the config directory: where they live and the small TOML file
//! that remembers the default server and user. The key itself is `identity.rs`'s business.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::{Name, NameError};
use super::protocol::Autonomy;

/// Where `conclave serve` listens and clients connect when nothing else is said.
pub const DEFAULT_BIND: &str = "127.0.0.1:7420";
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:7420";

pub const CONFIG_FILE: &str = "config.toml";

/// What an autonomy level applies to. The two special levels and channels live apart, so a
/// channel named `whispers` or `default` is just a channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AutonomyKey {
    /// Every channel without its own level.
    Default,
    /// Whispers, received and sent.
    Whispers,
    Channel(Name),
}

impl fmt::Display for AutonomyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str(AUTONOMY_DEFAULT),
            Self::Whispers => f.write_str(AUTONOMY_WHISPERS),
            Self::Channel(name) => write!(f, "#{name}"),
        }
    }
}

/// Autonomy key for every channel without its own level.
pub const AUTONOMY_DEFAULT: &str = "default";
/// Autonomy key for whispers.
pub const AUTONOMY_WHISPERS: &str = "whispers";

/// The autonomy key for what a person typed: `default`, `whispers`, or a channel name.
/// `#NAME` is always a channel, so `#whispers` and `#default` are channels of those names.
pub fn autonomy_key(text: &str) -> Result<AutonomyKey, NameError> {
    match text {
        AUTONOMY_DEFAULT => Ok(AutonomyKey::Default),
        AUTONOMY_WHISPERS => Ok(AutonomyKey::Whispers),
        channel => Ok(AutonomyKey::Channel(Name::channel(channel)?)),
    }
}

/// An autonomy key as people read it (and `autonomy_key` reads it back): `#general`,
/// `default`, `whispers`.
pub fn autonomy_place(key: &AutonomyKey) -> String {
    key.to_string()
}

/// Keys `config.toml` may hold at its top level; `tui` belongs to the terminal UI.
const TOP_LEVEL_KEYS: [&str; 4] = ["server", "user", "autonomy", "tui"];
/// Keys of its `[autonomy]` table.
const AUTONOMY_KEYS: [&str; 3] = [AUTONOMY_DEFAULT, AUTONOMY_WHISPERS, "channels"];

/// The keys of a parsed `config.toml` that nothing reads, dotted (`autonomy.general`).
pub fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut unknown: Vec<String> = table
        .keys()
        .filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if let Some(toml::Value::Table(autonomy)) = table.get("autonomy") {
        unknown.extend(
            autonomy
                .keys()
                .filter(|k| !AUTONOMY_KEYS.contains(&k.as_str()))
                .map(|k| format!("autonomy.{k}")),
        );
    }
    unknown
}

/// `[autonomy]` as the file holds it: the two special levels, then `[autonomy.channels]`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AutonomyFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<Autonomy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    whispers: Option<Autonomy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    channels: BTreeMap<Name, Autonomy>,
}

fn serialize_autonomy<S: serde::Serializer>(
    table: &BTreeMap<AutonomyKey, Autonomy>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut file = AutonomyFile::default();
    for (key, level) in table {
        match key {
            AutonomyKey::Default => file.default = Some(*level),
            AutonomyKey::Whispers => file.whispers = Some(*level),
            AutonomyKey::Channel(name) => {
                file.channels.insert(name.clone(), *level);
            }
        }
    }
    file.serialize(serializer)
}

fn deserialize_autonomy<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<AutonomyKey, Autonomy>, D::Error> {
    let file = AutonomyFile::deserialize(deserializer)?;
    let specials = [
        (AutonomyKey::Default, file.default),
        (AutonomyKey::Whispers, file.whispers),
    ];
    Ok(specials
        .into_iter()
        .filter_map(|(key, level)| Some((key, level?)))
        .chain(
            file.channels
                .into_iter()
                .map(|(name, level)| (AutonomyKey::Channel(name), level)),
        )
        .collect())
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

/// What `config.toml` holds. Keys nobody reads are reported when the file is loaded (a typo
/// must not silently leave an agent at another autonomy than its user meant), and kept when
/// it is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The server verbs talk to when `--server` is not given; set by `register`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The user name registered on that server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Agents' autonomy: `[autonomy]` holds `default` (every other channel) and `whispers`,
    /// `[autonomy.channels]` one level per channel. Set with `conclave perm set`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_autonomy",
        deserialize_with = "deserialize_autonomy"
    )]
    pub autonomy: BTreeMap<AutonomyKey, Autonomy>,
    /// Keys in the file that nothing reads, dotted (`autonomy.general`); logged as warnings.
    #[serde(skip)]
    pub unknown_keys: Vec<String>,
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
        let parse = |e: toml::de::Error| ConfigError::Parse {
            path: path.clone(),
            message: e.message().to_owned(),
        };
        let table: toml::Table = text.parse().map_err(parse)?;
        let mut config: Self = table.clone().try_into().map_err(parse)?;
        config.unknown_keys = unknown_keys(&table);
        for key in &config.unknown_keys {
            tracing::warn!(
                "{}: unknown key `{key}` is ignored (autonomy levels go in [autonomy] as \
                 default or whispers, and per channel in [autonomy.channels])",
                path.display()
            );
        }
        Ok(config)
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
        let mut ours = toml::Table::try_from(self).map_err(|e| parse(e.to_string()))?;
        // Keys of `[autonomy]` this version does not know stay for the person to fix.
        if let Some(toml::Value::Table(old)) = table.get("autonomy") {
            let kept: toml::Table = old
                .iter()
                .filter(|(k, _)| !AUTONOMY_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !kept.is_empty() {
                let autonomy = ours
                    .entry("autonomy")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(autonomy) = autonomy {
                    autonomy.extend(kept);
                }
            }
        }
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
            autonomy: BTreeMap::from([
                (
                    AutonomyKey::Channel(Name::channel("general").unwrap()),
                    Autonomy::Converse,
                ),
                (AutonomyKey::Whispers, Autonomy::Act),
            ]),
            unknown_keys: Vec::new(),
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
        config.autonomy.insert(
            AutonomyKey::Channel(Name::channel("general").unwrap()),
            Autonomy::Act,
        );
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

    #[test]
    fn channels_named_like_the_special_levels_stay_channels() {
        let whispers_channel = autonomy_key("#whispers").unwrap();
        let default_channel = autonomy_key("#Default").unwrap();
        assert_eq!(autonomy_key("whispers").unwrap(), AutonomyKey::Whispers);
        assert_eq!(autonomy_key("default").unwrap(), AutonomyKey::Default);
        assert_eq!(
            whispers_channel,
            AutonomyKey::Channel(Name::channel("whispers").unwrap())
        );
        assert_eq!(
            default_channel,
            AutonomyKey::Channel(Name::channel("default").unwrap())
        );
        // What `perm show` prints reads back as the same key.
        for key in [&whispers_channel, &AutonomyKey::Whispers, &default_channel] {
            assert_eq!(&autonomy_key(&autonomy_place(key)).unwrap(), key);
        }

        let dir = tempfile::tempdir().unwrap();
        let config = ClientConfig {
            autonomy: BTreeMap::from([
                (AutonomyKey::Whispers, Autonomy::Act),
                (AutonomyKey::Default, Autonomy::Mute),
                (whispers_channel.clone(), Autonomy::Notify),
                (default_channel.clone(), Autonomy::Converse),
            ]),
            ..ClientConfig::default()
        };
        config.save(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(
            table["autonomy"]["whispers"].as_str(),
            Some("act"),
            "{text}"
        );
        assert_eq!(
            table["autonomy"]["channels"]["whispers"].as_str(),
            Some("notify"),
            "{text}"
        );
        assert_eq!(ClientConfig::load(dir.path()).unwrap(), config);
    }

    #[test]
    fn unknown_keys_are_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(CONFIG_FILE),
            "colour = \"red\"\n[autonomy]\ngeneral = \"act\"\nwhispers = \"converse\"\n\
             [autonomy.channels]\nops = \"mute\"\n[tui.bell]\ndefault = \"all\"\n",
        )
        .unwrap();
        let mut config = ClientConfig::load(dir.path()).unwrap();
        assert_eq!(config.unknown_keys, ["colour", "autonomy.general"]);
        assert_eq!(config.autonomy.len(), 2, "{config:?}");
        config
            .autonomy
            .insert(AutonomyKey::Default, Autonomy::Notify);
        config.save(dir.path()).unwrap();
        let again = ClientConfig::load(dir.path()).unwrap();
        assert_eq!(again.unknown_keys, ["colour", "autonomy.general"]);
        assert_eq!(again.autonomy.len(), 3);
    }
}
