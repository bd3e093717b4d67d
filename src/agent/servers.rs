//! The servers an agent is on, one link each: every `--server`, then every server a `--join
//! CHANNEL@ALIAS` names; with neither, the default server. And how a tool's `channel`
//! (`general`, `#general`, `general@home`) names a channel on one of them.

use color_eyre::eyre::{Result, WrapErr};
use tokio::sync::mpsc;

use crate::net::client::{self, LocalServer, Opening, Setup};
use crate::net::config::ClientConfig;
use crate::net::link::{LinkEvent, LinkHandle, LinkRegistry};
use crate::net::names::{Name, SessionPath};
use crate::net::protocol::SessionKind;
use crate::net::servers::{default_alias, split_channel};

use super::core::Origin;
use super::{Agent, AgentOptions, default_handle};

/// Link events of every server, tagged with the server's index, that may wait.
const MERGED_EVENTS: usize = 1024;

/// One server the agent is signed in to.
pub struct Conn {
    /// Its alias (its address when the config has none).
    pub alias: String,
    pub url: String,
    pub link: LinkHandle,
    /// This agent's session there.
    pub me: SessionPath,
}

/// A channel on one of the agent's servers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// An index into `Agent::servers`.
    pub server: usize,
    pub channel: Name,
}

/// A channel as a tool or `--join` names it: the name, and the server's alias after an `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    pub name: Name,
    pub server: Option<String>,
}

impl ChannelRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, server) = split_channel(text);
        Ok(Self {
            name: Name::channel(name).map_err(|e| e.to_string())?,
            server: server.map(str::to_owned),
        })
    }
}

/// The servers connected, the index bare channel names mean, their events merged, and the
/// server zero set-up started (if it did).
pub struct Opened {
    pub servers: Vec<Conn>,
    pub default: usize,
    pub events: mpsc::Receiver<(usize, LinkEvent)>,
    pub local_server: Option<LocalServer>,
}

/// Which servers to open: each `--server`, then each alias a `--join` names that is not
/// among them; `None` stands for the default server.
pub fn servers_to_open(servers: &[String], joins: &[String]) -> Vec<Option<String>> {
    let mut open: Vec<Option<String>> = servers.iter().cloned().map(Some).collect();
    let bare_join = joins.iter().any(|j| split_channel(j).1.is_none());
    if open.is_empty() && (joins.is_empty() || bare_join) {
        open.push(None);
    }
    for join in joins {
        if let (_, Some(alias)) = split_channel(join)
            && !open.iter().flatten().any(|s| s == alias)
        {
            open.push(Some(alias.to_owned()));
        }
    }
    open
}

/// Signs in on every server the options name (zero set-up on the first), one link each: a
/// second address of a server one of them reaches is refused, naming the alias that does.
pub async fn open_all(options: &AgentOptions) -> Result<Opened> {
    let registry = LinkRegistry::default();
    let (merged, events) = mpsc::channel(MERGED_EVENTS);
    let mut servers = Vec::new();
    let mut local_server = None;
    for (index, server) in servers_to_open(&options.servers, &options.join)
        .into_iter()
        .enumerate()
    {
        let opening = Opening {
            config_dir: options.config_dir.clone(),
            server: server.clone(),
            handle: options.handle.clone(),
            default_handle: default_handle(),
            kind: SessionKind::Agent,
            persistent: true,
            setup: if index == 0 { Setup::Auto } else { Setup::Key },
            identity: None,
            registry: Some(registry.clone()),
        };
        let session = client::open(opening, |reason, retry_in| {
            tracing::warn!(%reason, ?retry_in, "cannot connect yet");
        })
        .await
        .wrap_err_with(|| match &server {
            Some(server) => format!("cannot sign in on `{server}`"),
            None => "cannot sign in on the default server".to_owned(),
        })?;
        local_server = local_server.or(session.local_server);
        tracing::info!(path = %session.path, server = %session.server, "agent connected");
        let merged = merged.clone();
        let mut link_events = session.events;
        tokio::spawn(async move {
            while let Some(event) = link_events.recv().await {
                if merged.send((index, event)).await.is_err() {
                    break;
                }
            }
        });
        servers.push(Conn {
            alias: String::new(),
            url: session.server,
            link: session.link,
            me: session.path,
        });
    }
    // Read after signing in: zero set-up may just have written the first server.
    let config = ClientConfig::load(&options.config_dir)?;
    for conn in &mut servers {
        conn.alias = config
            .alias_of(&conn.url)
            .map_or_else(|| default_alias(&conn.url).to_string(), String::from);
    }
    let default = config
        .resolve_server(None)
        .ok()
        .and_then(|url| servers.iter().position(|c| c.url == url))
        .unwrap_or(0);
    Ok(Opened {
        servers,
        default,
        events,
        local_server,
    })
}

