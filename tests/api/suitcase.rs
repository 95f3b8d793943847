//! The suitcase end to end: `suitcase.requested` on `P.inbound` with AMQP
//! `reply_to` and `correlation_id`, answered on the test's own queue.

use lapin::types::FieldTable;
use serde_json::{Value, json};

use crate::helpers::*;

/// Asks `user`'s suitcase of whatsapp chat `chat_id`.
async fn ask_wa(app: &TestApp, reply_to: &str, account: &str, user: &str, chat_id: &str) -> Value {
    ask(app, reply_to, account, user, ("whatsapp", chat_id)).await
}

/// Asks until the reply lists exactly `deal_ids` (account events such as
/// `deal.upserted` travel apart from the chat's events), then returns it.
async fn ask_for_deals(
    app: &TestApp,
    reply_to: &str,
    account: &str,
    user: &str,
    chat_id: &str,
    deal_ids: &[&str],
) -> Value {
    let mut want: Vec<&str> = deal_ids.to_vec();
    want.sort_unstable();
    let lists_them = |reply: &Value| {
        let mut got: Vec<&str> = reply["deals"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["dealId"].as_str()).collect())
            .unwrap_or_default();
        got.sort_unstable();
        got == want
    };
    ask_until(
        app,
        reply_to,
        account,
        user,
        ("whatsapp", chat_id),
        lists_them,
    )
    .await
}

fn deal(
    account: &str,
    deal_id: &str,
    contacts: &[&str],
    responsible: &str,
    stage: &str,
    closed: bool,
    uri: Option<&str>,
) -> Value {
    let mut fields = json!({ "dealId": deal_id, "name": format!("Deal {deal_id}"), "contactIds": contacts,
                             "responsibleUserId": responsible, "pipelineId": "p", "stageId": stage, "closed": closed });
    if let Some(uri) = uri {
        fields["uri"] = uri.into();
    }
    event("deal.upserted", account, fields)
}

/// The suitcase entry the contract promises for a deal.
fn entry(deal_id: &str, stage: &str, closed: bool, uri: &str) -> Value {
    json!({ "dealId": deal_id, "name": format!("Deal {deal_id}"), "uri": uri, "closed": closed, "pipelineId": "p", "stageId": stage })
}

fn deal_link(deal_id: &str) -> String {
    format!("https://crm.example/deals/{deal_id}")
}

