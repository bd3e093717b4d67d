//! `conclave serve`'s caps on what one client, address or user may take, as flags.

use super::admission::Limits;

/// Caps that keep one client or one address from taking the server for itself.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// Open connections in total (also held under the process's open-file limit)
    #[arg(long, default_value_t = Limits::default().max_connections,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Open connections from one IP address
    #[arg(long, default_value_t = Limits::default().max_connections_per_address)]
    max_connections_per_address: usize,
    /// Connections from one IP address that have not signed in yet
    #[arg(long, default_value_t = Limits::default().max_handshakes_per_address)]
    max_handshakes_per_address: usize,
    /// Connections that have not signed in yet, from all addresses together
    #[arg(long, default_value_t = Limits::default().max_handshakes,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_handshakes: usize,
    /// Live sessions of one user, over all their machines
    #[arg(long, default_value_t = Limits::default().max_sessions_per_user)]
    max_sessions_per_user: usize,
    /// Channels one user may create (server admins are not limited)
    #[arg(long, default_value_t = Limits::default().max_channels_per_user)]
    max_channels_per_user: usize,
    /// New accounts from one IP address per hour
    #[arg(long, default_value_t = Limits::default().registrations_per_address_per_hour)]
    registrations_per_hour: usize,
    /// Messages (and, separately, whispers) one user's human sessions may send a minute
    #[arg(long, default_value_t = Limits::default().human_sends_per_minute)]
    human_sends_per_minute: u32,
    /// Messages (and, separately, whispers) one user's agent sessions may send a minute
    #[arg(long, default_value_t = Limits::default().agent_sends_per_minute)]
    agent_sends_per_minute: u32,
    /// Moderation acts, invites, bans and audited relays one user may make a minute
    #[arg(long, default_value_t = Limits::default().acts_per_minute)]
    acts_per_minute: u32,
    /// Searches one user may make a minute
    #[arg(long, default_value_t = Limits::default().searches_per_minute)]
    searches_per_minute: u32,
    /// Agent messages in a row, with no person's between, that a new channel allows before
    /// it waits for a person (0: unlimited; each channel's owner can change it)
    #[arg(long, default_value_t = Limits::default().agent_turns)]
    agent_turns: u32,
}

impl From<LimitArgs> for Limits {
    fn from(args: LimitArgs) -> Self {
        Self {
            max_connections: args.max_connections,
            max_connections_per_address: args.max_connections_per_address,
            max_handshakes_per_address: args.max_handshakes_per_address,
            max_handshakes: args.max_handshakes,
            max_sessions_per_user: args.max_sessions_per_user,
            max_channels_per_user: args.max_channels_per_user,
            registrations_per_address_per_hour: args.registrations_per_hour,
            human_sends_per_minute: args.human_sends_per_minute,
            agent_sends_per_minute: args.agent_sends_per_minute,
            acts_per_minute: args.acts_per_minute,
            searches_per_minute: args.searches_per_minute,
            agent_turns: args.agent_turns,
        }
    }
}
