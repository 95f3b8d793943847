//! `suitcase.requested`: the deals a user may see, and its errors.

use super::*;

#[track_caller]
fn suitcase_answer(snap: &ChatSnapshot, user: &str) -> Value {
    let reply = reply_to();
    match decide_chat(&Event::SuitcaseRequested(suitcase(user)), snap, &reply) {
        Decision::Answer(outputs) => {
            let mut all = messages(&outputs);
            assert_eq!(all.len(), 1);
            let (target, key, m) = all.remove(0);
            assert_eq!(target, Target::Reply);
            assert_eq!(Some(&key), reply.reply_to.as_ref());
            assert_eq!(m.correlation_id, reply.correlation_id);
            serde_json::from_str(&m.body).unwrap()
        }
        other => panic!("expected Answer, got {other:?}"),
    }
}

#[test]
fn suitcase_needs_reply_to_and_correlation_id() {
    let snap = Snap::team().known_to("m1").asker("m1").build();
    let event = Event::SuitcaseRequested(suitcase("m1"));
    let no_reply_to = ReplyTo {
        reply_to: None,
        ..reply_to()
    };
    let no_correlation = ReplyTo {
        correlation_id: None,
        ..reply_to()
    };
    for props in [no_reply_to, no_correlation, ReplyTo::default()] {
        assert_eq!(
            rejection(decide_chat(&event, &snap, &props)).code(),
            "invalid",
            "{props:?}"
        );
    }
}

#[test]
fn suitcase_errors() {
    let chat = Snap::first_reply().known_to("m1");
    let table: Vec<(&str, ChatSnapshot, &str, Value)> = vec![
        (
            "unknown user",
            chat.clone().build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "removed user",
            chat.clone().removed_user("m1").build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "user with no access",
            chat.clone().user("m1", &[]).build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "chat never seen",
            Snap::team().asker("m1").build(),
            "m1",
            serde_json::json!({"error": "unknown_chat"}),
        ),
        (
            "chat still pending",
            Snap::team().chat(pending(&["m1"])).asker("m1").build(),
            "m1",
            serde_json::json!({"error": "unknown_chat"}),
        ),
    ];
    for (case, snap, user, expected) in table {
        assert_eq!(suitcase_answer(&snap, user), expected, "{case}");
    }
}

#[test]
fn suitcase_lists_the_askers_deals_open_first_with_links() {
    let snap = Snap::first_reply()
        .known_to("m1")
        .deal("d1", "A doors", "m1", true, None)
        .deal("d2", "B floors", "m2", false, None)
        .deal(
            "d3",
            "C windows",
            "m1",
            false,
            Some("https://crm.example/custom/d3"),
        )
        .deal("d4", "D roof", "m1", false, None)
        .asker("m1")
        .build();
    let answer = suitcase_answer(&snap, "m1");
    assert_eq!(answer["contactId"], "c1");
    assert_eq!(
        answer["newDealUri"],
        "https://crm.example/deals/new?contact=c1"
    );
    let deals = answer["deals"].as_array().unwrap();
    let listed: Vec<(&str, bool)> = deals
        .iter()
        .map(|d| {
            (
                d["dealId"].as_str().unwrap(),
                d["closed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "only m1's deals: {listed:?}");
    assert!(!listed.iter().any(|(d, _)| *d == "d2"));
    assert_eq!(
        listed.last(),
        Some(&("d1", true)),
        "closed deals after open ones"
    );
    let uri = |deal: &str| deals.iter().find(|d| d["dealId"] == deal).unwrap()["uri"].clone();
    assert_eq!(
        uri("d3"),
        "https://crm.example/custom/d3",
        "the deal's own uri wins"
    );
    assert_eq!(uri("d4"), "https://crm.example/deals/d4", "else links.deal");
    assert_eq!(uri("d1"), "https://crm.example/deals/d1");
    let d4 = deals.iter().find(|d| d["dealId"] == "d4").unwrap();
    assert_eq!(d4["name"], "D roof");
    assert_eq!(d4["pipelineId"], PIPELINE);
    assert_eq!(d4["stageId"], STAGE);
}

#[test]
fn suitcase_of_another_user_and_of_a_user_without_deals() {
    let base = Snap::first_reply()
        .known_to("m1")
        .deal("d1", "A doors", "m1", false, None)
        .deal("d2", "B floors", "m2", false, None);
    let m2 = suitcase_answer(&base.clone().asker("m2").build(), "m2");
    assert_eq!(m2["deals"].as_array().unwrap().len(), 1);
    assert_eq!(m2["deals"][0]["dealId"], "d2");
    let q1 = suitcase_answer(&base.asker("q1").build(), "q1");
    assert_eq!(q1["deals"], serde_json::json!([]));
    assert_eq!(q1["newDealUri"], "https://crm.example/deals/new?contact=c1");
}
