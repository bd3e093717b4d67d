//! `/edit`, `/erase` and `/react`: changes to a message of the focused channel, by its seq.

use crate::app::model::App;
use crate::net::names::Name;
use crate::net::protocol::{Change, check_reaction};

use super::Cmd;
use super::govern::NOT_HERE;

/// The message seq that starts `rest`, and what follows it.
fn seq_and_rest<'a>(rest: &'a str, usage: &str) -> Result<(u64, &'a str), String> {
    let (seq, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match seq.parse::<u64>() {
        Ok(seq) if seq > 0 => Ok((seq, after.trim())),
        _ => Err(format!(
            "usage: {usage} (SEQ: the number after the channel's name)"
        )),
    }
}

/// `/edit SEQ TEXT`: one of my messages now reads TEXT.
pub(super) fn edit(channel: Option<Name>, rest: &str) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (target, text) = seq_and_rest(rest, "/edit SEQ TEXT")?;
    if text.is_empty() {
        return Err("usage: /edit SEQ TEXT".into());
    }
    Ok(vec![Cmd::Change {
        channel,
        change: Change::Edit { target },
        text: text.to_owned(),
    }])
}

/// `/erase SEQ`: deletes a message (mine, or any where I moderate).
pub(super) fn erase(channel: Option<Name>, rest: &str) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (target, _) = seq_and_rest(rest, "/erase SEQ")?;
    Ok(vec![Cmd::Change {
        channel,
        change: Change::Delete { target },
        text: String::new(),
    }])
}

/// `/react SEQ REACTION`: adds my reaction, or takes it back when I had made it.
pub(super) fn react(app: &App, channel: Option<Name>, rest: &str) -> Result<Vec<Cmd>, String> {
    let channel = channel.ok_or(NOT_HERE)?;
    let (target, reaction) = seq_and_rest(rest, "/react SEQ REACTION")?;
    check_reaction(reaction).map_err(|e| e.message)?;
    let mine = app.srv().me.as_ref().is_some_and(|me| {
        app.room_index(&crate::app::model::RoomId::Channel(channel.clone()))
            .is_some_and(|room| app.rooms[room].reacted(target, reaction, &me.user))
    });
    Ok(vec![Cmd::Change {
        channel,
        change: Change::React {
            target,
            removed: mine,
        },
        text: reaction.to_owned(),
    }])
}
