//! The arguments of each tool, typed: one struct per tool. Its doc comment is the tool's
//! description and its fields' doc comments describe the arguments; `tools/list` shows the
//! JSON schema schemars derives from it, and [`parse`] reads a call into it, naming the
//! argument at fault when one is missing, unknown or of the wrong type. What a tool does with
//! its arguments lives in `tools.rs`; a new argument goes here.
//!
//! schemars is the one rmcp re-exports (`crate = "rmcp::schemars"`), so the schema follows the
//! revision rmcp speaks and the tree never holds two versions of it.

use std::fmt;
use std::sync::Arc;

use rmcp::handler::server::common::{schema_for_empty_input, schema_for_input, schema_for_type};
use rmcp::model::JsonObject;
use rmcp::schemars::JsonSchema;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::ChannelRef;
use crate::net::names::SessionPath;
use crate::net::servers::split_channel;

/// Post a message (at most 16 KiB of text) to a conclave channel you joined. Refused where
/// your autonomy is below converse.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct SendArgs {
    /// Channel name, e.g. general (a leading # is fine; general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
    /// The message, at most 16 KiB (16384 bytes of UTF-8).
    pub text: String,
    /// Answer this message of the channel (its seq). A reply is pushed to every agent there,
    /// like any post; a reaction would not be.
    #[schemars(range(min = 1))]
    pub reply_to: Option<u64>,
}

/// React to a message of a channel with an emoji or a short word ("seen", "working-on-it"):
/// a cheap acknowledgement, shown on the message and not pushed to other agents as a post is.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReactArgs {
    /// Channel name, e.g. general (general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
    /// The message's seq.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// One emoji or word, at most 32 bytes, no spaces.
    pub reaction: String,
    /// Take the reaction back instead.
    #[serde(default)]
    pub remove: bool,
}

/// Replace the text of one of your own messages. The edit is pushed to every agent in the
/// channel, like a post.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct EditArgs {
    /// Channel name, e.g. general (general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
    /// The seq of your message.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// Its new text, at most 16 KiB.
    pub text: String,
}

/// Send a private message (at most 16 KiB) to one online session, by path
/// user/machine/session (the `from` of a message).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct WhisperArgs {
    /// Session path user/machine/session (user/machine/session@ALIAS on another server).
    #[serde(deserialize_with = "session")]
    #[schemars(with = "String")]
    pub to: SessionRef,
    /// At most 16 KiB.
    pub text: String,
}

/// Read a channel's history: the newest messages, older ones with `before`, or those after
/// `since` (sequence numbers). The answer names the value for the next page.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReadArgs {
    /// Channel name, e.g. general (a leading # is fine; general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
    /// Return messages after this sequence number.
    pub since: Option<u64>,
    /// Return messages before this sequence number (to page back).
    #[schemars(range(min = 1))]
    pub before: Option<u64>,
    /// At most this many (default 20).
    #[schemars(range(min = 1, max = crate::net::protocol::MAX_HISTORY_PAGE))]
    pub limit: Option<u64>,
}

/// Everything you have not read yet in your channels, oldest first, and mark it read. Call it
/// when you start and whenever you may have missed messages.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct UnreadArgs {}

/// List the channels you can see, whether you joined them, and your autonomy in each.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct ChannelsArgs {}

/// Who is online: on the server, or in one channel (with its members).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct WhoArgs {
    /// Channel name, e.g. general (a leading # is fine; general@ALIAS on another server).
    #[serde(default, deserialize_with = "optional_channel")]
    #[schemars(with = "Option<String>")]
    pub channel: Option<ChannelRef>,
}

/// Join a channel; its new messages will be pushed to you.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct JoinArgs {
    /// Channel name, e.g. general (a leading # is fine; general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
}

/// Leave a channel; its messages stop arriving.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct LeaveArgs {
    /// Channel name, e.g. general (a leading # is fine; general@ALIAS on another server).
    #[serde(deserialize_with = "channel")]
    #[schemars(with = "String")]
    pub channel: ChannelRef,
}

/// Search the history of your channels (on every server) for messages holding every word
/// and "quoted phrase" of `query`, newest first. Reads only; pushes nothing to anyone.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchArgs {
    /// Words, and phrases in double quotes; case does not matter.
    pub query: String,
    /// Only this channel (a leading # is fine; general@ALIAS on another server).
    #[serde(default, deserialize_with = "optional_channel")]
    #[schemars(with = "Option<String>")]
    pub channel: Option<ChannelRef>,
    /// Only messages from this user, or this session path user/machine/session.
    pub from: Option<String>,
    /// At most this many (default 20).
    #[schemars(range(min = 1, max = crate::net::protocol::MAX_SEARCH_PAGE))]
    pub limit: Option<u64>,
}

