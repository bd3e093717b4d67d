//! Validated names: users, machines, session handles, channels, and the `user/machine/session`
//! path that addresses one live session.
//!
//! Every name that crosses the wire or reaches the database passes through here first, so the
//! rest of the code can hold a `Name` and never re-check it. New kinds of names go here too.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest user, machine, session or channel name, in bytes. Short enough to fit a sidebar.
pub const MAX_NAME_LEN: usize = 32;

/// Joins the two user names of a direct conversation's channel.
const DIRECT_JOIN: char = '+';

/// Mentions read from one message.
const MAX_MENTIONS_PER_MESSAGE: usize = 32;

/// Why a name was refused; the text is shown to people as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} `{name}` is longer than {MAX_NAME_LEN} characters")]
    TooLong { what: &'static str, name: String },
    #[error(
        "{what} `{name}` may only hold lowercase letters, digits, `-` and `_`, and must start with a letter or digit"
    )]
    BadChar { what: &'static str, name: String },
    #[error("`{0}` is not a session path: expected user/machine/session")]
    BadPath(String),
}

/// A lowercase ASCII name: `[a-z0-9][a-z0-9_-]{0,31}`. Input is lowercased first, so `Alice`
/// and `alice` are the same user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(what: &'static str, input: &str) -> Result<Self, NameError> {
        if input.is_empty() {
            return Err(NameError::Empty { what });
        }
        if input.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                what,
                name: input.to_owned(),
            });
        }
        let lower = input.to_ascii_lowercase();
        let mut chars = lower.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !(first_ok && rest_ok) {
            return Err(NameError::BadChar {
                what,
                name: input.to_owned(),
            });
        }
        Ok(Self(lower))
    }

    /// A user name.
    pub fn user(input: &str) -> Result<Self, NameError> {
        Self::parse("user name", input)
    }

    /// A machine name.
    pub fn machine(input: &str) -> Result<Self, NameError> {
        Self::parse("machine name", input)
    }

    /// A session handle.
    pub fn handle(input: &str) -> Result<Self, NameError> {
        Self::parse("session handle", input)
    }

    /// A channel name; one leading `#` is accepted and dropped. The channel of a direct
    /// conversation (`alice+bob`, see `direct`) is one too.
    pub fn channel(input: &str) -> Result<Self, NameError> {
        let input = input.strip_prefix('#').unwrap_or(input);
        Self::parse("channel name", input).or_else(|e| Self::parse_direct(input).ok_or(e))
    }

    /// The channel of the direct conversation between two users: their names in order,
    /// joined by `+` (`alice+bob`). Both sides name it alike, and no channel a person
    /// creates can take it (a `+` is in no other name).
    pub fn direct(a: &Name, b: &Name) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Self(format!("{first}{DIRECT_JOIN}{second}"))
    }

    /// `Some` for a direct conversation's channel written as `direct` writes it: two
    /// different user names, in order.
    fn parse_direct(input: &str) -> Option<Self> {
        let (a, b) = input.split_once(DIRECT_JOIN)?;
        let (a, b) = (Self::user(a).ok()?, Self::user(b).ok()?);
        (a < b).then(|| Self::direct(&a, &b))
    }

    /// The two users of a direct conversation's channel; `None` for any other name.
    pub fn direct_users(&self) -> Option<(Name, Name)> {
        let (a, b) = self.0.split_once(DIRECT_JOIN)?;
        Some((Self(a.to_owned()), Self(b.to_owned())))
    }

    /// Whether this is a direct conversation's channel.
    pub fn is_direct(&self) -> bool {
        self.0.contains(DIRECT_JOIN)
    }

    /// In a direct conversation's channel, the user who is not `me`.
    pub fn direct_peer(&self, me: &Name) -> Option<Name> {
        let (a, b) = self.direct_users()?;
        match (&a == me, &b == me) {
            (true, _) => Some(b),
            (_, true) => Some(a),
            _ => None,
        }
    }

    /// Turns free text (a directory name, a host name) into a valid name, or `None` if nothing
    /// usable is left. Used for defaults, never for names a person typed.
    pub fn sanitize(input: &str) -> Option<Self> {
        let mut out = String::new();
        for c in input.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                out.push(c);
            } else if c == '.' || c == ' ' {
                out.push('-');
            }
        }
        let trimmed = out.trim_start_matches(['-', '_']);
        let cut: String = trimmed.chars().take(MAX_NAME_LEN).collect();
        Self::parse("name", &cut).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This name with a numeric suffix (`api-2`), cut so the result still fits.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = MAX_NAME_LEN.saturating_sub(suffix.len()).min(self.0.len());
        Self(format!("{}{suffix}", &self.0[..keep]))
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("name", &value).or_else(|e| Self::parse_direct(&value).ok_or(e))
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The address of one live session: `user/machine/session`, e.g. `alice/laptop/tui`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionPath {
    pub user: Name,
    pub machine: Name,
    pub session: Name,
}

impl SessionPath {
    pub fn new(user: Name, machine: Name, session: Name) -> Self {
        Self {
            user,
            machine,
            session,
        }
    }

