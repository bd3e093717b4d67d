//! The client side's files in the config directory: where they live, and `config.toml`, the
//! one loader of the small TOML file that remembers the default server and user, agents'
//! autonomy levels and the TUI's `[tui]` tables (kept as text here; `app::settings` reads
//! them). The key itself is `identity.rs`'s business.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::{Name, NameError};
use super::protocol::Autonomy;
use super::servers::ServerEntry;

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

/// `config.toml` as it is written: every section this program reads, typed, and under each
/// table the keys nothing reads, kept as they are so a save does not lose them and a load can
/// report them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    servers: BTreeMap<Name, ServerEntry>,
    #[serde(default, skip_serializing_if = "AutonomyFile::is_empty")]
    autonomy: AutonomyFile,
    #[serde(default, skip_serializing_if = "TuiConfig::is_empty")]
    tui: TuiConfig,
    #[serde(flatten)]
    unknown: toml::Table,
}

impl ConfigFile {
    /// The keys nothing reads, dotted (`autonomy.general`), top level first.
    fn unknown_keys(&self) -> Vec<String> {
        let dotted = |prefix: &str, table: &toml::Table| -> Vec<String> {
            table.keys().map(|k| format!("{prefix}{k}")).collect()
        };
        let servers = self
            .servers
            .iter()
            .flat_map(|(alias, entry)| dotted(&format!("servers.{alias}."), &entry.unknown));
        [
            dotted("", &self.unknown),
            dotted("autonomy.", &self.autonomy.unknown),
            dotted("tui.", &self.tui.unknown),
            servers.collect(),
        ]
        .concat()
    }
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
    /// Keys of `[autonomy]` this version does not know, kept for the person to fix.
    #[serde(flatten)]
    unknown: toml::Table,
}

impl AutonomyFile {
    fn is_empty(&self) -> bool {
        self.default.is_none()
            && self.whispers.is_none()
            && self.channels.is_empty()
            && self.unknown.is_empty()
    }

    /// Replaces the levels with `levels`, keeping the unknown keys.
    fn set_levels(&mut self, levels: &BTreeMap<AutonomyKey, Autonomy>) {
        self.default = None;
        self.whispers = None;
        self.channels.clear();
        for (key, level) in levels {
            match key {
                AutonomyKey::Default => self.default = Some(*level),
                AutonomyKey::Whispers => self.whispers = Some(*level),
                AutonomyKey::Channel(name) => {
                    self.channels.insert(name.clone(), *level);
                }
            }
        }
    }

    fn levels(&self) -> BTreeMap<AutonomyKey, Autonomy> {
        let specials = [
            (AutonomyKey::Default, self.default),
            (AutonomyKey::Whispers, self.whispers),
        ];
        specials
            .into_iter()
            .filter_map(|(key, level)| Some((key, level?)))
            .chain(
                self.channels
                    .iter()
                    .map(|(name, level)| (AutonomyKey::Channel(name.clone()), *level)),
            )
            .collect()
    }
}

/// `[tui]`: the terminal UI's colours, keys and bells. `net` knows nothing of colours or key
/// codes, so the values stay as the file holds them; `app::settings` reads them and says
/// what is wrong with one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TuiConfig {
    /// `[tui.theme]`: a colour per role; `senders` is a list of them.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub theme: toml::Table,
    /// `[tui.keys]`: a key or a list of keys per action.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub keys: toml::Table,
    /// `[tui.bell]`: `all`, `mentions` or `none` per channel; `default` for the rest.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub bell: toml::Table,
    #[serde(flatten)]
    unknown: toml::Table,
}