/// Checks a found suitcase: contact, newDealUri, exactly `open` then `closed`
/// (each group in any order, open ones first).
fn assert_suitcase(reply: &Value, contact_id: &str, open: &[Value], closed: &[Value]) {
    assert_eq!(reply["contactId"], contact_id, "{reply}");
    assert_eq!(
        reply["newDealUri"],
        format!("https://crm.example/deals/new?contact={contact_id}"),
        "{reply}"
    );
    let deals = reply["deals"]
        .as_array()
        .unwrap_or_else(|| panic!("no deals list: {reply}"));
    assert_eq!(deals.len(), open.len() + closed.len(), "{reply}");
    let sorted = |list: &[Value]| {
        let mut list = list.to_vec();
        list.sort_by_key(|d| d["dealId"].as_str().unwrap_or_default().to_owned());
        list
    };
    assert_eq!(
        sorted(&deals[..open.len()]),
        sorted(open),
        "open deals first: {reply}"
    );
    assert_eq!(
        sorted(&deals[open.len()..]),
        sorted(closed),
        "then the closed ones: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suitcase_lists_the_users_own_deals_of_the_contact() {
    let app = TestApp::spawn(2).await;
    let acc = "acc";
    let users = [
        ("u1", "manager", true),
        ("u2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, acc, &users, Some("first_reply")).await;
    let reply_to = reply_queue(&app, FieldTable::default()).await;

    // c1 writes on chat-1, c2 on chat-2; both known to the CRM.
    app.publish_event(&contact(acc, "c1", "u1", &["chat-1"]))
        .await;
    app.publish_event(&contact(acc, "c2", "u2", &["chat-2"]))
        .await;
    let deals = [
        // u1's deals with c1: open with its own uri, open and closed from the link template.
        deal(
            acc,
            "d-open-uri",
            &["c1"],
            "u1",
            "s1",
            false,
            Some("https://elsewhere.example/x/1"),
        ),
        deal(acc, "d-closed", &["c1"], "u1", "s2", true, None),
        deal(acc, "d-open", &["c1"], "u1", "s1", false, None),
        // u2's deal with c1.
        deal(acc, "d-u2", &["c1"], "u2", "s1", false, None),
        // One deal of u1 with both contacts; and u2's deal with c2.
        deal(acc, "d-both", &["c1", "c2"], "u1", "s2", false, None),
        deal(
            acc,
            "d-c2-u2",
            &["c2"],
            "u2",
            "s2",
            true,
            Some("https://elsewhere.example/x/2"),
        ),
    ];
    for d in &deals {
        app.publish_event(d).await;
    }

    // u1 on c1: only his deals, open first.
    let reply = ask_for_deals(
        &app,
        &reply_to,
        acc,
        "u1",
        "chat-1",
        &["d-open-uri", "d-closed", "d-open", "d-both"],
    )
    .await;
    assert_suitcase(
        &reply,
        "c1",
        &[
            entry("d-open-uri", "s1", false, "https://elsewhere.example/x/1"),
            entry("d-open", "s1", false, &deal_link("d-open")),
            entry("d-both", "s2", false, &deal_link("d-both")),
        ],
        &[entry("d-closed", "s2", true, &deal_link("d-closed"))],
    );

    // u2 on c1: only his.
    let reply = ask_for_deals(&app, &reply_to, acc, "u2", "chat-1", &["d-u2"]).await;
    assert_suitcase(
        &reply,
        "c1",
        &[entry("d-u2", "s1", false, &deal_link("d-u2"))],
        &[],
    );

    // The deal with two contacts shows in c2's suitcase too.
    let reply = ask_for_deals(&app, &reply_to, acc, "u1", "chat-2", &["d-both"]).await;
    assert_suitcase(
        &reply,
        "c2",
        &[entry("d-both", "s2", false, &deal_link("d-both"))],
        &[],
    );
    let reply = ask_for_deals(&app, &reply_to, acc, "u2", "chat-2", &["d-c2-u2"]).await;
    assert_suitcase(
        &reply,
        "c2",
        &[],
        &[entry(
            "d-c2-u2",
            "s2",
            true,
            "https://elsewhere.example/x/2",
        )],
    );

    // A user with access to the channel but no deal with the contact: an empty list.
    let reply = ask_wa(&app, &reply_to, acc, "q", "chat-1").await;
    assert_suitcase(&reply, "c1", &[], &[]);

    // A deal that changes hands or closes moves in the suitcases.
    app.publish_event(&deal(acc, "d-open", &["c1"], "u2", "s2", true, None))
        .await;
    let reply = ask_for_deals(&app, &reply_to, acc, "u2", "chat-1", &["d-u2", "d-open"]).await;
    assert_suitcase(
        &reply,
        "c1",
        &[entry("d-u2", "s1", false, &deal_link("d-u2"))],
        &[entry("d-open", "s2", true, &deal_link("d-open"))],
    );
    let reply = ask_for_deals(
        &app,
        &reply_to,
        acc,
        "u1",
        "chat-1",
        &["d-open-uri", "d-closed", "d-both"],
    )
    .await;
    assert_eq!(reply["deals"].as_array().map(Vec::len), Some(3), "{reply}");

    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suitcase_errors_no_access_and_unknown_chat() {
    let app = TestApp::spawn(2).await;
    let acc = "acc";
    let users = [("u1", "manager", true), ("gone", "manager", true)];
    setup_account(&app, acc, &users, Some("first_reply")).await;
    // A user who exists with no access at all, and one removed.
    app.publish_event(&user_upserted(acc, "idle", &[])).await;
    app.publish_event(&event("users.removed", acc, json!({ "userIds": ["gone"] })))
        .await;
    app.wait_config(acc, 6).await;
    app.publish_event(&contact(acc, "c1", "u1", &["chat-1"]))
        .await;
    app.publish_event(&deal(acc, "d1", &["c1"], "u1", "s1", false, None))
        .await;
    let reply_to = reply_queue(&app, FieldTable::default()).await;
    let reply = ask_for_deals(&app, &reply_to, acc, "u1", "chat-1", &["d1"]).await;
    assert_suitcase(
        &reply,
        "c1",
        &[entry("d1", "s1", false, &deal_link("d1"))],
        &[],
    );

    // A client who wrote but is not claimed yet (first_reply): no contact yet.
    app.publish_event(&inbound(acc, "waiting", "hello")).await;
    let shown = app.notes(acc, "u1", 1).await;
    assert_eq!(kinds(&shown), ["chat.new"]);

    let no_access = json!({ "error": "no_access" });
    let unknown_chat = json!({ "error": "unknown_chat" });
    let rows: [(&str, &str, &Value, &str); 5] = [
        ("nobody", "chat-1", &no_access, "an unknown user"),
        (
            "idle",
            "chat-1",
            &no_access,
            "a user with no access to any channel",
        ),
        ("gone", "chat-1", &no_access, "a removed user"),
        (
            "u1",
            "never-wrote",
            &unknown_chat,
            "a chat Switchboard never saw",
        ),
        (
            "u1",
            "waiting",
            &unknown_chat,
            "an unclaimed chat with no contact yet",
        ),
    ];
    for (user, chat, expected, why) in rows {
        let reply = ask_wa(&app, &reply_to, acc, user, chat).await;
        assert_eq!(&reply, expected, "{why}: {user} on {chat}");
    }

    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}