/// Your session, connection, open permission requests, and per channel: autonomy, unread and
/// its brakes (reply mode, agent turns left, slow mode, your mute, archived, topic, floor,
/// whether it waits for a person). One server request per channel, at most 20.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct StatusArgs {
    /// Only this channel (a leading # is fine; general@ALIAS on another server); default:
    /// every channel you joined.
    #[serde(default, deserialize_with = "optional_channel")]
    #[schemars(with = "Option<String>")]
    pub channel: Option<ChannelRef>,
}

/// A tool's arguments, under the tool's name.
pub trait ToolArgs: DeserializeOwned + JsonSchema + 'static {
    const NAME: &'static str;
}

impl ToolArgs for SendArgs {
    const NAME: &'static str = "send";
}

impl ToolArgs for ReactArgs {
    const NAME: &'static str = "react";
}

impl ToolArgs for EditArgs {
    const NAME: &'static str = "edit";
}

impl ToolArgs for WhisperArgs {
    const NAME: &'static str = "whisper";
}

impl ToolArgs for ReadArgs {
    const NAME: &'static str = "read";
}

impl ToolArgs for UnreadArgs {
    const NAME: &'static str = "unread";
}

impl ToolArgs for ChannelsArgs {
    const NAME: &'static str = "channels";
}

impl ToolArgs for WhoArgs {
    const NAME: &'static str = "who";
}

impl ToolArgs for JoinArgs {
    const NAME: &'static str = "join";
}

impl ToolArgs for LeaveArgs {
    const NAME: &'static str = "leave";
}

impl ToolArgs for StatusArgs {
    const NAME: &'static str = "status";
}

impl ToolArgs for SearchArgs {
    const NAME: &'static str = "search";
}

/// A tool's name, description and JSON schema, as `tools/list` shows them.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: String,
    pub schema: Arc<JsonObject>,
}

fn spec<T: ToolArgs>() -> ToolSpec {
    let description = schema_for_type::<T>()
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Only a schema whose root is not an object fails here, and every `ToolArgs` is a struct
    // with named fields (a test checks).
    let mut schema = schema_for_input::<T>().unwrap_or_else(|_| schema_for_empty_input());
    // schemars leaves `properties` out when there are none; clients that index it find `{}`.
    if !schema.contains_key("properties") {
        Arc::make_mut(&mut schema).insert("properties".into(), json!({}));
    }
    ToolSpec {
        name: T::NAME,
        description,
        schema,
    }
}

/// Every tool, as `tools/list` shows it.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        spec::<SendArgs>(),
        spec::<WhisperArgs>(),
        spec::<ReadArgs>(),
        spec::<UnreadArgs>(),
        spec::<ChannelsArgs>(),
        spec::<WhoArgs>(),
        spec::<JoinArgs>(),
        spec::<LeaveArgs>(),
        spec::<StatusArgs>(),
        spec::<SearchArgs>(),
        spec::<ReactArgs>(),
        spec::<EditArgs>(),
    ]
}

/// A channel as people write it: `general`, `#general`, or `general@home` on another server.
fn channel<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ChannelRef, D::Error> {
    let text = String::deserialize(deserializer)?;
    ChannelRef::parse(&text).map_err(de::Error::custom)
}

fn optional_channel<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ChannelRef>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) => ChannelRef::parse(&text)
            .map(Some)
            .map_err(de::Error::custom),
        None => Ok(None),
    }
}

/// A session path, with the server's alias after an `@` when it is on another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub path: SessionPath,
    pub server: Option<String>,
}

fn session<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SessionRef, D::Error> {
    let text = String::deserialize(deserializer)?;
    let (path, server) = split_channel(&text);
    Ok(SessionRef {
        path: SessionPath::parse(path).map_err(de::Error::custom)?,
        server: server.map(str::to_owned),
    })
}

/// Reads a call's arguments into a tool's struct. serde_json alone reports a wrong type as
/// "invalid type: integer `5`, expected a string" without saying which argument; reading
/// the object entry by entry lets the error name it.
pub fn parse<T: DeserializeOwned>(args: &Map<String, Value>) -> Result<T, String> {
    T::deserialize(ArgumentObject(args)).map_err(|ArgError(message)| message)
}

/// A sentence about the arguments, shown to the caller as is.
#[derive(Debug)]
struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

impl de::Error for ArgError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Self(format!("`{field}` is required"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let takes = if expected.is_empty() {
            "no arguments".to_owned()
        } else {
            let names: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
            names.join(", ")
        };
        Self(format!(
            "there is no argument `{field}`; this tool takes {takes}"
        ))
    }
}

