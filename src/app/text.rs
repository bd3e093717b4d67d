//! Text helpers for the view: wrapping by display width (CJK and emoji take two columns),
//! mention detection, and times.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Line breaks as the rest of the world writes them: terminals paste CR or CR LF, and a
/// message keeps only LF, never a bare CR.
pub fn unix_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Wraps `text` to lines of at most `width` display columns, breaking at spaces where it can
/// and inside a word only when the word alone is too wide. Existing newlines are kept.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0;
        for word in paragraph.split_inclusive(' ') {
            let word_width = word.width();
            if line_width + word_width.saturating_sub(trailing_spaces(word)) <= width {
                line.push_str(word);
                line_width += word_width;
                continue;
            }
            if !line.is_empty() {
                out.push(line.trim_end().to_owned());
                line.clear();
                line_width = 0;
            }
            for c in word.chars() {
                let w = c.width().unwrap_or(0);
                if line_width + w > width && !line.is_empty() {
                    out.push(line.trim_end().to_owned());
                    line.clear();
                    line_width = 0;
                }
                line.push(c);
                line_width += w;
            }
        }
        out.push(line.trim_end().to_owned());
    }
    out
}

/// `text` cut to at most `width` display columns, ending in `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

fn trailing_spaces(word: &str) -> usize {
    word.len() - word.trim_end_matches(' ').len()
}

/// Whether `text` mentions `@user` (not `@username2`).
pub fn mentions(text: &str, user: &str) -> bool {
    let needle = format!("@{user}");
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let end = from + at + needle.len();
        let next = lower[end..].chars().next();
        if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return true;
        }
        from = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_keeps_newlines() {
        assert_eq!(wrap("hello world again", 11), ["hello world", "again"]);
        assert_eq!(wrap("a\nb", 10), ["a", "b"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let lines = wrap("日本語のテキスト", 6);
        assert_eq!(lines, ["日本語", "のテキ", "スト"]);
        for line in wrap("🦀🦀🦀 ok", 4) {
            assert!(line.width() <= 4, "{line}");
        }
    }

    #[test]
    fn long_words_break_inside() {
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn mentions_need_a_word_boundary() {
        assert!(mentions("hey @alice, look", "alice"));
        assert!(mentions("@ALICE", "alice"));
        assert!(!mentions("hey @alice2", "alice"));
        assert!(!mentions("alice", "alice"));
        assert!(mentions("@alice2 and @alice", "alice"));
    }
}
