//! Colours, keys and bells: the defaults in `assets/` (compiled in), overridden by the
//! `[tui.theme]`, `[tui.keys]` and `[tui.bell]` tables of `config.toml`, which
//! `net::config` loads with the rest of the file and which are interpreted here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use serde::Deserialize;

use crate::net::config::{CONFIG_FILE, ClientConfig, TuiConfig};
use crate::net::protocol::from_name;

const DEFAULT_THEME: &str = include_str!("../../assets/theme.toml");
const DEFAULT_KEYS: &str = include_str!("../../assets/keys.toml");

/// Colours by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub accent: Color,
    pub muted: Color,
    pub error: Color,
    pub mention: Color,
    pub unread_marker: Color,
    pub border: Color,
    pub focused_border: Color,
    pub status_fg: Color,
    pub status_bg: Color,
    pub agent: Color,
    pub senders: Vec<Color>,
}

impl Theme {
    /// A sender's colour: the same path always gets the same colour.
    pub fn sender(&self, path: &str) -> Color {
        // FNV-1a: stable across runs and platforms, unlike std's hasher.
        let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.senders
            .get((hash % self.senders.len().max(1) as u64) as usize)
            .copied()
            .unwrap_or(self.accent)
    }
}

/// Everything a key can do, named in `[tui.keys]` as serde spells it (`next_unread`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Send,
    Newline,
    Complete,
    NextPane,
    PrevPane,
    NextRoom,
    PrevRoom,
    NextUnread,
    ScrollUp,
    ScrollDown,
    ScrollTop,
    ScrollBottom,
    Search,
    Help,
    Agents,
    Allow,
    Deny,
    Close,
    Quit,
    ClearLine,
    Undo,
    Redo,
    ToggleMouse,
}

/// When a channel rings the terminal bell; `[tui.bell]` and `/bell` spell it as serde does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BellMode {
    All,
    Mentions,
    None,
}

/// A key with its modifiers, as bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    code: KeyCode,
    modifiers: KeyModifiers,
}

impl Binding {
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.to_ascii_lowercase();
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                modifiers |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                modifiers |= KeyModifiers::SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers -= KeyModifiers::SHIFT;
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "esc" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            f if f.starts_with('f') && f.len() > 1 => KeyCode::F(f[1..].parse().ok()?),
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
            _ => return None,
        };
        Some(Self { code, modifiers })
    }

    /// The binding a key event matches (terminals report Shift-Tab as BackTab with Shift).
    fn of(event: &KeyEvent) -> Self {
        let mut modifiers =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match event.code {
            KeyCode::Char(c) => {
                if c.is_ascii_uppercase() {
                    modifiers -= KeyModifiers::SHIFT;
                }
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::BackTab => {
                modifiers -= KeyModifiers::SHIFT;
                KeyCode::BackTab
            }
            other => other,
        };
        Self { code, modifiers }
    }
}

impl std::fmt::Display for Binding {
    /// As a person writes it: `Ctrl-N`, `Alt-Enter`, `Shift-Tab`, `F1`, `PgUp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (modifier, word) in [
            (KeyModifiers::CONTROL, "Ctrl-"),
            (KeyModifiers::ALT, "Alt-"),
            (KeyModifiers::SHIFT, "Shift-"),
        ] {
            if self.modifiers.contains(modifier) {
                f.write_str(word)?;
            }
        }
        match self.code {
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{}", c.to_ascii_uppercase()),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Keys to actions.
#[derive(Debug, Clone, Default)]
pub struct Keymap {
    bindings: HashMap<Binding, Action>,
    /// Each action's keys in the order the config lists them, for what the screen says.
    keys: HashMap<Action, Vec<Binding>>,
}

impl Keymap {
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.bindings.get(&Binding::of(event)).copied()
    }

    /// The first key bound to `action`, as the screen names it ("unbound" when none is).
    pub fn key(&self, action: Action) -> String {
        self.keys
            .get(&action)
            .and_then(|keys| keys.first())
            .map_or_else(|| "unbound".to_owned(), ToString::to_string)
    }

    /// Every key bound to `action`, as the screen names them.
    pub fn keys(&self, action: Action) -> Vec<String> {
        self.keys
            .get(&action)
            .map(|keys| keys.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }
}

/// The TUI's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub theme: Theme,
    pub keymap: Keymap,
    /// Bell per channel name; `default` for the rest.
    pub bells: BTreeMap<String, BellMode>,
}

