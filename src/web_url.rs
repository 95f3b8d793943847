//! Links a user's client will open: the CRM's deal and new-deal templates
//! (`settings.updated`) and a deal's own `uri` (`deal.upserted`). Only `http`
//! and `https` URLs with a host are accepted, so a CRM (or anyone publishing
//! in its name) cannot make a suitcase link run `javascript:`, open `data:` or
//! a local `file:`. Checked at the edge, in [`crate::events::parse`], and
//! stated in the schemas by [`WEB_URL_PATTERN`].

use crate::events::{Event, Rejection};

/// The same rule as [`is_web_url`], as a JSON Schema (ECMA-262) pattern: a
/// case-insensitive `http`/`https` scheme, `://`, a host, and no whitespace or
/// control character anywhere.
pub const WEB_URL_PATTERN: &str = "^[hH][tT][tT][pP][sS]?://[^/?#\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$";

/// Whether `raw` is an `http` or `https` URL (or URL template) with a host.
pub fn is_web_url(raw: &str) -> bool {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.is_empty()
        && !rest.starts_with(['/', '?', '#'])
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Refuses an event carrying a link that is not an `http`/`https` URL.
pub fn check(event: &Event) -> Result<(), Rejection> {
    let links: Vec<(&str, &str)> = match event {
        Event::SettingsUpdated(e) => vec![
            ("links.deal", e.links.deal.as_str()),
            ("links.newDeal", e.links.new_deal.as_str()),
        ],
        Event::DealUpserted(e) => e.deal.uri.iter().map(|uri| ("uri", uri.as_str())).collect(),
        _ => Vec::new(),
    };
    match links.into_iter().find(|(_, link)| !is_web_url(link)) {
        Some((field, link)) => Err(Rejection::InvalidField(format!(
            "{field} {link:?} is not an http or https URL"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::parse;

    #[test]
    fn only_http_and_https_links_with_a_host() {
        let table = [
            ("https://crm.example/deals/{dealId}", true),
            ("http://crm.example/new?contact={contactId}", true),
            ("HTTPS://CRM.EXAMPLE/x", true),
            ("https://crm.example", true),
            ("https://user@crm.example:8443/x#frag", true),
            ("javascript:alert(1)//{dealId}", false),
            ("javascript://crm.example/%0aalert(1)", false),
            ("data:text/html,<script>", false),
            ("file:///etc/passwd", false),
            ("ftp://crm.example/x", false),
            ("//crm.example/x", false),
            ("/deals/{dealId}", false),
            ("https:///path-only", false),
            ("https://?q", false),
            ("https://", false),
            ("https://crm.example/a b", false),
            ("https://crm.example/\nx", false),
            ("", false),
            ("crm.example/deals", false),
        ];
        let schema = serde_json::json!({ "type": "string", "pattern": WEB_URL_PATTERN });
        let validator = jsonschema::validator_for(&schema).unwrap();
        for (raw, ok) in table {
            assert_eq!(is_web_url(raw), ok, "{raw:?}");
            assert_eq!(validator.is_valid(&raw.into()), ok, "pattern: {raw:?}");
        }
    }

    #[test]
    fn the_pattern_agrees_with_the_check_on_every_bmp_character() {
        let schema = serde_json::json!({ "type": "string", "pattern": WEB_URL_PATTERN });
        let validator = jsonschema::validator_for(&schema).unwrap();
        for c in (0u32..=0xFFFF).filter_map(char::from_u32) {
            for raw in [format!("https://{c}x/"), format!("https://x/{c}")] {
                assert_eq!(
                    validator.is_valid(&raw.as_str().into()),
                    is_web_url(&raw),
                    "U+{:04X} in {raw:?}",
                    u32::from(c)
                );
            }
        }
    }

    fn settings(deal: &str, new_deal: &str) -> String {
        serde_json::json!({
            "type": "settings.updated", "eventId": "e1", "accountId": "a",
            "occurredAt": "2026-01-01T00:00:00Z",
            "newClients": { "pipelineId": "p", "stageId": "s", "distribution": "round_robin" },
            "links": { "deal": deal, "newDeal": new_deal }
        })
        .to_string()
    }

    fn deal(uri: Option<&str>) -> String {
        let mut body = serde_json::json!({
            "type": "deal.upserted", "eventId": "e1", "accountId": "a",
            "occurredAt": "2026-01-01T00:00:00Z", "dealId": "d1", "name": "Doors",
            "contactIds": ["c1"], "responsibleUserId": "m1", "pipelineId": "p",
            "stageId": "s", "closed": false
        });
        if let Some(uri) = uri {
            body["uri"] = uri.into();
        }
        body.to_string()
    }

    #[test]
    fn events_with_other_links_are_refused_as_invalid_field() {
        const DEAL: &str = "https://crm.example/deals/{dealId}";
        const NEW: &str = "https://crm.example/new?c={contactId}";
        let table = [
            (settings(DEAL, NEW), None),
            (
                settings("http://crm.example/{dealId}", "HTTP://x/{contactId}"),
                None,
            ),
            (
                settings("javascript:alert('{dealId}')", NEW),
                Some("links.deal"),
            ),
            (settings("data:text/html,{dealId}", NEW), Some("links.deal")),
            (settings("//crm.example/{dealId}", NEW), Some("links.deal")),
            (settings(DEAL, "file:///{contactId}"), Some("links.newDeal")),
            (
                settings(DEAL, "ftp://crm.example/{contactId}"),
                Some("links.newDeal"),
            ),
            (deal(None), None),
            (deal(Some("https://crm.example/deals/d1")), None),
            (deal(Some("javascript:alert(1)")), Some("uri")),
            (deal(Some("data:text/html,<b>")), Some("uri")),
            (deal(Some("crm.example/deals/d1")), Some("uri")),
            (deal(Some("")), Some("uri")),
        ];
        for (body, refused) in table {
            match (parse(body.as_bytes()), refused) {
                (Ok(_), None) => {}
                (Err(r), Some(field)) => {
                    assert_eq!(r.code(), "invalid_field", "{body}: {r}");
                    assert!(r.to_string().starts_with(field), "{r}");
                }
                (other, _) => panic!("{body}: expected {refused:?}, got {other:?}"),
            }
        }
    }
}