/// A call's argument object, as a serde deserializer.
struct ArgumentObject<'de>(&'de Map<String, Value>);

impl<'de> Deserializer<'de> for ArgumentObject<'de> {
    type Error = ArgError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        visitor.visit_map(Entries {
            entries: self.0.iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The entries of the argument object; remembers whose value comes next so its errors can
/// name it.
struct Entries<'de> {
    entries: serde_json::map::Iter<'de>,
    value: Option<(&'de str, &'de Value)>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = ArgError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ArgError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ArgError> {
        let Some((key, value)) = self.value.take() else {
            return Err(ArgError("an argument value without its name".into()));
        };
        seed.deserialize(value)
            .map_err(|e| ArgError(format!("`{key}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::protocol::MAX_TEXT_BYTES;

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_channel_is_read_with_or_without_its_hash() {
        let a: JoinArgs = parse(&args(json!({"channel": "#General"}))).unwrap();
        let b: JoinArgs = parse(&args(json!({"channel": "general"}))).unwrap();
        assert_eq!(
            (a.channel.name.as_str(), b.channel.name.as_str()),
            ("general", "general")
        );
        let who: WhoArgs = parse(&args(json!({}))).unwrap();
        assert!(who.channel.is_none());
        let who: WhoArgs = parse(&args(json!({"channel": null}))).unwrap();
        assert!(who.channel.is_none());
    }

    #[test]
    fn a_wrong_typed_argument_is_named_with_what_was_expected() {
        let e = parse::<SendArgs>(&args(json!({"channel": "general", "text": 5}))).unwrap_err();
        assert_eq!(e, "`text`: invalid type: integer `5`, expected a string");
        let e = parse::<ReadArgs>(&args(json!({"channel": "general", "since": -1}))).unwrap_err();
        assert!(e.starts_with("`since`: invalid value: integer `-1`"), "{e}");
        let e = parse::<ReadArgs>(&args(json!({"channel": "no way"}))).unwrap_err();
        assert!(
            e.starts_with("`channel`: channel name `no way` may only hold"),
            "{e}"
        );
        let e = parse::<WhisperArgs>(&args(json!({"to": "bob", "text": "hi"}))).unwrap_err();
        assert!(e.contains("`to`: `bob` is not a session path"), "{e}");
    }

    #[test]
    fn a_missing_or_unknown_argument_is_named() {
        let e = parse::<SendArgs>(&args(json!({"channel": "general"}))).unwrap_err();
        assert_eq!(e, "`text` is required");
        let e = parse::<SendArgs>(&args(json!({"channel": "general", "text": "hi", "txt": 1})))
            .unwrap_err();
        assert_eq!(
            e,
            "there is no argument `txt`; this tool takes `channel`, `text`, `reply_to`"
        );
        let e = parse::<UnreadArgs>(&args(json!({"verbose": true}))).unwrap_err();
        assert_eq!(
            e,
            "there is no argument `verbose`; this tool takes no arguments"
        );
    }

    #[test]
    fn every_tool_schema_is_a_closed_object_with_its_required_arguments() {
        let required: &[(&str, &[&str])] = &[
            ("send", &["channel", "text"]),
            ("whisper", &["to", "text"]),
            ("read", &["channel"]),
            ("unread", &[]),
            ("channels", &[]),
            ("who", &[]),
            ("join", &["channel"]),
            ("leave", &["channel"]),
            ("status", &[]),
            ("search", &["query"]),
            ("react", &["channel", "seq", "reaction"]),
            ("edit", &["channel", "seq", "text"]),
        ];
        let specs = specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        let expected: Vec<&str> = required.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, expected);
        for (spec, (_, fields)) in specs.iter().zip(required) {
            let schema = Value::Object(spec.schema.as_ref().clone());
            assert_eq!(schema["type"], "object", "{}: {schema}", spec.name);
            assert_eq!(
                schema["additionalProperties"], false,
                "{}: {schema}",
                spec.name
            );
            assert!(schema["properties"].is_object(), "{}: {schema}", spec.name);
            let mut got: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            got.sort_unstable();
            let mut want = fields.to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "{}: {schema}", spec.name);
            for (arg, property) in schema["properties"].as_object().unwrap() {
                assert!(
                    property["description"].is_string(),
                    "{}.{arg} has no description: {schema}",
                    spec.name
                );
            }
            assert!(
                !spec.description.is_empty() && spec.description.len() < 300,
                "{}: {}",
                spec.name,
                spec.description
            );
        }
        let limit = format!("{} KiB", MAX_TEXT_BYTES / 1024);
        for name in ["send", "whisper"] {
            let spec = specs.iter().find(|s| s.name == name).unwrap();
            assert!(spec.description.contains(&limit), "{}", spec.description);
        }
    }
}