impl Settings {
    pub fn bell(&self, channel: &str) -> BellMode {
        self.bells
            .get(channel)
            .or_else(|| self.bells.get("default"))
            .copied()
            .unwrap_or(BellMode::Mentions)
    }

    /// The built-in defaults.
    pub fn defaults() -> Self {
        Self::build(&TuiConfig::default()).unwrap_or_else(|_| unreachable_defaults())
    }

    /// Defaults overridden by the `[tui]` tables of `config.toml` in `config_dir`.
    pub fn load(config_dir: &Path) -> Result<Self, String> {
        // Quietly: the session started next loads the file again and reports unknown keys.
        let config = ClientConfig::read(config_dir).map_err(|e| e.to_string())?;
        Self::build(&config.tui)
            .map_err(|e| format!("{}: [tui] {e}", config_dir.join(CONFIG_FILE).display()))
    }

    fn build(tui: &TuiConfig) -> Result<Self, String> {
        let mut theme_table: toml::Table =
            DEFAULT_THEME.parse().map_err(|e| format!("theme: {e}"))?;
        theme_table.extend(tui.theme.clone());
        let mut keys_table: toml::Table = DEFAULT_KEYS.parse().map_err(|e| format!("keys: {e}"))?;
        keys_table.extend(tui.keys.clone());
        let overridden: Vec<String> = tui.keys.keys().cloned().collect();
        let mut bells = BTreeMap::new();
        for (channel, mode) in &tui.bell {
            let mode = mode
                .as_str()
                .and_then(from_name::<BellMode>)
                .ok_or_else(|| format!("bell for `{channel}` must be all, mentions or none"))?;
            bells.insert(channel.trim_start_matches('#').to_owned(), mode);
        }
        Ok(Self {
            theme: theme(&theme_table)?,
            keymap: keymap(&keys_table, &overridden)?,
            bells,
        })
    }
}

/// The compiled-in assets always parse (a unit test says so); this is only the type's way out.
fn unreachable_defaults() -> Settings {
    Settings {
        theme: Theme {
            accent: Color::Cyan,
            muted: Color::DarkGray,
            error: Color::Red,
            mention: Color::Yellow,
            unread_marker: Color::Red,
            border: Color::DarkGray,
            focused_border: Color::Cyan,
            status_fg: Color::Black,
            status_bg: Color::Cyan,
            agent: Color::Magenta,
            senders: vec![Color::Cyan],
        },
        keymap: Keymap::default(),
        bells: BTreeMap::new(),
    }
}

fn color(table: &toml::Table, key: &str) -> Result<Color, String> {
    let text = table
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("theme.{key} is missing"))?;
    parse_color(text).ok_or_else(|| format!("theme.{key}: `{text}` is not a colour"))
}

fn parse_color(text: &str) -> Option<Color> {
    Color::from_str(&text.replace('_', "")).ok()
}

fn theme(table: &toml::Table) -> Result<Theme, String> {
    let senders = table
        .get("senders")
        .and_then(|v| v.as_array())
        .ok_or("theme.senders is missing")?
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(parse_color)
                .ok_or("theme.senders holds a bad colour")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Theme {
        accent: color(table, "accent")?,
        muted: color(table, "muted")?,
        error: color(table, "error")?,
        mention: color(table, "mention")?,
        unread_marker: color(table, "unread_marker")?,
        border: color(table, "border")?,
        focused_border: color(table, "focused_border")?,
        status_fg: color(table, "status_fg")?,
        status_bg: color(table, "status_bg")?,
        agent: color(table, "agent")?,
        senders,
    })
}

