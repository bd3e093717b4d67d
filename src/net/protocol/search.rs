//! Search: what a hit carries, and how a query reads. Both ends share the reading, so a
//! query means the same to every store and every client: words and phrases in double quotes,
//! each one required, compared without regard to case; the words a hit matched are marked by
//! byte ranges of its text.

use serde::{Deserialize, Serialize};

use super::{ClientFrame, MAX_SEARCH_TERMS, ProtocolError, SessionKind};
use crate::net::names::{Name, SessionPath};

/// A message that matched, with where in its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub channel: Name,
    pub seq: u64,
    pub ts: i64,
    pub from: SessionPath,
    #[serde(default)]
    pub from_kind: Option<SessionKind>,
    pub text: String,
    /// Byte ranges `[start, end)` of `text` that match the query, in order.
    pub marks: Vec<(u32, u32)>,
}

/// A `Search` request as a client fills it in: the query and the filters it wants, the rest
/// left at their defaults (`..SearchRequest::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    pub query: String,
    pub channel: Option<Name>,
    pub from: Option<String>,
    pub kind: Option<SessionKind>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<String>,
    pub limit: u32,
}

impl SearchRequest {
    /// The request as a frame (its id assigned by the link).
    pub fn frame(self) -> ClientFrame {
        let Self {
            query,
            channel,
            from,
            kind,
            since,
            until,
            before,
            limit,
        } = self;
        ClientFrame::Search {
            id: 0,
            query,
            channel,
            from,
            kind,
            since,
            until,
            before,
            limit,
        }
    }
}

/// The words and phrases of a query, lower-cased: `deploy "green build"` is two terms. Empty,
/// or more than `MAX_SEARCH_TERMS`, is refused.
pub fn search_terms(query: &str) -> Result<Vec<String>, ProtocolError> {
    let mut terms = Vec::new();
    for (i, part) in query.split('"').enumerate() {
        let inside_quotes = i % 2 == 1;
        if inside_quotes {
            let phrase = words(part).join(" ");
            if !phrase.is_empty() {
                terms.push(phrase);
            }
        } else {
            terms.extend(words(part));
        }
    }
    if terms.is_empty() {
        return Err(ProtocolError::invalid(
            "a search needs at least one word to look for",
        ));
    }
    if terms.len() > MAX_SEARCH_TERMS {
        return Err(ProtocolError::invalid(format!(
            "a search holds at most {MAX_SEARCH_TERMS} words and phrases"
        )));
    }
    Ok(terms)
}

/// The words of `text` as every store indexes them: runs of letters and digits, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Where each term occurs in `text` as whole words (a phrase: its words in a row), as byte
/// ranges in order, overlapping ones merged.
pub fn marks(text: &str, terms: &[String]) -> Vec<(u32, u32)> {
    // Each word of the text with its byte range.
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    let mut start = None;
    for (at, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, c.is_alphanumeric() && at < text.len()) {
            (None, true) => start = Some(at),
            (Some(from), false) => {
                spans.push((from, at, text[from..at].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    let mut found: Vec<(u32, u32)> = Vec::new();
    for term in terms {
        let needle: Vec<&str> = term.split(' ').collect();
        for window in spans.windows(needle.len()) {
            if window
                .iter()
                .zip(&needle)
                .all(|(span, word)| span.2 == *word)
            {
                let (from, to) = (window[0].0, window[window.len() - 1].1);
                found.push((from as u32, to as u32));
            }
        }
    }
    found.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (from, to) in found {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_query_is_words_and_quoted_phrases_without_case() {
        assert_eq!(
            search_terms(r#"Deploy "green  BUILD" now!"#).unwrap(),
            ["deploy", "green build", "now"]
        );
        assert!(search_terms(r#" "" ,; "#).is_err());
        let many = "w ".repeat(MAX_SEARCH_TERMS + 1);
        assert!(search_terms(&many).is_err());
    }

    #[test]
    fn marks_are_whole_words_and_phrases_by_byte_range() {
        let text = "Le déploiement est vert; deploy green build, not deployed";
        let terms = search_terms(r#"deploy "green build" déploiement"#).unwrap();
        let marked: Vec<&str> = marks(text, &terms)
            .iter()
            .map(|&(a, b)| &text[a as usize..b as usize])
            .collect();
        assert_eq!(marked, ["déploiement", "deploy", "green build"]);
    }
}
