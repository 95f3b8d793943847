//! How the demo's report reads: one line per notification, CRM event, reply
//! to send, suitcase answer; a table per user.

use std::fmt::Write as _;

use serde_json::Value;

use super::demo::Report;
use super::demo_script::ACCOUNT;

fn field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("-").to_owned()
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub(super) fn notification_line(body: &[u8]) -> String {
    let Ok(n) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    let mut line = format!(
        "{:<17}{}:{}",
        field(&n, "type"),
        field(&n, "chatType"),
        field(&n, "chatId")
    );
    if let Some(reason) = n.get("reason").and_then(Value::as_str) {
        let _ = write!(line, "  reason {reason}");
    }
    if let Some(text) = n.get("text").and_then(Value::as_str) {
        let _ = write!(line, "  {text:?}");
    }
    line
}

pub(super) fn crm_line(body: &[u8]) -> String {
    let Ok(e) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    match field(&e, "type").as_str() {
        "contact.created" => format!(
            "contact.created  {} ({}), responsible {}",
            field(&e, "name"),
            e["contactData"][0]["chatId"].as_str().unwrap_or("-"),
            field(&e, "responsibleUserId")
        ),
        "deal.created" => format!(
            "deal.created     deal {}… in {}/{}, responsible {}",
            short(&field(&e, "dealId")),
            field(&e, "pipelineId"),
            field(&e, "stageId"),
            field(&e, "responsibleUserId")
        ),
        other => format!("{other}  {e}"),
    }
}

pub(super) fn gateway_line(body: &[u8]) -> String {
    let Ok(m) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    format!(
        "message.send     {}:{} from {}  {:?}",
        field(&m, "chatType"),
        field(&m, "chatId"),
        field(&m, "userId"),
        field(&m, "text")
    )
}

pub(super) fn suitcase_line(body: &[u8]) -> String {
    let Ok(s) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    let deals: Vec<String> = s["deals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let state = if d["closed"] == true {
                "closed"
            } else {
                "open"
            };
            format!("{} ({state}) {}", field(d, "name"), field(d, "uri"))
        })
        .collect();
    format!(
        "{} deal(s): {}; new deal: {}",
        deals.len(),
        deals.join(", "),
        field(&s, "newDealUri")
    )
}

impl Report {
    /// The report as a newcomer reads it: the script, then a table per user.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Switchboard demo: account {ACCOUNT}, prefix {} (a worker in this process)\n",
            self.prefix
        );
        let _ = writeln!(out, "What happened, in order:");
        for (n, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {step}", n + 1);
        }
        let _ = writeln!(
            out,
            "\nWhat each user saw (their queue P.user.{ACCOUNT}.<user>):"
        );
        for (user, who, lines) in &self.users {
            let _ = writeln!(out, "\n  {user} ({who}): {} notification(s)", lines.len());
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        let sections = [
            ("The CRM was told (P.crm)", &self.crm),
            ("The gateway was asked to send (P.outbound)", &self.gateway),
            ("Dead letters (P.dead)", &self.dead),
        ];
        for (title, lines) in sections {
            let _ = writeln!(out, "\n{title}:");
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = writeln!(
            out,
            "\nanna's suitcase for Olga: {}",
            self.suitcase.as_deref().unwrap_or("(no answer)")
        );
        let _ = writeln!(
            out,
            "\nEverything under the prefix {} was removed.",
            self.prefix
        );
        out
    }
}