/// Binds every action in `table`; the person's own (`overridden`) last, so a key they give
/// an action wins over a default that had it.
fn keymap(table: &toml::Table, overridden: &[String]) -> Result<Keymap, String> {
    let mut bindings = HashMap::new();
    let mut named: HashMap<Action, Vec<Binding>> = HashMap::new();
    let (theirs, defaults): (Vec<_>, Vec<_>) = table
        .iter()
        .partition(|(name, _)| overridden.contains(name));
    for (name, keys) in defaults.into_iter().chain(theirs) {
        let action =
            from_name::<Action>(name).ok_or_else(|| format!("keys.{name} is not an action"))?;
        let keys: Vec<&str> = match keys {
            toml::Value::String(one) => vec![one.as_str()],
            toml::Value::Array(many) => many.iter().filter_map(|v| v.as_str()).collect(),
            _ => return Err(format!("keys.{name} must be a key or a list of keys")),
        };
        for key in keys {
            let binding =
                Binding::parse(key).ok_or_else(|| format!("keys.{name}: `{key}` is not a key"))?;
            bindings.insert(binding, action);
            named.entry(action).or_default().push(binding);
        }
    }
    // A key rebound to another action no longer names the first one.
    for (action, keys) in &mut named {
        keys.retain(|k| bindings.get(k) == Some(action));
    }
    Ok(Keymap {
        bindings,
        keys: named,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn compiled_in_defaults_parse() {
        let defaults = Settings::build(&TuiConfig::default()).unwrap();
        assert_eq!(defaults.theme.accent, Color::Cyan);
        assert_eq!(
            defaults
                .keymap
                .action(&key(KeyCode::Enter, KeyModifiers::NONE)),
            Some(Action::Send)
        );
        assert_eq!(
            defaults
                .keymap
                .action(&key(KeyCode::Enter, KeyModifiers::ALT)),
            Some(Action::Newline)
        );
        assert_eq!(
            defaults
                .keymap
                .action(&key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
        assert_eq!(
            defaults.keymap.action(&key(
                KeyCode::Char('A'),
                KeyModifiers::ALT | KeyModifiers::SHIFT
            )),
            Some(Action::NextUnread)
        );
        assert_eq!(defaults.bell("general"), BellMode::Mentions);
    }

    #[test]
    fn the_config_file_overrides_keys_colours_and_bells() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "server = \"ws://x:1\"\n[tui.theme]\naccent = \"#102030\"\n[tui.keys]\nquit = \"ctrl-q\"\n[tui.bell]\n\"#ops\" = \"all\"\ndefault = \"none\"\n",
        )
        .unwrap();
        let s = Settings::load(dir.path()).unwrap();
        assert_eq!(s.theme.accent, Color::Rgb(0x10, 0x20, 0x30));
        assert_eq!(
            s.keymap
                .action(&key(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(s.bell("ops"), BellMode::All);
        assert_eq!(s.bell("general"), BellMode::None);
        std::fs::write(dir.path().join("config.toml"), "[tui.keys]\nfly = \"x\"\n").unwrap();
        assert!(Settings::load(dir.path()).unwrap_err().contains("fly"));
    }

    #[test]
    fn the_screen_names_keys_from_the_keymap() {
        let defaults = Settings::defaults();
        assert_eq!(defaults.keymap.key(Action::Allow), "Alt-Y");
        assert_eq!(
            defaults.keymap.keys(Action::Newline),
            ["Alt-Enter", "Shift-Enter"]
        );
        assert_eq!(defaults.keymap.key(Action::PrevPane), "Shift-Tab");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[tui.keys]\nallow = \"ctrl-y\"\nhelp = [\"f5\"]\n",
        )
        .unwrap();
        let s = Settings::load(dir.path()).unwrap();
        assert_eq!(s.keymap.key(Action::Allow), "Ctrl-Y");
        assert_eq!(s.keymap.key(Action::Help), "F5");
    }

    #[test]
    fn sender_colours_are_stable() {
        let theme = Settings::defaults().theme;
        // Pinned: a change of hash or palette order would recolour everyone's history.
        assert_eq!(theme.sender("alice/laptop/tui"), Color::LightBlue);
        assert_eq!(theme.sender("bob/desk/cli"), Color::Yellow);
        let distinct: std::collections::HashSet<_> = ["a/m/x", "b/m/x", "c/m/x", "d/m/x", "e/m/x"]
            .iter()
            .map(|p| theme.sender(p))
            .collect();
        assert!(distinct.len() > 1);
    }
}
