//! The servers a person belongs to, by alias (`[servers.ALIAS]` in `config.toml`), and what a
//! `--server` value or a `CHANNEL@ALIAS` names. The first server registered is the default;
//! a config written before there were aliases reads as that one server, under its host name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{ClientConfig, DEFAULT_SERVER};
use super::link::ServerPin;
use super::names::Name;

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

/// One server as `config.toml` remembers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    /// One address, or several instances of the server separated by commas.
    pub url: String,
    /// The user name registered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The server's id as its welcome said: two addresses with the same id reach one server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// Keys of `[servers.ALIAS]` this version does not know, kept for the person to fix.
    #[serde(flatten)]
    pub unknown: toml::Table,
}

/// Why a server could not be added, renamed or named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServersError {
    #[error("{url} reaches the same server as `{alias}` ({known}); use --server {alias}")]
    SameServer {
        url: String,
        alias: Name,
        known: String,
    },
    #[error("the alias `{alias}` already names {url}; choose another with --alias")]
    AliasTaken { alias: Name, url: String },
    #[error("no server is called `{0}`; `conclave servers` lists them")]
    Unknown(String),
    #[error("`{0}` is not a server alias: {1}")]
    BadAlias(String, String),
}

/// The alias a server gets when none is given: its host name, as a name, with its port unless
/// it is the usual 7420 (`team.example.com` becomes `team-example-com`, `ws://team:9000`
/// `team-9000`; this machine's usual server, `local`).
pub fn default_alias(url: &str) -> Name {
    let first = server_urls(url).into_iter().next().unwrap_or_default();
    let authority = first
        .split_once("://")
        .map_or(first.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']').unwrap_or((v6, ""));
            (host, rest.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host = match host {
        "127.0.0.1" | "localhost" | "::1" => "local",
        other => other,
    };
    let spelled: String = match port.filter(|p| *p != "7420" && !p.is_empty()) {
        Some(port) => format!("{host}-{port}"),
        None => host.to_owned(),
    }
    .chars()
    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
    .collect();
    let fallback = || Name::parse("alias", "server").unwrap_or_else(|_| unreachable!());
    Name::sanitize(spelled.trim_matches('-')).unwrap_or_else(fallback)
}

impl ClientConfig {
    /// Every server by alias: `[servers.*]`, or, in a config from before aliases, the one
    /// remembered server under its default alias.
    pub fn servers(&self) -> BTreeMap<Name, ServerEntry> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        match &self.server {
            Some(url) => BTreeMap::from([(
                default_alias(url),
                ServerEntry {
                    url: url.clone(),
                    user: self.user.clone(),
                    ..ServerEntry::default()
                },
            )]),
            None => BTreeMap::new(),
        }
    }

    /// The alias under which `url` is registered, if it is.
    pub fn alias_of(&self, url: &str) -> Option<Name> {
        self.servers()
            .into_iter()
            .find(|(_, entry)| entry.url == url)
            .map(|(alias, _)| alias)
    }

    /// The user registered at `url`, if it is registered.
    pub fn user_at(&self, url: &str) -> Option<String> {
        self.servers()
            .into_values()
            .find(|entry| entry.url == url)
            .and_then(|entry| entry.user)
    }

    /// The ids a link to `url` may and may not sign for: the one registered for it, and
    /// every other server's (see `ServerPin`).
    pub fn pin_for(&self, url: &str) -> ServerPin {
        let mut pin = ServerPin::default();
        for (alias, entry) in self.servers() {
            match (entry.url == url, entry.server_id) {
                (true, id) => pin.expected = id,
                (false, Some(id)) => pin.others.push((id, alias.to_string())),
                (false, None) => {}
            }
        }
        pin
    }

    /// The alias of the default server, if it has one.
    pub fn default_server_alias(&self) -> Option<Name> {
        self.alias_of(self.server.as_deref()?)
    }

    /// What a `--server` value names: an address as it is, else an alias's address; without
    /// one, the default server, else the local one.
    pub fn resolve_server(&self, explicit: Option<&str>) -> Result<String, ServersError> {
        match explicit {
            Some(address) if address.contains("://") => Ok(address.to_owned()),
            Some(alias) => match Name::parse("alias", alias) {
                Ok(name) => self
                    .servers()
                    .remove(&name)
                    .map(|entry| entry.url)
                    .ok_or_else(|| ServersError::Unknown(alias.to_owned())),
                Err(_) => Err(ServersError::BadAlias(
                    alias.to_owned(),
                    format!("an address starts with ws:// or wss:// (ws://{alias}?)"),
                )),
            },
            None => Ok(self
                .server
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned())),
        }
    }

    /// Adds (or updates) a server after registering there. The first server becomes the
    /// default. Refused when another alias already reaches the same server, or the alias
    /// names another address.
    pub fn add_server(&mut self, alias: Name, entry: ServerEntry) -> Result<(), ServersError> {
        let mut servers = self.servers();
        for (known_alias, known) in &servers {
            let same_server = known.server_id.is_some() && known.server_id == entry.server_id;
            if *known_alias != alias && same_server {
                return Err(ServersError::SameServer {
                    url: entry.url,
                    alias: known_alias.clone(),
                    known: known.url.clone(),
                });
            }
            // An id the new server claims never moves an alias to another address.
            if *known_alias == alias && known.url != entry.url {
                return Err(ServersError::AliasTaken {
                    alias,
                    url: known.url.clone(),
                });
            }
        }
        if self.server.is_none() {
            self.server = Some(entry.url.clone());
            self.user.clone_from(&entry.user);
        } else if self.default_server_alias().as_ref() == Some(&alias) {
            // The default's address or user changed: keep the top-level keys in step.
            self.server = Some(entry.url.clone());
            self.user.clone_from(&entry.user);
        }
        servers.insert(alias, entry);
        self.servers = servers;
        Ok(())
    }

    /// Forgets a server; the default passes to the first one left.
    pub fn remove_server(&mut self, alias: &str) -> Result<ServerEntry, ServersError> {
        let mut servers = self.servers();
        let name = Name::parse("alias", alias)
            .map_err(|e| ServersError::BadAlias(alias.to_owned(), e.to_string()))?;
        let removed = servers
            .remove(&name)
            .ok_or_else(|| ServersError::Unknown(alias.to_owned()))?;
        if self.server.as_deref() == Some(removed.url.as_str()) {
            let next = servers.values().next();
            self.server = next.map(|e| e.url.clone());
            self.user = next.and_then(|e| e.user.clone());
        }
        self.servers = servers;
        Ok(removed)
    }

    /// Makes a server the default of every verb.
    pub fn set_default_server(&mut self, alias: &str) -> Result<(), ServersError> {
        let servers = self.servers();
        let entry = Name::parse("alias", alias)
            .ok()
            .and_then(|name| servers.get(&name).cloned())
            .ok_or_else(|| ServersError::Unknown(alias.to_owned()))?;
        self.server = Some(entry.url);
        self.user = entry.user;
        self.servers = servers;
        Ok(())
    }
}

