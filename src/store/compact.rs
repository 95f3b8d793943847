//! How contacts and deals are stored: compact JSON arrays without their id
//! (the id is the hash field), so that a typical contact or deal stays under
//! Redis's `hash-max-listpack-value` (64 bytes) and its bucket stays a compact
//! listpack. Values of the older layout (the model's JSON object, `{...}`) are
//! still read.
//!
//! - contact: `[name, responsibleUserId, [[chatType, chatId], ...]]`
//! - deal: `[name, [contactId, ...], responsibleUserId, pipelineId, stageId]`,
//!   then `closed` (`true`/`false`) when the deal is closed or has a URI, then
//!   the URI when it has one.
//!
//! `lua/layout.lua` reads a contact's responsible in both forms.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{StoreError, parse};
use crate::ids::Id;
use crate::model::{ChatRef, ChatType, Contact, Deal};

/// A contact as stored.
pub fn contact_value(contact: &Contact) -> String {
    let data: Vec<(ChatType, &Id)> = contact
        .contact_data
        .iter()
        .map(|c| (c.chat_type, &c.chat_id))
        .collect();
    json!([contact.name, contact.responsible_user_id, data]).to_string()
}

/// A deal as stored.
pub fn deal_value(deal: &Deal) -> String {
    let mut row = vec![
        json!(deal.name),
        json!(deal.contact_ids),
        json!(deal.responsible_user_id),
        json!(deal.pipeline_id),
        json!(deal.stage_id),
    ];
    if deal.closed || deal.uri.is_some() {
        row.push(json!(deal.closed));
    }
    if let Some(uri) = &deal.uri {
        row.push(json!(uri));
    }
    Value::Array(row).to_string()
}

/// The contact `id` from its stored value, compact or of the older layout.
pub fn contact(id: &Id, raw: &str) -> Result<Contact, StoreError> {
    if !raw.starts_with('[') {
        return parse(raw);
    }
    type Row = (String, Id, Vec<(ChatType, Id)>);
    let (name, responsible_user_id, data): Row = parse(raw)?;
    Ok(Contact {
        contact_id: id.clone(),
        name,
        responsible_user_id,
        contact_data: data
            .into_iter()
            .map(|(chat_type, chat_id)| ChatRef { chat_type, chat_id })
            .collect(),
    })
}

/// The deal `id` from its stored value, compact or of the older layout.
pub fn deal(id: &Id, raw: &str) -> Result<Deal, StoreError> {
    if !raw.starts_with('[') {
        return parse(raw);
    }
    let DealRow(name, contact_ids, responsible_user_id, pipeline_id, stage_id, closed, uri) =
        parse(raw)?;
    Ok(Deal {
        deal_id: id.clone(),
        name,
        contact_ids,
        responsible_user_id,
        pipeline_id,
        stage_id,
        closed,
        uri,
    })
}

/// A compact deal as read: its last two elements may be left out.
#[derive(Deserialize)]
struct DealRow(
    String,
    Vec<Id>,
    Id,
    Id,
    Id,
    #[serde(default)] bool,
    #[serde(default)] Option<String>,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn a_deal(closed: bool, uri: Option<&str>) -> Deal {
        Deal {
            deal_id: id("bulk-deal-77777"),
            name: "Deal 77777".into(),
            contact_ids: vec![id("bulk-contact-77777")],
            responsible_user_id: id("manager-2"),
            pipeline_id: id("p"),
            stage_id: id("s1"),
            closed,
            uri: uri.map(str::to_owned),
        }
    }

    #[test]
    fn contacts_and_deals_round_trip_and_fit_a_listpack() {
        let contact = Contact {
            contact_id: id("bulk-contact-77777"),
            name: "Client 77777".into(),
            responsible_user_id: id("manager-2"),
            contact_data: vec![ChatRef {
                chat_type: ChatType::Whatsapp,
                chat_id: id("bulk-77777"),
            }],
        };
        let raw = contact_value(&contact);
        assert!(raw.len() <= 64, "{raw}");
        assert_eq!(self::contact(&contact.contact_id, &raw).unwrap(), contact);
        for d in [
            a_deal(false, None),
            a_deal(true, None),
            a_deal(false, Some("https://crm/d/1")),
        ] {
            let raw = deal_value(&d);
            assert_eq!(deal(&d.deal_id, &raw).unwrap(), d, "{raw}");
        }
        assert!(deal_value(&a_deal(false, None)).len() <= 64);
    }

    #[test]
    fn values_of_the_older_layout_are_read() {
        let d = a_deal(true, Some("https://crm/d/1"));
        let old = serde_json::to_string(&d).unwrap();
        assert_eq!(deal(&d.deal_id, &old).unwrap(), d);
        assert!(matches!(
            deal(&d.deal_id, "[\"x\"]"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
