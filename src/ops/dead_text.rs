//! How dead letters read on a terminal (`dead list`, `dead show`) and as JSON.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::dead::{DeadLetter, Peek, value_text};

/// A table of dead letters, one line each, and what was left in the queue.
pub fn list(peek: &Peek, queue: &str, now: SystemTime) -> String {
    let mut out = String::new();
    if peek.total == 0 {
        let _ = writeln!(out, "{queue} is empty: no dead letters.");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>4}  {:>6}  {:<48}  {:<24}  EVENT",
        "#", "AGE", "REASON", "ROUTING KEY"
    );
    for letter in &peek.letters {
        let event = match (letter.json(), letter.event_id()) {
            (None, _) => "(body is not JSON)".to_owned(),
            (Some(_), Some(id)) => id,
            (Some(_), None) => "(no eventId)".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:>4}  {:>6}  {:<48}  {:<24}  {}",
            letter.position,
            age(letter.died(), now),
            cut(&letter.reason().unwrap_or_else(|| "?".into()), 48),
            cut(&letter.routing_key().unwrap_or_else(|| "?".into()), 24),
            event
        );
    }
    let _ = writeln!(
        out,
        "{} of {} dead letters in {queue} shown; all are still in the queue.",
        peek.letters.len(),
        peek.total
    );
    out
}

/// One dead letter in full: reason, routing key, properties, headers, body.
pub fn show(letter: &DeadLetter, total: usize, now: SystemTime) -> String {
    let mut out = String::new();
    let p = &letter.properties;
    let _ = writeln!(out, "Dead letter {} of {total}", letter.position);
    let _ = writeln!(
        out,
        "  reason:       {}",
        letter.reason().unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(
        out,
        "  routing key:  {}",
        letter.routing_key().unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(out, "  age:          {}", age(letter.died(), now));
    for (name, value) in properties(letter) {
        let _ = writeln!(out, "  {:<13} {value}", format!("{name}:"));
    }
    if let Some(headers) = p.headers() {
        let _ = writeln!(out, "  headers:");
        for (name, value) in headers.inner() {
            let _ = writeln!(out, "    {name}: {}", value_text(value));
        }
    }
    let _ = writeln!(out, "  body ({} bytes):", letter.body.len());
    match letter.json() {
        Some(json) => {
            let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
            for line in pretty.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        None => {
            let _ = writeln!(out, "    {}", String::from_utf8_lossy(&letter.body));
        }
    }
    out
}

/// The same, as one JSON object (`--json`).
pub fn to_json(letter: &DeadLetter) -> Value {
    let headers: serde_json::Map<String, Value> = letter
        .properties
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(value_text(v))))
                .collect()
        })
        .unwrap_or_default();
    let props: serde_json::Map<String, Value> = properties(letter)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    json!({
        "position": letter.position,
        "reason": letter.reason(),
        "routingKey": letter.routing_key(),
        "deadAt": letter.died().map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
        "properties": props,
        "headers": headers,
        "body": String::from_utf8_lossy(&letter.body),
    })
}

/// The AMQP properties that are set, by name.
fn properties(letter: &DeadLetter) -> Vec<(&'static str, String)> {
    let p = &letter.properties;
    let mut out = Vec::new();
    let mut add = |name, value: Option<String>| {
        if let Some(value) = value {
            out.push((name, value));
        }
    };
    add(
        "content_type",
        p.content_type().as_ref().map(|v| v.to_string()),
    );
    add(
        "content_encoding",
        p.content_encoding().as_ref().map(|v| v.to_string()),
    );
    add("delivery_mode", p.delivery_mode().map(|v| v.to_string()));
    add("priority", p.priority().map(|v| v.to_string()));
    add(
        "correlation_id",
        p.correlation_id().as_ref().map(|v| v.to_string()),
    );
    add("reply_to", p.reply_to().as_ref().map(|v| v.to_string()));
    add("expiration", p.expiration().as_ref().map(|v| v.to_string()));
    add("message_id", p.message_id().as_ref().map(|v| v.to_string()));
    add("timestamp", p.timestamp().map(|v| v.to_string()));
    add("type", p.kind().as_ref().map(|v| v.to_string()));
    add("user_id", p.user_id().as_ref().map(|v| v.to_string()));
    add("app_id", p.app_id().as_ref().map(|v| v.to_string()));
    out
}

/// `42s`, `5m`, `3h`, `2d`, or `?` when unknown.
pub fn age(at: Option<SystemTime>, now: SystemTime) -> String {
    let Some(at) = at else { return "?".into() };
    let secs = now.duration_since(at).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cut(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let head: String = one_line.chars().take(max - 1).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ages_read_at_a_glance() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |s| Some(now - Duration::from_secs(s));
        assert_eq!(age(ago(5), now), "5s");
        assert_eq!(age(ago(600), now), "10m");
        assert_eq!(age(ago(3 * 3600), now), "3h");
        assert_eq!(age(ago(3 * 86400), now), "3d");
        assert_eq!(age(None, now), "?");
    }

    #[test]
    fn long_reasons_are_cut_on_one_line() {
        assert_eq!(cut("a\nb", 10), "a b");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
