//! `suitcase.requested`: the asking user's deals with the chat's contact, open
//! first, with their CRM links. A query: it changes nothing and is answered on
//! the request's `reply_to` with its `correlation_id`. `reply_to` must be the
//! requester's own queue (server-named or direct reply-to); anything else is
//! refused, so a request can never push a reply into another user's queue.

use super::{ChatSnapshot, Decision, ReplyTo};
use crate::events::{Rejection, SuitcaseRequested};
use crate::output::{Output, Outputs, SuitcaseDeal, SuitcaseError, SuitcaseReply};

pub fn decide(e: &SuitcaseRequested, s: &ChatSnapshot, reply: &ReplyTo) -> Decision {
    let (Some(reply_to), Some(correlation_id)) = (&reply.reply_to, &reply.correlation_id) else {
        return Decision::Reject(Rejection::Invalid(
            "suitcase.requested needs the AMQP properties reply_to and correlation_id".into(),
        ));
    };
    if !is_requesters_own(reply_to) {
        return Decision::Reject(Rejection::Invalid(format!(
            "reply_to {reply_to:?} is neither a server-named queue (amq.gen-...) nor direct reply-to (amq.rabbitmq.reply-to)"
        )));
    }
    Decision::Answer(Outputs(vec![Output::Reply {
        reply_to: reply_to.clone(),
        correlation_id: correlation_id.clone(),
        reply: answer(e, s),
    }]))
}

/// Whether a reply may go to `reply_to`: a queue only its declarer's
/// connection can have (a server-named `amq.gen-` queue) or RabbitMQ's direct
/// reply-to. Any other name could be someone else's queue, for instance
/// another user's notification queue, and the reply would be pushed into it.
pub fn is_requesters_own(reply_to: &str) -> bool {
    reply_to.starts_with("amq.gen-") || reply_to.starts_with("amq.rabbitmq.reply-to")
}

fn answer(e: &SuitcaseRequested, s: &ChatSnapshot) -> SuitcaseReply {
    if s.user.as_ref().is_none_or(|u| u.access.is_empty()) {
        return SuitcaseReply::Error {
            error: SuitcaseError::NoAccess,
        };
    }
    let contact = s
        .chat
        .value
        .as_ref()
        .and_then(|c| c.contact_id.as_ref())
        .and(s.contact.value.as_ref());
    let Some(contact) = contact else {
        return SuitcaseReply::Error {
            error: SuitcaseError::UnknownChat,
        };
    };
    let links = s.settings.as_ref().map(|st| &st.links);
    let mut deals: Vec<SuitcaseDeal> = s
        .deals
        .iter()
        .filter(|d| d.responsible_user_id == e.user_id)
        .map(|d| SuitcaseDeal {
            deal_id: d.deal_id.clone(),
            name: d.name.clone(),
            uri: d.uri.clone().or_else(|| {
                links.map(|l| l.deal.replace("{dealId}", &url_escape(d.deal_id.as_str())))
            }),
            closed: d.closed,
            pipeline_id: d.pipeline_id.clone(),
            stage_id: d.stage_id.clone(),
        })
        .collect();
    deals.sort_by(|a, b| (a.closed, &a.name, &a.deal_id).cmp(&(b.closed, &b.name, &b.deal_id)));
    SuitcaseReply::Found {
        contact_id: contact.contact_id.clone(),
        deals,
        new_deal_uri: links.map(|l| {
            l.new_deal
                .replace("{contactId}", &url_escape(contact.contact_id.as_str()))
        }),
    }
}

/// Percent-encodes an id for a URL: every byte but the unreserved `A-Z a-z 0-9 - . _ ~`.
fn url_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_requesters_own;

    #[test]
    fn replies_go_only_to_the_requesters_own_queue() {
        let table = [
            ("amq.gen-JzTY20BRgKO-HjmUJj0wLg", true),
            ("amq.rabbitmq.reply-to", true),
            (
                "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyODU5MDk1OQAAB/QAAAAAYSDh7A==",
                true,
            ),
            ("switchboard.user.acc.m2", false),
            ("sbt-1.user.acc.m1", false),
            ("my-reply-queue", false),
            ("amq.gen", false),
            ("amq.direct", false),
            ("AMQ.GEN-x", false),
            ("", false),
            (" amq.gen-x", false),
        ];
        for (reply_to, ok) in table {
            assert_eq!(is_requesters_own(reply_to), ok, "{reply_to:?}");
        }
    }
}
