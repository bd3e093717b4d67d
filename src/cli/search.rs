//! `conclave search QUERY`: messages the user may read that hold every word and quoted
//! phrase of the query, newest first, with the matching words marked.

use std::io::IsTerminal;

use clap::Args;
use color_eyre::eyre::{Result, bail, eyre};

use crate::net::names::Name;
use crate::net::protocol::{MAX_SEARCH_PAGE, SearchHit, SearchRequest, SessionKind};

use super::servers::on_server;
use super::{Env, Format, local_time, printable, rfc3339};

/// Most hits one `search` prints.
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Words, and phrases in double quotes: a message must hold every one (case aside)
    pub query: String,
    /// Only this channel (CHANNEL@ALIAS on another of your servers) [default: every channel
    /// you are a member of]
    #[arg(long)]
    pub channel: Option<String>,
    /// Only messages from this user, or from this session (user/machine/session)
    #[arg(long, value_name = "USER|PATH")]
    pub from: Option<String>,
    /// Only messages from people's sessions, or from agents'
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Sent on or after: a date (2026-11-26, local midnight) or a time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Sent before: a time, or a date (up to the end of that day)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Most hits to print, newest first (at most 1000)
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Server: an alias from `conclave servers`, or ws://HOST:PORT [default: the default server]
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Human,
    Agent,
}

/// `conclave search`.
pub async fn search(env: &Env, args: SearchArgs) -> Result<()> {
    if args.limit == 0 || args.limit > MAX_LIMIT {
        bail!("--limit is 1 to {MAX_LIMIT}");
    }
    let (channel, server) = match &args.channel {
        Some(channel) => {
            let (name, server) = on_server(channel, args.server.as_deref())?;
            (Some(Name::channel(name)?), server)
        }
        None => (None, args.server.as_deref()),
    };
    let since = args.since.as_deref().map(|d| when(d, false)).transpose()?;
    let until = args.until.as_deref().map(|d| when(d, true)).transpose()?;
    let kind = args.kind.map(|k| match k {
        KindArg::Human => SessionKind::Human,
        KindArg::Agent => SessionKind::Agent,
    });
    let client = env.one_shot(server).await?;
    let (mut printed, mut before) = (0u32, None);
    let marker = Marker::for_stdout();
    loop {
        let request = SearchRequest {
            query: args.query.clone(),
            channel: channel.clone(),
            from: args.from.clone(),
            kind,
            since,
            until,
            before: before.take(),
            limit: (args.limit - printed).min(MAX_SEARCH_PAGE),
        };
        let (hits, next) = client.link.search(request).await?;
        for hit in &hits {
            match args.format {
                Format::Text => println!("{}", hit_line(hit, marker)),
                Format::Json => println!("{}", hit_json(hit)),
            }
        }
        printed += hits.len() as u32;
        match next {
            Some(next) if printed < args.limit && !hits.is_empty() => before = Some(next),
            _ => break,
        }
    }
    if printed == 0 && args.format == Format::Text {
        eprintln!("conclave: nothing matches");
    }
    Ok(())
}

/// Milliseconds since the epoch of `--since`/`--until`: an RFC 3339 time, or a local date
/// (its midnight; with `end_of_day`, the next one's).
fn when(text: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        eyre!("`{text}` is neither a date (2026-11-26) nor a time (2026-11-26T14:00:00Z)")
    })?;
    let date = if end_of_day {
        date.succ_opt()
            .ok_or_else(|| eyre!("`{text}` is too far ahead"))?
    } else {
        date
    };
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .ok_or_else(|| eyre!("`{text}` has no local midnight"))?;
    Ok(midnight.timestamp_millis())
}

/// How matches stand out: reverse video on a terminal, asterisks elsewhere.
#[derive(Debug, Clone, Copy)]
enum Marker {
    Reverse,
    Asterisks,
}

impl Marker {
    fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Reverse
        } else {
            Self::Asterisks
        }
    }

    fn wrap(self, text: &str) -> String {
        match self {
            Self::Reverse => format!("\x1b[7m{text}\x1b[27m"),
            Self::Asterisks => format!("*{text}*"),
        }
    }
}

/// A hit as a line for people: time, channel and seq, sender, and the text with its matches
/// marked (the sender's text made safe to show first, piece by piece).
fn hit_line(hit: &SearchHit, marker: Marker) -> String {
    let mut text = String::new();
    let mut at = 0;
    for &(start, end) in &hit.marks {
        let (start, end) = (start as usize, end as usize);
        let (Some(before), Some(marked)) = (hit.text.get(at..start), hit.text.get(start..end))
        else {
            continue;
        };
        text.push_str(&printable(before));
        text.push_str(&marker.wrap(&printable(marked)));
        at = end;
    }
    text.push_str(&printable(hit.text.get(at..).unwrap_or_default()));
    format!(
        "[{}] #{}:{} {}: {text}",
        local_time(hit.ts),
        hit.channel,
        hit.seq,
        hit.from
    )
}

fn hit_json(hit: &SearchHit) -> serde_json::Value {
    serde_json::json!({
        "kind": "message",
        "channel": hit.channel.as_str(),
        "seq": hit.seq,
        "from": hit.from.to_string(),
        "from_kind": hit.from_kind,
        "ts": rfc3339(hit.ts),
        "text": hit.text,
        "marks": hit.marks,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::net::names::SessionPath;

    #[test]
    fn matches_are_marked_and_the_sender_s_escapes_stay_visible() {
        let text = "deploy \u{1b}[2J green";
        let hit = SearchHit {
            channel: Name::channel("ops").unwrap(),
            seq: 7,
            ts: 0,
            from: SessionPath::parse("bob/m/cli").unwrap(),
            from_kind: None,
            text: text.into(),
            marks: vec![(0, 6), (text.len() as u32 - 5, text.len() as u32)],
        };
        let line = hit_line(&hit, Marker::Asterisks);
        assert!(line.ends_with("*deploy* \\u{1b}[2J *green*"), "{line}");
        assert!(line.contains("#ops:7 bob/m/cli"), "{line}");
    }

    #[test]
    fn dates_are_local_days_and_times_are_exact() {
        let day = when("2026-11-26", false).unwrap();
        let end = when("2026-11-26", true).unwrap();
        assert!(
            (end - day - 86_400_000).abs() <= 3_600_000,
            "a day, give or take DST"
        );
        assert_eq!(
            when("2026-11-26T00:00:00Z", false).unwrap(),
            1_795_651_200_000
        );
        assert!(when("yesterday", false).is_err());
    }
}