impl Agent {
    pub fn conn(&self, server: usize) -> &Conn {
        &self.servers[server.min(self.servers.len() - 1)]
    }

    /// The server bare channel names mean.
    pub fn default_conn(&self) -> &Conn {
        self.conn(self.default)
    }

    /// How the model names server `server` and its channels.
    pub fn origin(&self, server: usize) -> Origin {
        Origin {
            alias: self.conn(server).alias.clone(),
            named: self.servers.len() > 1 && server != self.default,
        }
    }

    /// A channel as the model writes it: `general`, or `general@home` on a server other than
    /// the default one.
    pub fn label(&self, place: &Place) -> String {
        self.origin(place.server).channel(&place.channel)
    }

    /// The server an alias (or address) names; `None` names the default server.
    pub fn server_named(&self, alias: Option<&str>) -> Result<usize, String> {
        let Some(alias) = alias else {
            return Ok(self.default);
        };
        self.servers
            .iter()
            .position(|c| c.alias == alias || c.url == alias)
            .ok_or_else(|| {
                let known: Vec<&str> = self.servers.iter().map(|c| c.alias.as_str()).collect();
                format!(
                    "this agent is not on a server `{alias}`; it is on {}",
                    known.join(", ")
                )
            })
    }

    /// The channel a tool names: on the server its alias names; else on the default server,
    /// or on the only server where a channel of that name is joined.
    pub fn resolve(&self, channel: &ChannelRef) -> Result<Place, String> {
        if channel.server.is_some() {
            return Ok(Place {
                server: self.server_named(channel.server.as_deref())?,
                channel: channel.name.clone(),
            });
        }
        let joined: Vec<usize> = self
            .lock()
            .channels
            .keys()
            .filter(|place| place.channel == channel.name)
            .map(|place| place.server)
            .collect();
        let aliases: Vec<&str> = self.servers.iter().map(|c| c.alias.as_str()).collect();
        let server = bare_channel_server(&channel.name, &joined, self.default, &aliases)?;
        Ok(Place {
            server,
            channel: channel.name.clone(),
        })
    }
}

/// The server a bare channel name means: the only one where it is joined, else the default
/// one; joined on several servers but not the default one, the caller must say which.
fn bare_channel_server(
    name: &Name,
    joined: &[usize],
    default: usize,
    aliases: &[&str],
) -> Result<usize, String> {
    match joined {
        [only] => Ok(*only),
        several if several.len() > 1 && !several.contains(&default) => {
            let names: Vec<String> = several
                .iter()
                .map(|&s| format!("{name}@{}", aliases.get(s).copied().unwrap_or("?")))
                .collect();
            Err(format!(
                "#{name} is joined on several servers: write {}",
                names.join(" or ")
            ))
        }
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_servers_opened_are_those_named_then_those_joins_name() {
        let open =
            |servers: &[&str], joins: &[&str]| servers_to_open(&strings(servers), &strings(joins));
        assert_eq!(open(&[], &[]), [None]);
        assert_eq!(open(&[], &["general"]), [None]);
        assert_eq!(
            open(&[], &["general", "ops@home"]),
            [None, Some("home".to_owned())]
        );
        assert_eq!(
            open(&[], &["general@work", "ops@home", "x@work"]),
            [Some("work".to_owned()), Some("home".to_owned())]
        );
        assert_eq!(
            open(&["work"], &["general", "ops@home"]),
            [Some("work".to_owned()), Some("home".to_owned())]
        );
    }

    #[test]
    fn a_bare_name_means_the_one_server_it_is_joined_on_else_the_default() {
        let ops = Name::channel("ops").unwrap();
        let aliases = ["work", "home", "lab"];
        let pick = |joined: &[usize]| bare_channel_server(&ops, joined, 0, &aliases);
        assert_eq!(pick(&[]), Ok(0));
        assert_eq!(pick(&[2]), Ok(2));
        assert_eq!(pick(&[0, 1]), Ok(0));
        let e = pick(&[1, 2]).unwrap_err();
        assert_eq!(
            e,
            "#ops is joined on several servers: write ops@home or ops@lab"
        );
    }

    #[test]
    fn a_channel_names_its_server_after_an_at() {
        let plain = ChannelRef::parse("#general").unwrap();
        assert_eq!((plain.name.as_str(), plain.server), ("general", None));
        let there = ChannelRef::parse("ops@home").unwrap();
        assert_eq!(there.server.as_deref(), Some("home"));
        assert!(ChannelRef::parse("no way@home").is_err());
    }
}