    pub fn parse(input: &str) -> Result<Self, NameError> {
        let mut parts = input.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(u), Some(m), Some(s), None) => Ok(Self {
                user: Name::user(u)?,
                machine: Name::machine(m)?,
                session: Name::handle(s)?,
            }),
            _ => Err(NameError::BadPath(input.to_owned())),
        }
    }

    /// Whether `target` (a handle, a user or a full path, as written after `@` or given the
    /// floor) names this session.
    pub fn answers_to(&self, target: &str) -> bool {
        target == self.session.as_str()
            || target == self.user.as_str()
            || target == self.to_string()
    }
}

/// The `@targets` in a message, lowercased: a name or a `user/machine/session` path. The
/// server counts them for reply mode `mention`; the agent lets them through while it waits.
pub fn mentions_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split('@')
        .skip(1)
        .map(|after| {
            after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
                .collect::<String>()
                .trim_end_matches('/')
                .to_ascii_lowercase()
        })
        // Anything longer or otherwise shaped names nobody, and is not kept.
        .filter(|target| {
            Name::parse("mention", target).is_ok() || SessionPath::parse(target).is_ok()
        })
        .take(MAX_MENTIONS_PER_MESSAGE)
}

impl TryFrom<String> for SessionPath {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionPath> for String {
    fn from(value: SessionPath) -> Self {
        value.to_string()
    }
}

impl fmt::Display for SessionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.user, self.machine, self.session)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(Name::user("Alice").unwrap().as_str(), "alice");
        assert_eq!(Name::user("a-b_9").unwrap().as_str(), "a-b_9");
        assert!(matches!(Name::user(""), Err(NameError::Empty { .. })));
        assert!(matches!(Name::user("-x"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::user("a b"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::user("a/b"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::user("é"), Err(NameError::BadChar { .. })));
        assert!(matches!(
            Name::user(&"x".repeat(33)),
            Err(NameError::TooLong { .. })
        ));
        assert!(Name::user(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn a_direct_conversation_is_named_by_its_two_users_in_order() {
        let (alice, bob) = (Name::user("alice").unwrap(), Name::user("bob").unwrap());
        let dm = Name::direct(&bob, &alice);
        assert_eq!(dm.as_str(), "alice+bob");
        assert_eq!(dm, Name::direct(&alice, &bob));
        assert_eq!(Name::channel("#alice+bob").unwrap(), dm);
        assert_eq!(dm.direct_users(), Some((alice.clone(), bob.clone())));
        assert_eq!(dm.direct_peer(&alice), Some(bob.clone()));
        assert_eq!(dm.direct_peer(&Name::user("carol").unwrap()), None);
        assert!(dm.is_direct() && !alice.is_direct());
        // Out of order, with oneself, or anything but two user names: not a channel.
        for bad in ["bob+alice", "alice+alice", "alice+", "a+b+c", "alice+b c"] {
            assert!(Name::channel(bad).is_err(), "{bad}");
        }
        // Only channels may be named so: users, machines and handles never.
        assert!(Name::user("alice+bob").is_err());
        let decoded: Name = serde_json::from_str("\"alice+bob\"").unwrap();
        assert_eq!(decoded, dm);
    }

    #[test]
    fn channel_names_accept_one_leading_hash() {
        assert_eq!(Name::channel("#General").unwrap().as_str(), "general");
        assert_eq!(Name::channel("general").unwrap().as_str(), "general");
        assert!(Name::channel("##general").is_err());
    }

    #[test]
    fn sanitize_makes_defaults_from_free_text() {
        assert_eq!(
            Name::sanitize("My Project.rs").unwrap().as_str(),
            "my-project-rs"
        );
        assert_eq!(Name::sanitize("..hidden").unwrap().as_str(), "hidden");
        assert!(Name::sanitize("日本").is_none());
        assert_eq!(Name::sanitize(&"y".repeat(50)).unwrap().as_str().len(), 32);
    }

    #[test]
    fn suffixed_names_still_fit() {
        let long = Name::handle(&"z".repeat(32)).unwrap();
        let s = long.with_suffix(12);
        assert_eq!(s.as_str().len(), 32);
        assert!(s.as_str().ends_with("-12"));
        assert_eq!(
            Name::handle("api").unwrap().with_suffix(2).as_str(),
            "api-2"
        );
    }

    #[test]
    fn mentions_are_handles_users_and_paths() {
        let found: Vec<_> =
            mentions_in("@Claude please ask @bob/laptop/agent, cc @carol. a@ @a/b @x/y/z/w")
                .collect();
        assert_eq!(found, ["claude", "bob/laptop/agent", "carol"]);
        let long = format!("@{}", "a".repeat(200));
        assert_eq!(mentions_in(&long).count(), 0);
        let agent = SessionPath::parse("bob/laptop/claude").unwrap();
        assert!(agent.answers_to("claude"));
        assert!(agent.answers_to("bob"));
        assert!(agent.answers_to("bob/laptop/claude"));
        assert!(!agent.answers_to("bob/laptop"));
        assert!(!agent.answers_to("alice"));
    }

    #[test]
    fn paths_round_trip_and_reject_other_shapes() {
        let p = SessionPath::parse("alice/laptop/tui").unwrap();
        assert_eq!(p.to_string(), "alice/laptop/tui");
        assert!(SessionPath::parse("alice/laptop").is_err());
        assert!(SessionPath::parse("alice/laptop/tui/x").is_err());
        assert!(SessionPath::parse("alice//tui").is_err());
    }
}