impl TuiConfig {
    fn is_empty(&self) -> bool {
        self.theme.is_empty()
            && self.keys.is_empty()
            && self.bell.is_empty()
            && self.unknown.is_empty()
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

/// What `config.toml` holds, as the program uses it. Keys nobody reads are reported when the
/// file is loaded (a typo must not silently leave an agent at another autonomy than its user
/// meant), and kept when it is saved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientConfig {
    /// The server verbs talk to when `--server` is not given; set by `register`.
    pub server: Option<String>,
    /// The user name registered on that server.
    pub user: Option<String>,
    /// Every server registered, by alias (see `net::servers`); empty in a config from before
    /// aliases, which `servers()` reads as its one server.
    pub servers: BTreeMap<Name, ServerEntry>,
    /// Agents' autonomy: `[autonomy]` holds `default` (every other channel) and `whispers`,
    /// `[autonomy.channels]` one level per channel. Set with `conclave perm set`.
    pub autonomy: BTreeMap<AutonomyKey, Autonomy>,
    /// The terminal UI's `[tui]` tables. Read only: `save` leaves them as the file has them.
    pub tui: TuiConfig,
    /// Keys in the file that nothing reads, dotted (`autonomy.general`); logged as warnings.
    pub unknown_keys: Vec<String>,
}

impl ClientConfig {
    /// Reads the config file and warns about the keys nothing reads; a missing file is an
    /// empty config.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let config = Self::read(dir)?;
        for key in &config.unknown_keys {
            let hint = if key.starts_with("tui.") {
                "the terminal UI reads [tui.theme], [tui.keys] and [tui.bell]"
            } else if key.starts_with("servers.") {
                "a server's table holds url, user and server_id"
            } else {
                "autonomy levels go in [autonomy] as default or whispers, and per channel in \
                 [autonomy.channels]"
            };
            tracing::warn!(
                "{}: unknown key `{key}` is ignored ({hint})",
                dir.join(CONFIG_FILE).display()
            );
        }
        Ok(config)
    }

    /// Reads the config file without a word about unknown keys, for a caller that also
    /// calls `load` (the TUI reads its settings, then its session loads the file again).
    pub fn read(dir: &Path) -> Result<Self, ConfigError> {
        let file = read_file(&dir.join(CONFIG_FILE))?.unwrap_or_default();
        Ok(Self {
            unknown_keys: file.unknown_keys(),
            server: file.server,
            user: file.user,
            servers: file.servers,
            autonomy: file.autonomy.levels(),
            tui: file.tui,
        })
    }

    /// Writes the config file atomically (temp file, then rename). Only the keys this type
    /// owns change: the rest (the TUI's `[tui.*]`, keys nothing reads) is kept as the file
    /// holds it now.
    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let write = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        // A file that cannot be read is written anew; one that does not parse is left alone.
        let mut file = match read_file(&path) {
            Ok(file) => file.unwrap_or_default(),
            Err(ConfigError::Read { .. }) => ConfigFile::default(),
            Err(e) => return Err(e),
        };
        file.server.clone_from(&self.server);
        file.user.clone_from(&self.user);
        file.servers.clone_from(&self.servers);
        file.autonomy.set_levels(&self.autonomy);
        let text = toml::to_string(&file).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        fs::create_dir_all(dir).map_err(write)?;
        let tmp = dir.join(format!(".{CONFIG_FILE}.tmp"));
        fs::write(&tmp, text).map_err(write)?;
        fs::rename(&tmp, &path).map_err(write)
    }
}

/// The file at `path`, or `None` if there is none.
fn read_file(path: &Path) -> Result<Option<ConfigFile>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
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
            ..ClientConfig::default()
        };
        config.save(dir.path()).unwrap();
        assert_eq!(ClientConfig::load(dir.path()).unwrap(), config);
        assert_eq!(config.resolve_server(None).unwrap(), "ws://example:1");
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
             [autonomy.channels]\nops = \"mute\"\n[tui.bell]\ndefault = \"all\"\n\
             [tui.colours]\naccent = \"red\"\n[servers.work]\nurl = \"ws://w:1\"\nusr = \"x\"\n",
        )
        .unwrap();
        let mut config = ClientConfig::load(dir.path()).unwrap();
        assert_eq!(
            config.unknown_keys,
            [
                "colour",
                "autonomy.general",
                "tui.colours",
                "servers.work.usr"
            ]
        );
        assert_eq!(config.autonomy.len(), 2, "{config:?}");
        config
            .autonomy
            .insert(AutonomyKey::Default, Autonomy::Notify);
        config.save(dir.path()).unwrap();
        let again = ClientConfig::load(dir.path()).unwrap();
        assert_eq!(
            again.unknown_keys,
            [
                "colour",
                "autonomy.general",
                "tui.colours",
                "servers.work.usr"
            ]
        );
        assert_eq!(again.tui.bell["default"].as_str(), Some("all"));
        assert_eq!(again.autonomy.len(), 3);
    }
}