/// A channel as a verb names it: `general`, `#general` or `general@work`; the alias, if any,
/// picks the server.
pub fn split_channel(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once('@') {
        // `@bob` alone names a user, not a server.
        Some((channel, alias)) if !alias.is_empty() && !channel.is_empty() => {
            (channel, Some(alias))
        }
        _ => (text, None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn name(s: &str) -> Name {
        Name::parse("alias", s).unwrap()
    }

    fn entry(url: &str, id: &str) -> ServerEntry {
        ServerEntry {
            url: url.into(),
            user: Some("alice".into()),
            server_id: Some(id.into()),
            unknown: toml::Table::new(),
        }
    }

    #[test]
    fn aliases_default_to_the_host_name() {
        assert_eq!(
            default_alias("ws://team.example.com:7420").as_str(),
            "team-example-com"
        );
        assert_eq!(default_alias("wss://Chat.Corp/x").as_str(), "chat-corp");
        assert_eq!(default_alias("ws://127.0.0.1:7420").as_str(), "local");
        assert_eq!(default_alias("ws://127.0.0.1:9000").as_str(), "local-9000");
        assert_eq!(default_alias("ws://team:9000").as_str(), "team-9000");
        assert_eq!(default_alias("ws://a:1,ws://b:1").as_str(), "a-1");
        assert_eq!(default_alias(",wss://team").as_str(), "team");
        assert_eq!(default_alias("ws://[::1]:7420").as_str(), "local");
    }

    #[test]
    fn an_old_config_reads_as_its_one_server() {
        let old = ClientConfig {
            server: Some("ws://team:7420".into()),
            user: Some("alice".into()),
            ..ClientConfig::default()
        };
        let servers = old.servers();
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[&name("team")].url, "ws://team:7420");
        assert_eq!(old.default_server_alias(), Some(name("team")));
        assert_eq!(old.resolve_server(Some("team")).unwrap(), "ws://team:7420");
        assert_eq!(old.resolve_server(Some("ws://x:1")).unwrap(), "ws://x:1");
        assert_eq!(old.resolve_server(None).unwrap(), "ws://team:7420");
        assert_eq!(
            old.resolve_server(Some("work")).unwrap_err().to_string(),
            "no server is called `work`; `conclave servers` lists them"
        );
        assert_eq!(
            ClientConfig::default().resolve_server(None).unwrap(),
            DEFAULT_SERVER
        );
    }

    #[test]
    fn the_first_server_is_the_default_and_one_server_has_one_alias() {
        let mut config = ClientConfig::default();
        config
            .add_server(name("work"), entry("ws://w:1", "W"))
            .unwrap();
        config
            .add_server(name("home"), entry("ws://h:1", "H"))
            .unwrap();
        assert_eq!(config.resolve_server(None).unwrap(), "ws://w:1");
        assert_eq!(config.resolve_server(Some("home")).unwrap(), "ws://h:1");
        let again = config.add_server(name("w2"), entry("ws://other-name:1", "W"));
        assert_eq!(
            again.unwrap_err().to_string(),
            "ws://other-name:1 reaches the same server as `work` (ws://w:1); use --server work"
        );
        let taken = config.add_server(name("home"), entry("ws://elsewhere:1", "E"));
        assert!(matches!(taken, Err(ServersError::AliasTaken { .. })));
        // Claiming a known server's id moves no alias to another address.
        let posing = config.add_server(name("work"), entry("ws://impostor:1", "W"));
        assert!(matches!(posing, Err(ServersError::AliasTaken { .. })));
        assert_eq!(config.resolve_server(None).unwrap(), "ws://w:1");
        config.set_default_server("home").unwrap();
        assert_eq!(config.resolve_server(None).unwrap(), "ws://h:1");
        config.remove_server("home").unwrap();
        assert_eq!(config.resolve_server(None).unwrap(), "ws://w:1");
        assert!(config.remove_server("home").is_err());
    }

    #[test]
    fn channels_name_their_server_after_an_at() {
        assert_eq!(split_channel("general@work"), ("general", Some("work")));
        assert_eq!(split_channel("#general"), ("#general", None));
        assert_eq!(split_channel("general@"), ("general@", None));
    }
}
