//! The contract's permission table, row by row, on one account.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// `message.rejected` with this reason to the author; nothing else.
    Rejected(&'static str),
    /// `message.send` on P.outbound; the channel's QC and supervisors get `chat.message`.
    Sent,
    /// As `Sent`, and the author claims the chat: contact, deal, `chat.assigned`,
    /// `chat.withdrawn` for the managers who were shown it.
    Claims,
}

/// One reply: who writes on which channel to which chat, and what must come of it.
struct Row {
    why: &'static str,
    user: &'static str,
    channel: &'static str,
    chat: &'static str,
    expect: Expect,
}

fn row(
    why: &'static str,
    user: &'static str,
    channel: &'static str,
    chat: &'static str,
    expect: Expect,
) -> Row {
    Row {
        why,
        user,
        channel,
        chat,
        expect,
    }
}

/// Each user's access.
const ACCESS: &[(&str, &[Seat<'static>])] = &[
    (
        "m1",
        &[("wa", "manager", true), ("tg", "quality_control", false)],
    ),
    ("m2", &[("wa", "manager", true)]),
    ("m3", &[("wa", "manager", false)]),
    ("q", &[("wa", "quality_control", false)]),
    (
        "s",
        &[("wa", "supervisor", false), ("tg", "supervisor", false)],
    ),
    (
        "t",
        &[("wa", "quality_control", false), ("tg", "manager", true)],
    ),
    ("x", &[("tg", "manager", false)]),
    ("z", &[]),
    ("r", &[("wa", "manager", true)]), // removed before the replies
];

fn chat_type_of(channel: &str) -> &'static str {
    if channel == "wa" {
        "whatsapp"
    } else {
        "telegram"
    }
}

/// Quality control and supervisors of a channel.
fn observers(channel: &str) -> Vec<&'static str> {
    ACCESS
        .iter()
        .filter(|(user, seats)| {
            *user != "r"
                && seats.iter().any(|(c, role, _)| {
                    *c == channel && (*role == "quality_control" || *role == "supervisor")
                })
        })
        .map(|(user, _)| *user)
        .collect()
}

