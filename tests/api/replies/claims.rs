//! The claim of a waiting chat: one winner of any number of first answers.

use super::*;

const MANAGERS: [&str; 10] = [
    "m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn first_reply_claim_has_exactly_one_winner_across_three_workers() {
    let acc = "acc";
    let mut users: Vec<(&str, &str, bool)> =
        MANAGERS.iter().map(|m| (*m, "manager", true)).collect();
    users.extend([("q", "quality_control", false), ("s", "supervisor", false)]);
    let Fixture {
        app,
        crm: crm_queue,
        outbound: outbound_queue,
    } = Fixture::new(3, &users, Some("first_reply")).await;
    let everyone: Vec<&str> = users.iter().map(|u| u.0).collect();

    // 20 new clients.
    let chats: Vec<String> = (0..20).map(|i| format!("race-{i:02}")).collect();
    let first: Vec<Value> = chats.iter().map(|c| inbound(acc, c, "hello")).collect();
    publish_all(&app, &first).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .flat_map(|u| chats.iter().map(move |c| key(u, "chat.new", c, "", "")))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;

    // Every manager answers every chat at once.
    // (Each chat's answers in a different order, so different managers get a chance.)
    let answers: Vec<Value> = chats
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            MANAGERS
                .iter()
                .cycle()
                .skip(i % MANAGERS.len())
                .take(MANAGERS.len())
                .map(move |m| outbound(acc, c, m, &format!("{m} takes {c}")))
        })
        .collect();
    publish_all(&app, &answers).await;

    let outbound = app.take(&outbound_queue, chats.len(), WAIT).await;
    let crm = app.take(&crm_queue, 2 * chats.len(), WAIT).await;
    assert_eq!(
        outbound.len(),
        chats.len(),
        "exactly one message.send per chat: {outbound:?}"
    );
    assert_eq!(
        crm.len(),
        2 * chats.len(),
        "one contact and one deal per chat: {crm:?}"
    );

    let mut winner_of: BTreeMap<&str, (String, Value)> = BTreeMap::new();
    let mut expected = Vec::new();
    for chat in &chats {
        let sent: Vec<&Got> = outbound
            .iter()
            .filter(|m| m.json["chatId"] == chat.as_str())
            .collect();
        assert_eq!(sent.len(), 1, "{chat}: one message.send");
        let winner = s(&sent[0].json["userId"]).to_owned();
        let request = answers
            .iter()
            .find(|a| a["chatId"] == chat.as_str() && a["userId"] == winner.as_str())
            .unwrap();
        let created: Vec<&Got> = by_type(&crm, "contact.created")
            .into_iter()
            .filter(|c| c.json["contactData"][0]["chatId"] == chat.as_str())
            .collect();
        assert_eq!(created.len(), 1, "{chat}: one contact.created");
        let contact = &created[0].json;
        assert_eq!(
            contact["responsibleUserId"],
            winner.as_str(),
            "{chat}: {contact}"
        );
        let deals: Vec<&Got> = by_type(&crm, "deal.created")
            .into_iter()
            .filter(|d| d.json["contactIds"] == json!([contact["contactId"]]))
            .collect();
        assert_eq!(deals.len(), 1, "{chat}: one deal.created");
        let deal = &deals[0].json;
        assert_eq!(
            (
                &deal["responsibleUserId"],
                &deal["pipelineId"],
                &deal["stageId"]
            ),
            (&json!(winner), &json!("p"), &json!("s1")),
            "{deal}"
        );
        assert_send(sent[0], request, s(&contact["contactId"]));

        expected.push(key(&winner, "chat.assigned", chat, "", ""));
        for observer in ["q", "s"] {
            expected.push(key(
                observer,
                "chat.message",
                chat,
                s(&request["messageId"]),
                "",
            ));
        }
        for loser in MANAGERS.iter().filter(|m| **m != winner) {
            let theirs = answers
                .iter()
                .find(|a| a["chatId"] == chat.as_str() && a["userId"] == *loser)
                .unwrap();
            expected.push(key(
                loser,
                "message.rejected",
                chat,
                s(&theirs["messageId"]),
                "claimed_by_other",
            ));
            expected.push(key(loser, "chat.withdrawn", chat, "", ""));
        }
        winner_of.insert(
            chat,
            (
                winner,
                json!({ "contactId": contact["contactId"], "dealId": deal["dealId"] }),
            ),
        );
    }
    let got = expect_notes(&app, acc, &everyone, &expected).await;
    for (chat, (winner, ids)) in &winner_of {
        let assigned = got[winner]
            .iter()
            .find(|n| n["type"] == "chat.assigned" && n["chatId"] == *chat)
            .unwrap();
        assert_eq!(
            (&assigned["contactId"], &assigned["dealId"]),
            (&ids["contactId"], &ids["dealId"]),
            "{assigned}"
        );
    }
    let wins: BTreeSet<&str> = winner_of.values().map(|(w, _)| w.as_str()).collect();
    eprintln!(
        "{} different winners over {} chats",
        wins.len(),
        chats.len()
    );

    // Later messages of each client reach only the winner, plus QC and supervisors.
    let later: Vec<Value> = chats
        .iter()
        .map(|c| inbound(acc, c, "are you there?"))
        .collect();
    publish_all(&app, &later).await;
    let mut expected = Vec::new();
    for message in &later {
        let chat = s(&message["chatId"]);
        for user in [winner_of[chat].0.as_str(), "q", "s"] {
            expected.push(key(
                user,
                "chat.message",
                chat,
                s(&message["messageId"]),
                "",
            ));
        }
    }
    expect_notes(&app, acc, &everyone, &expected).await;
    assert!(
        app.take(&crm_queue, 0, WAIT).await.is_empty(),
        "a known client's message creates nothing"
    );
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervisors_answer_claims_the_chat_for_him() {
    let acc = "acc";
    let users = TEAM_AND_SUPERVISOR;
    let Fixture {
        app,
        crm: crm_queue,
        outbound: outbound_queue,
    } = Fixture::new(3, &users, Some("first_reply")).await;
    let everyone = TEAM_AND_SUPERVISOR.map(|u| u.0);

    show_new_chat(&app, acc, &everyone, "new").await;

    let answer = outbound(acc, "new", "s", "supervisor here");
    app.publish_event(&answer).await;
    let crm = app.take(&crm_queue, 2, WAIT).await;
    let created = by_type(&crm, "contact.created");
    let deals = by_type(&crm, "deal.created");
    assert_eq!(
        (created.len(), deals.len(), crm.len()),
        (1, 1, 2),
        "{crm:?}"
    );
    let (contact, deal) = (&created[0].json, &deals[0].json);
    assert_eq!(contact["responsibleUserId"], "s", "{contact}");
    assert_eq!(
        (&deal["responsibleUserId"], &deal["contactIds"]),
        (&json!("s"), &json!([contact["contactId"]])),
        "{deal}"
    );
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_send(&sent[0], &answer, s(&contact["contactId"]));
    let expected = [
        key("s", "chat.assigned", "new", "", ""),
        key("m1", "chat.withdrawn", "new", "", ""),
        key("m2", "chat.withdrawn", "new", "", ""),
        key("q", "chat.message", "new", s(&answer["messageId"]), ""),
    ];
    // The supervisor may or may not get his own reply back as chat.message.
    let own = |u: &str, n: &Value| u == "s" && n["type"] == "chat.message";
    expect_notes_but_echo(&app, acc, &everyone, &expected, own).await;

    // A manager's late answer loses; the client's next message goes to the supervisor (once) and QC.
    let late = outbound(acc, "new", "m1", "me too");
    app.publish_event(&late).await;
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            "m1",
            "message.rejected",
            "new",
            s(&late["messageId"]),
            "claimed_by_other",
        )],
    )
    .await;
    let next = inbound(acc, "new", "thanks");
    app.publish_event(&next).await;
    let expected = [
        key("s", "chat.message", "new", s(&next["messageId"]), ""),
        key("q", "chat.message", "new", s(&next["messageId"]), ""),
    ];
    expect_notes(&app, acc, &everyone, &expected).await;
    assert!(app.take(&outbound_queue, 0, WAIT).await.is_empty());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_settings_the_claim_creates_the_contact_but_no_deal() {
    let acc = "acc";
    let users = TEAM;
    let Fixture {
        app,
        crm: crm_queue,
        outbound: outbound_queue,
    } = Fixture::new(3, &users, None).await;
    let everyone = TEAM.map(|u| u.0);

    show_new_chat(&app, acc, &everyone, "new").await;

    // Both managers answer at once: one wins.
    let answers = [
        outbound(acc, "new", "m1", "hi from m1"),
        outbound(acc, "new", "m2", "hi from m2"),
    ];
    publish_all(&app, &answers).await;
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let winner = s(&sent[0].json["userId"]).to_owned();
    let loser = if winner == "m1" { "m2" } else { "m1" };
    let (won, lost) = if winner == "m1" {
        (&answers[0], &answers[1])
    } else {
        (&answers[1], &answers[0])
    };

    let crm = app.take(&crm_queue, 1, WAIT).await;
    assert_eq!(
        kinds(&crm.iter().map(|g| g.json.clone()).collect::<Vec<_>>()),
        ["contact.created"],
        "no deal without settings: {crm:?}"
    );
    let contact = &crm[0].json;
    assert_eq!(contact["responsibleUserId"], winner.as_str(), "{contact}");
    assert_send(&sent[0], won, s(&contact["contactId"]));
    let expected = [
        key(&winner, "chat.assigned", "new", "", ""),
        key(loser, "chat.withdrawn", "new", "", ""),
        key(
            loser,
            "message.rejected",
            "new",
            s(&lost["messageId"]),
            "claimed_by_other",
        ),
        key("q", "chat.message", "new", s(&won["messageId"]), ""),
    ];
    let got = expect_notes(&app, acc, &everyone, &expected).await;
    let assigned = got[&winner]
        .iter()
        .find(|n| n["type"] == "chat.assigned")
        .unwrap();
    assert_eq!(assigned["contactId"], contact["contactId"], "{assigned}");
    assert!(
        assigned.get("dealId").is_none_or(Value::is_null),
        "no deal: {assigned}"
    );
    app.cleanup().await;
}
