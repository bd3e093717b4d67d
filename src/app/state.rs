//! What the TUI remembers between runs, in `tui-state.toml` in the config dir: the room last
//! shown, reopened at start. Kept apart from `config.toml`, which is the person's to edit.

use std::path::Path;

use crate::net::names::Name;

use super::model::RoomId;

const FILE: &str = "tui-state.toml";

/// The channel shown when the TUI last quit, if any (whispers are not kept: they live only
/// while both sides are online).
pub fn last_room(config_dir: &Path) -> Option<Name> {
    let text = std::fs::read_to_string(config_dir.join(FILE)).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let channel = table.get("last_room")?.as_str()?;
    Name::channel(channel).ok()
}

/// Records the room in view at quit; errors are the caller's to log.
pub fn save_last_room(config_dir: &Path, room: &RoomId) -> std::io::Result<()> {
    let RoomId::Channel(channel) = room else {
        return Ok(());
    };
    let mut table = toml::Table::new();
    table.insert("last_room".into(), toml::Value::String(channel.to_string()));
    std::fs::write(config_dir.join(FILE), table.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_last_channel_shown_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_room(dir.path()), None);
        let ops = Name::channel("ops").unwrap();
        save_last_room(dir.path(), &RoomId::Channel(ops.clone())).unwrap();
        assert_eq!(last_room(dir.path()), Some(ops.clone()));
        // The status room or a whisper leaves the last channel as it was.
        save_last_room(dir.path(), &RoomId::Home).unwrap();
        assert_eq!(last_room(dir.path()), Some(ops));
    }
}
