//! `COMMANDS`, the one table of slash commands: the parser looks words up in it, Tab completes
//! from it (names, and each argument by its `Arg`) and the help lists it, so a new command is
//! one row here plus one arm in `commands::run_command`.

/// What a slash command does; `run_command` has one arm per verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Join,
    Leave,
    List,
    Search,
    Create,
    Msg,
    Add,
    Remove,
    Who,
    Topic,
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
    Role,
    Set,
    Floor,
    Invite,
    Audit,
    Thread,
    Dm,
    Pin,
    Unpin,
    Edit,
    Erase,
    React,
    Rename,
    Archive,
    Unarchive,
    Delete,
    Split,
    Close,
    Autonomy,
    Bell,
    Help,
    Quit,
}

/// What one argument of a command is, so Tab offers the words that fit there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Anything: Tab offers channels and people, as in a message.
    Free,
    Channel,
    /// A member of the focused channel.
    User,
    /// A member, or a session online in the focused channel.
    UserOrPath,
    /// An agent online in the focused channel, as `@path`.
    Agent,
    /// One of these words.
    Words(&'static [&'static str]),
    /// The value of the `/set` setting named before it (a word only for `reply-mode`).
    SettingValue,
}

/// One slash command: its name, other words for it, its arguments and what it does.
#[derive(Debug, Clone, Copy)]
pub struct SlashCommand {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The arguments as the help shows them.
    pub args: &'static str,
    pub what: &'static str,
    pub verb: Verb,
    /// What each argument is, in order, for Tab.
    pub complete: &'static [Arg],
}

pub const ROLES: &[&str] = &["owner", "moderator", "member"];
pub const SETTINGS: &[&str] = &["agent-turns", "reply-mode", "slow"];
pub const REPLY_MODES: &[&str] = &["open", "mention"];