/// Eligible managers of a channel.
fn eligible(channel: &str) -> Vec<&'static str> {
    ACCESS
        .iter()
        .filter(|(user, seats)| {
            *user != "r"
                && seats
                    .iter()
                    .any(|(c, role, rnc)| *c == channel && *role == "manager" && *rnc)
        })
        .map(|(user, _)| *user)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permission_table() {
    let mut app = TestApp::spawn(2).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";

    // Two channels; users with per-channel roles; first_reply; r removed.
    let mut setup = Account::new(acc)
        .channel("wa", "whatsapp", "Support")
        .channel("tg", "telegram", "Sales")
        .distribution(Some("first_reply"))
        .removed(&["r"]);
    for (user, seats) in ACCESS {
        setup = setup.user(user, seats);
    }
    setup.apply(&app).await;
    let everyone: Vec<&str> = ACCESS.iter().map(|(u, _)| *u).collect();

    // Contacts the CRM has: w-m1 (whatsapp) is m1's, t-t (telegram) is t's.
    for (contact, responsible, chat_type, chat) in [
        ("c-m1", "m1", "whatsapp", "w-m1"),
        ("c-t", "t", "telegram", "t-t"),
    ] {
        app.publish_event(&contact_on(acc, contact, responsible, chat_type, &[chat]))
            .await;
    }
    wait_contact(&app, acc, "m1", ("whatsapp", "w-m1")).await;
    wait_contact(&app, acc, "t", ("telegram", "t-t")).await;

    // Three new clients on wa, waiting to be claimed.
    let new_chats = ["w-new-1", "w-new-2", "w-new-3"];
    publish_all(&app, &new_chats.map(|c| inbound(acc, c, "hello"))).await;
    let mut shown = Vec::new();
    for user in eligible("wa").into_iter().chain(observers("wa")) {
        for chat in new_chats {
            shown.push(key(user, "chat.new", chat, "", ""));
        }
    }
    expect_notes(&app, acc, &everyone, &shown).await;

    use Expect::*;
    let rows = [
        row(
            "no seat on the channel (access elsewhere only)",
            "x",
            "wa",
            "w-m1",
            Rejected("no_access"),
        ),
        row(
            "no access to any channel",
            "z",
            "wa",
            "w-m1",
            Rejected("no_access"),
        ),
        row("removed user", "r", "wa", "w-m1", Rejected("no_access")),
        row(
            "removed user on an unclaimed chat",
            "r",
            "wa",
            "w-new-2",
            Rejected("no_access"),
        ),
        row("quality control", "q", "wa", "w-m1", Rejected("read_only")),
        row(
            "quality control on an unclaimed chat",
            "q",
            "wa",
            "w-new-2",
            Rejected("read_only"),
        ),
        row("manager on his own contact", "m1", "wa", "w-m1", Sent),
        row(
            "manager on another manager's contact",
            "m2",
            "wa",
            "w-m1",
            Rejected("not_responsible"),
        ),
        row(
            "non-eligible manager on another's contact",
            "m3",
            "wa",
            "w-m1",
            Rejected("not_responsible"),
        ),
        row(
            "eligible manager on an unclaimed chat",
            "m2",
            "wa",
            "w-new-1",
            Claims,
        ),
        row(
            "non-eligible manager on an unclaimed chat",
            "m3",
            "wa",
            "w-new-2",
            Rejected("not_responsible"),
        ),
        row("supervisor on a manager's contact", "s", "wa", "w-m1", Sent),
        row(
            "supervisor on an unclaimed chat",
            "s",
            "wa",
            "w-new-3",
            Claims,
        ),
        row(
            "manager on wa, quality control on tg: writes on tg",
            "m1",
            "tg",
            "t-t",
            Rejected("read_only"),
        ),
        row(
            "quality control on wa, manager on tg: his tg contact",
            "t",
            "tg",
            "t-t",
            Sent,
        ),
        row(
            "quality control on wa, manager on tg: writes on wa",
            "t",
            "wa",
            "w-m1",
            Rejected("read_only"),
        ),
        row(
            "manager on tg only: another's tg contact",
            "x",
            "tg",
            "t-t",
            Rejected("not_responsible"),
        ),
        row("supervisor on the other channel", "s", "tg", "t-t", Sent),
    ];
    let requests: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            reply(
                acc,
                row.channel,
                chat_type_of(row.channel),
                row.chat,
                row.user,
                &format!("row {i}: {}", row.why),
            )
        })
        .collect();
    publish_all(&app, &requests).await;

    // What the table promises.
    let mut notes = Vec::new();
    let (mut sends, mut claims) = (0, 0);
    for (row, request) in rows.iter().zip(&requests) {
        let message = s(&request["messageId"]);
        match row.expect {
            Rejected(reason) => {
                notes.push(key(row.user, "message.rejected", row.chat, message, reason))
            }
            Sent | Claims => {
                sends += 1;
                for observer in observers(row.channel)
                    .into_iter()
                    .filter(|o| *o != row.user)
                {
                    notes.push(key(observer, "chat.message", row.chat, message, ""));
                }
            }
        }
        if row.expect == Claims {
            claims += 1;
            notes.push(key(row.user, "chat.assigned", row.chat, "", ""));
            for manager in eligible(row.channel).into_iter().filter(|m| *m != row.user) {
                notes.push(key(manager, "chat.withdrawn", row.chat, "", ""));
            }
        }
    }

    let outbound = app.take(&outbound_queue, sends, WAIT).await;
    let crm = app.take(&crm_queue, 2 * claims, WAIT).await;
    let own = |user: &str, note: &Value| {
        note["type"] == "chat.message"
            && requests
                .iter()
                .any(|r| r["userId"] == user && r["messageId"] == note["messageId"])
    };
    let got = expect_notes_but_echo(&app, acc, &everyone, &notes, own).await;

    // Row by row: the replies to send, and the claims.
    let mut contact_of: BTreeMap<&str, String> =
        BTreeMap::from([("w-m1", "c-m1".into()), ("t-t", "c-t".into())]);
    for (row, request) in rows.iter().zip(&requests) {
        let message = s(&request["messageId"]);
        let sent: Vec<&Got> = outbound
            .iter()
            .filter(|m| m.json["messageId"] == message)
            .collect();
        if let Rejected(_) = row.expect {
            assert!(
                sent.is_empty(),
                "{}: a rejected reply was sent: {sent:?}",
                row.why
            );
            continue;
        }
        assert_eq!(sent.len(), 1, "{}: exactly one message.send", row.why);
        if row.expect == Claims {
            let created: Vec<&Got> = by_type(&crm, "contact.created")
                .into_iter()
                .filter(|c| c.json["contactData"][0]["chatId"] == row.chat)
                .collect();
            assert_eq!(
                created.len(),
                1,
                "{}: one contact.created: {crm:?}",
                row.why
            );
            let contact = &created[0].json;
            assert_eq!(
                contact["responsibleUserId"], row.user,
                "{}: {contact}",
                row.why
            );
            assert_eq!(
                contact["contactData"],
                json!([{ "chatType": "whatsapp", "chatId": row.chat }]),
                "{}",
                row.why
            );
            assert_eq!(
                contact["name"],
                format!("Client {}", row.chat),
                "{}: the client's name from the gateway",
                row.why
            );
            assert_eq!(created[0].routing_key, format!("{acc}.contact.created"));
            let contact_id = s(&contact["contactId"]).to_owned();
            let deals: Vec<&Got> = by_type(&crm, "deal.created")
                .into_iter()
                .filter(|d| d.json["contactIds"] == json!([contact_id]))
                .collect();
            assert_eq!(deals.len(), 1, "{}: one deal.created: {crm:?}", row.why);
            let deal = &deals[0].json;
            assert_eq!(
                (
                    &deal["responsibleUserId"],
                    &deal["pipelineId"],
                    &deal["stageId"]
                ),
                (&json!(row.user), &json!("p"), &json!("s1")),
                "{}: {deal}",
                row.why
            );
            let assigned = got[row.user]
                .iter()
                .find(|n| n["type"] == "chat.assigned" && n["chatId"] == row.chat)
                .unwrap();
            assert_eq!(assigned["contactId"], contact["contactId"], "{assigned}");
            assert_eq!(assigned["dealId"], deal["dealId"], "{assigned}");
            contact_of.insert(row.chat, contact_id);
        }
        assert_send(sent[0], request, &contact_of[row.chat]);
    }
    assert_eq!(outbound.len(), sends, "nothing else was sent: {outbound:?}");
    assert_eq!(
        crm.len(),
        2 * claims,
        "nothing else went to the CRM: {crm:?}"
    );
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}