/// Every slash command, in the order the help lists them.
pub const COMMANDS: &[SlashCommand] = &[
    SlashCommand {
        name: "join",
        aliases: &["j"],
        args: "CHANNEL [TOKEN]",
        what: "join a channel (TOKEN: an invite)",
        verb: Verb::Join,
        complete: &[Arg::Channel],
    },
    SlashCommand {
        name: "leave",
        aliases: &["part"],
        args: "[CHANNEL]",
        what: "leave a channel; close a whisper",
        verb: Verb::Leave,
        complete: &[Arg::Channel],
    },
    SlashCommand {
        name: "list",
        aliases: &["channels"],
        args: "",
        what: "every channel you may join",
        verb: Verb::List,
        complete: &[],
    },
    SlashCommand {
        name: "thread",
        aliases: &[],
        args: "SEQ",
        what: "a message and its replies",
        verb: Verb::Thread,
        complete: &[],
    },
    SlashCommand {
        name: "edit",
        aliases: &[],
        args: "SEQ TEXT",
        what: "change your message's text",
        verb: Verb::Edit,
        complete: &[],
    },
    SlashCommand {
        name: "erase",
        aliases: &[],
        args: "SEQ",
        what: "delete a message (moderators: any)",
        verb: Verb::Erase,
        complete: &[],
    },
    SlashCommand {
        name: "react",
        aliases: &[],
        args: "SEQ REACTION",
        what: "react; once more takes it back",
        verb: Verb::React,
        complete: &[],
    },
    SlashCommand {
        name: "search",
        aliases: &[],
        args: "WORDS",
        what: "messages holding every word",
        verb: Verb::Search,
        complete: &[],
    },
    SlashCommand {
        name: "create",
        aliases: &[],
        args: "CHANNEL [public|unlisted|private]",
        what: "create a channel",
        verb: Verb::Create,
        complete: &[Arg::Free, Arg::Words(&["public", "unlisted", "private"])],
    },
    SlashCommand {
        name: "msg",
        aliases: &["whisper"],
        args: "USER|PATH [TEXT]",
        what: "whisper to a person or a session",
        verb: Verb::Msg,
        complete: &[Arg::UserOrPath],
    },
    SlashCommand {
        name: "dm",
        aliases: &[],
        args: "USER [TEXT]",
        what: "talk with one person, kept",
        verb: Verb::Dm,
        complete: &[Arg::UserOrPath],
    },
    SlashCommand {
        name: "who",
        aliases: &[],
        args: "[CHANNEL]",
        what: "who is online, here or anywhere",
        verb: Verb::Who,
        complete: &[Arg::Channel],
    },
    SlashCommand {
        name: "add",
        aliases: &[],
        args: "USER",
        what: "let someone into this channel",
        verb: Verb::Add,
        complete: &[Arg::Free],
    },
    SlashCommand {
        name: "remove",
        aliases: &[],
        args: "USER",
        what: "end someone's membership here",
        verb: Verb::Remove,
        complete: &[Arg::User],
    },
    SlashCommand {
        name: "topic",
        aliases: &[],
        args: "[TEXT|-]",
        what: "show or set the topic (- clears)",
        verb: Verb::Topic,
        complete: &[],
    },
    SlashCommand {
        name: "kick",
        aliases: &[],
        args: "USER|PATH [DURATION] [REASON]",
        what: "remove now; a duration bans too",
        verb: Verb::Kick,
        complete: &[Arg::UserOrPath],
    },
    SlashCommand {
        name: "ban",
        aliases: &[],
        args: "USER [DURATION] [REASON]",
        what: "keep out, for good or a while",
        verb: Verb::Ban,
        complete: &[Arg::User],
    },
    SlashCommand {
        name: "unban",
        aliases: &[],
        args: "USER",
        what: "let a banned user back in",
        verb: Verb::Unban,
        complete: &[Arg::User],
    },
    SlashCommand {
        name: "mute",
        aliases: &[],
        args: "USER [DURATION] [REASON]",
        what: "may read here, not post",
        verb: Verb::Mute,
        complete: &[Arg::User],
    },
    SlashCommand {
        name: "unmute",
        aliases: &[],
        args: "USER",
        what: "may post again",
        verb: Verb::Unmute,
        complete: &[Arg::User],
    },
    SlashCommand {
        name: "role",
        aliases: &[],
        args: "USER owner|moderator|member",
        what: "give a role (owner hands it on)",
        verb: Verb::Role,
        complete: &[Arg::User, Arg::Words(ROLES)],
    },
    SlashCommand {
        name: "set",
        aliases: &[],
        args: "agent-turns N|reply-mode MODE|slow SECONDS",
        what: "agent brakes (MODE open|mention)",
        verb: Verb::Set,
        complete: &[Arg::Words(SETTINGS), Arg::SettingValue],
    },
    SlashCommand {
        name: "floor",
        aliases: &[],
        args: "[@AGENT]",
        what: "give the floor; bare: take it back",
        verb: Verb::Floor,
        complete: &[Arg::Agent],
    },
    SlashCommand {
        name: "invite",
        aliases: &[],
        args: "[USES] [TTL]",
        what: "a token to join this channel with",
        verb: Verb::Invite,
        complete: &[],
    },
    SlashCommand {
        name: "audit",
        aliases: &[],
        args: "",
        what: "this channel's moderation log",
        verb: Verb::Audit,
        complete: &[],
    },
    SlashCommand {
        name: "pin",
        aliases: &[],
        args: "SEQ",
        what: "pin a message atop the channel",
        verb: Verb::Pin,
        complete: &[],
    },
    SlashCommand {
        name: "unpin",
        aliases: &[],
        args: "SEQ",
        what: "unpin a message",
        verb: Verb::Unpin,
        complete: &[],
    },
    SlashCommand {
        name: "rename",
        aliases: &[],
        args: "NEW",
        what: "rename this channel",
        verb: Verb::Rename,
        complete: &[],
    },
    SlashCommand {
        name: "archive",
        aliases: &[],
        args: "",
        what: "make this channel read-only",
        verb: Verb::Archive,
        complete: &[],
    },
    SlashCommand {
        name: "unarchive",
        aliases: &[],
        args: "",
        what: "make it writable again",
        verb: Verb::Unarchive,
        complete: &[],
    },
    SlashCommand {
        name: "delete",
        aliases: &[],
        args: "CHANNEL",
        what: "delete it and its history",
        verb: Verb::Delete,
        complete: &[Arg::Channel],
    },
    SlashCommand {
        name: "split",
        aliases: &[],
        args: "[v|h]",
        what: "split: v side by side, h stacked",
        verb: Verb::Split,
        complete: &[Arg::Words(&["v", "h"])],
    },
    SlashCommand {
        name: "close",
        aliases: &[],
        args: "",
        what: "close this pane",
        verb: Verb::Close,
        complete: &[],
    },
    SlashCommand {
        name: "autonomy",
        aliases: &["perm"],
        args: "AGENT LEVEL",
        what: "mute, notify, converse or act here",
        verb: Verb::Autonomy,
        complete: &[
            Arg::Free,
            Arg::Words(&["mute", "notify", "converse", "act"]),
        ],
    },
    SlashCommand {
        name: "bell",
        aliases: &[],
        args: "all|mentions|none",
        what: "when this channel rings",
        verb: Verb::Bell,
        complete: &[Arg::Words(&["all", "mentions", "none"])],
    },
    SlashCommand {
        name: "help",
        aliases: &[],
        args: "",
        what: "keys and commands",
        verb: Verb::Help,
        complete: &[],
    },
    SlashCommand {
        name: "quit",
        aliases: &["exit"],
        args: "",
        what: "leave the TUI",
        verb: Verb::Quit,
        complete: &[],
    },
];

/// The command a word names, by name or alias.
pub fn lookup(word: &str) -> Option<&'static SlashCommand> {
    COMMANDS
        .iter()
        .find(|c| c.name == word || c.aliases.contains(&word))
}
