//! `message.inbound`: a client writes.

use super::*;

#[test]
fn inbound_known_contact_goes_to_his_responsible_and_the_observers() {
    let p = answer(Snap::round_robin().known_to("m2").client_writes());
    assert_eq!(
        told(&p),
        pairs(&[
            ("m2", "chat.message"),
            ("q1", "chat.message"),
            ("s1", "chat.message")
        ])
    );
    assert!(crm_types(&p).is_empty(), "nothing for the CRM");
    assert!(
        p.changes.is_empty(),
        "a known chat changes nothing: {:?}",
        p.changes
    );
    for n in notifications(&p) {
        assert_eq!(n.contact_id, Some(id("c1")));
        assert_eq!(n.message_id, Some(id("msg-in-1")));
        assert_eq!(n.text.as_deref(), Some("Hello, do you deliver?"));
        assert_eq!(
            (n.channel_id.as_str(), n.chat_type, n.chat_id.as_str()),
            (WA1, ChatType::Whatsapp, CHAT)
        );
    }
}

#[test]
fn inbound_rejects_what_cannot_be_routed() {
    let table: Vec<(&str, MessageInbound, ChatSnapshot, &str)> = vec![
        (
            "unknown channel",
            inbound("ev-1"),
            Snap::team().no_channel().build(),
            "unknown_channel",
        ),
        (
            "chatType of another messenger",
            MessageInbound {
                chat_type: ChatType::Telegram,
                ..inbound("ev-1")
            },
            Snap::team().build(),
            "invalid",
        ),
        (
            "channel of another messenger",
            inbound("ev-1"),
            Snap::on(WA1, ChatType::Viber)
                .seat("m1", Role::Manager, true)
                .build(),
            "invalid",
        ),
    ];
    for (name, event, snap, code) in table {
        let r = rejection(decide_in(&event, &snap));
        assert_eq!(r.code(), code, "{name}: {r}");
    }
}

#[test]
fn inbound_round_robin_new_client_is_assigned_and_announced() {
    let p = plan(Snap::round_robin().client_writes());

    // The CRM gets the contact and its deal, in the configured pipeline and stage.
    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
    let contact = &crm_of(&p, "contact.created")[0];
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(contact["responsibleUserId"], "m1");
    assert_eq!(contact["name"], "Ivan");
    assert_eq!(
        contact["contactData"],
        serde_json::json!([{"chatType": "whatsapp", "chatId": CHAT}])
    );
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(deal["pipelineId"], PIPELINE);
    assert_eq!(deal["stageId"], STAGE);
    assert_eq!(
        deal["contactIds"],
        serde_json::json!([contact["contactId"]])
    );
    for event in [contact, deal] {
        assert_eq!(event["occurredAt"], "2026-01-01T10:00:00Z");
        assert!(event["eventId"].as_str().is_some_and(|e| !e.is_empty()));
    }

    // Exactly the chosen manager, and the observers, get chat.new; nobody else hears of it.
    assert_eq!(
        told(&p),
        pairs(&[("m1", "chat.new"), ("q1", "chat.new"), ("s1", "chat.new")])
    );
    let to_m1 = notifications(&p)
        .into_iter()
        .find(|n| n.user_id.as_str() == "m1")
        .unwrap();
    assert_names_created(&to_m1, contact, deal);

    // The turn is taken as the plan is applied: no guard on the pool, only
    // on the chat and the configuration.
    assert!(has_guard_on(&p, &Item::Chat(chat_ref())));
    assert!(!has_guard_on(&p, &Item::RoundRobin(id(WA1))));
    assert!(has_guard_on(&p, &Item::Config));

    // The chat, contact and deal are stored.
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).expect("chat written");
    assert_eq!(
        chat.contact_id.as_ref().map(Id::as_str),
        contact["contactId"].as_str()
    );
    assert!(chat.pending.is_none());
    let contact_id = chat.contact_id.unwrap();
    let stored_contact: Contact =
        written(&p, &Item::Contact(contact_id.clone())).expect("contact written");
    assert_eq!(stored_contact.responsible_user_id, id("m1"));
    let deal_id = id(deal["dealId"].as_str().unwrap());
    assert!(p.changes.contains(&Change::LinkDeal {
        contact: contact_id,
        deal: deal_id.clone()
    }));
    let stored_deal: Deal = written(&p, &Item::Deal(deal_id)).expect("deal written");
    assert!(!stored_deal.closed);
}

#[test]
fn inbound_round_robin_offers_the_turn_to_every_eligible_manager() {
    // m1 and m2 take new clients, m3 does not: the store picks one of two
    // variants, each giving the client to its own manager.
    let p = raw_plan(decide_in(
        &inbound("ev-2"),
        &Snap::team().settings(Distribution::RoundRobin).build(),
    ));
    let turn = p.turn.as_ref().expect("a round-robin turn");
    assert_eq!(turn.channel, id(WA1));
    let managers: Vec<&str> = turn.managers.iter().map(Id::as_str).collect();
    assert_eq!(managers, ["m1", "m2"], "eligible managers, by id");
    assert_eq!(p.tally.round_robin, 1);
    for manager in ["m1", "m2"] {
        let given = p.with_turn_to(Some(&id(manager))).unwrap();
        assert_eq!(who(&given, "chat.new"), s(&[manager, "q1", "s1"]));
        assert_eq!(
            crm_of(&given, "deal.created")[0]["responsibleUserId"],
            manager
        );
        let contact = &crm_of(&given, "contact.created")[0];
        assert_eq!(contact["responsibleUserId"], manager);
        assert_eq!(given.guards, p.guards, "the variants share the guards");
    }
    assert!(p.with_turn_to(Some(&id("m3"))).is_none());
    assert!(p.with_turn_to(None).is_none());
}

#[test]
fn inbound_round_robin_template_gives_each_manager_his_own_variant() {
    use crate::state::TurnAdds;
    // The chat of contact `c1` waits, shown as new to `shown`.
    let waits_on_c1 = |shown: &[&str]| Chat {
        contact_id: Some(id("c1")),
        ..pending(shown)
    };
    // Each: the snapshot, and whether its turn is one template for all.
    let table = [
        (Snap::round_robin(), true),
        (Snap::round_robin().known_to("gone"), true),
        (Snap::round_robin().waiting_on_contact("gone"), false),
        (Snap::round_robin().waiting_on_contact("m3"), false),
        (Snap::round_robin().chat(pending(&["m3", "q1"])), true),
        (
            Snap::round_robin()
                .chat(waits_on_c1(&["m3"]))
                .contact("c1", "gone"),
            true,
        ),
        (Snap::round_robin().chat(pending(&["m2"])), false),
        (Snap::round_robin().waiting(), false),
        (
            Snap::round_robin()
                .chat(waits_on_c1(&[]))
                .contact("c1", "m2"),
            false,
        ),
        (
            Snap::round_robin()
                .chat(waits_on_c1(&[]))
                .contact("c1", "m3"),
            true,
        ),
        (Snap::round_robin().seat("m9", Role::Manager, true), true),
    ];
    for (n, (snap, alike)) in table.into_iter().enumerate() {
        let snap = snap.build();
        let e = inbound("ev-1");
        let p = raw_plan(decide_in(&e, &snap));
        let by_variants = raw_plan(super::super::message_inbound::decide_by_variants(&e, &snap));
        let turn = p.turn.as_ref().expect("a turn");
        assert_eq!(
            matches!(turn.adds, TurnAdds::Template { .. }),
            alike,
            "case {n}"
        );
        assert_eq!(
            turn.managers,
            by_variants.turn.as_ref().unwrap().managers,
            "case {n}"
        );
        for manager in &turn.managers {
            let given = p.with_turn_to(Some(manager)).unwrap();
            assert_eq!(
                given,
                by_variants.with_turn_to(Some(manager)).unwrap(),
                "case {n}, {manager}"
            );
            assert!(
                !format!("{given:?}").contains("Id(\"\")"),
                "case {n}: a slot left in {given:?}"
            );
        }
    }
}

#[test]
fn inbound_a_manager_without_new_clients_is_not_eligible() {
    for distribution in [Distribution::RoundRobin, Distribution::FirstReply] {
        let snap = Snap::wa1()
            .seat("m1", Role::Manager, true)
            .seat("m3", Role::Manager, false)
            .settings(distribution)
            .build();
        let p = plan(decide_in(&inbound("ev-1"), &snap));
        assert_eq!(told(&p), pairs(&[("m1", "chat.new")]), "{distribution:?}");
    }
}

#[test]
fn inbound_first_reply_shows_the_chat_to_every_eligible_manager() {
    let p = plan(Snap::first_reply().client_writes());
    assert_eq!(
        told(&p),
        pairs(&[
            ("m1", "chat.new"),
            ("m2", "chat.new"),
            ("q1", "chat.new"),
            ("s1", "chat.new")
        ])
    );
    assert!(crm_types(&p).is_empty(), "nothing is created yet");
    assert!(!p.changes.iter().any(|op| matches!(
        op,
        Change::SaveContact(_) | Change::SaveDeal(_) | Change::SaveRoundRobin(..)
    )));
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).expect("chat written as pending");
    let pending = chat.pending.expect("pending");
    assert_eq!(pending.shown, ids(&["m1", "m2"]));
    assert_eq!(pending.channel_id, Some(id(WA1)));
    assert_eq!(pending.name.as_deref(), Some("Ivan"));
    assert!(chat.contact_id.is_none());
    for n in notifications(&p) {
        assert_eq!(n.contact_id, None);
        assert_eq!(n.deal_id, None);
    }
}

#[test]
fn inbound_later_messages_of_a_pending_chat_are_chat_message() {
    let p = answer(Snap::first_reply().waiting().client_writes());
    assert_eq!(
        told(&p),
        pairs(&[
            ("m1", "chat.message"),
            ("m2", "chat.message"),
            ("q1", "chat.message"),
            ("s1", "chat.message")
        ])
    );
    assert!(crm_types(&p).is_empty());
    assert!(
        p.changes.is_empty(),
        "nothing new to remember: {:?}",
        p.changes
    );
}

#[test]
fn inbound_pending_chat_is_shown_to_a_manager_who_became_eligible_since() {
    let p = plan(Snap::first_reply().chat(pending(&["m1"])).client_writes());
    assert_eq!(who(&p, "chat.new"), s(&["m2"]));
    assert_eq!(who(&p, "chat.message"), s(&["m1", "q1", "s1"]));
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).unwrap();
    assert_eq!(chat.pending.unwrap().shown, ids(&["m1", "m2"]));
}

#[test]
fn inbound_without_settings_is_handled_as_first_reply() {
    let with = plan(decide_in(&inbound("ev-1"), &Snap::first_reply().build()));
    let without = plan(decide_in(&inbound("ev-1"), &Snap::team().build()));
    assert_eq!(told(&without), told(&with));
    assert_eq!(without.changes, with.changes);
    assert!(crm_types(&without).is_empty());
}

#[test]
fn inbound_with_no_eligible_manager_goes_to_the_supervisors() {
    for settings in [
        Some(Distribution::RoundRobin),
        Some(Distribution::FirstReply),
        None,
    ] {
        let mut snap = Snap::wa1()
            .seat("m3", Role::Manager, false)
            .seat("q1", Role::QualityControl, false)
            .seat("s1", Role::Supervisor, false)
            .seat("s2", Role::Supervisor, true);
        if let Some(d) = settings {
            snap = snap.settings(d);
        }
        let p = plan(decide_in(&inbound("ev-1"), &snap.build()));
        assert_eq!(
            told(&p),
            pairs(&[("q1", "chat.new"), ("s1", "chat.new"), ("s2", "chat.new")]),
            "{settings:?}"
        );
        assert!(
            crm_types(&p).is_empty(),
            "{settings:?}: the chat waits unclaimed"
        );
        let chat: Chat = written(&p, &Item::Chat(chat_ref())).unwrap();
        assert_eq!(
            chat.pending.unwrap().shown,
            ids(&["s1", "s2"]),
            "{settings:?}"
        );
    }
}

#[test]
fn inbound_responsible_lost_access_round_robin_hands_the_contact_over() {
    let p = plan(Snap::round_robin().known_to("gone").client_writes());
    assert_eq!(
        crm_types(&p),
        s(&["contact.responsibleChanged", "deal.created"])
    );
    let changed = &crm_of(&p, "contact.responsibleChanged")[0];
    assert_eq!(changed["contactId"], "c1");
    assert_eq!(changed["responsibleUserId"], "m1");
    assert_eq!(changed["previousUserId"], "gone");
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(deal["contactIds"], serde_json::json!(["c1"]));
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(who(&p, "chat.new"), s(&["m1"]));
    assert!(
        !told(&p).iter().any(|(u, _)| u == "gone"),
        "the old responsible hears nothing"
    );
    // The chat existed, so the observers see one more message of it.
    assert_eq!(who(&p, "chat.message"), s(&["q1", "s1"]));
    let contact: Contact = written(&p, &Item::Contact(id("c1"))).unwrap();
    assert_eq!(contact.responsible_user_id, id("m1"));
    assert!(has_guard_on(&p, &Item::Contact(id("c1"))));
}

#[test]
fn inbound_responsible_lost_access_first_reply_waits_for_a_claim() {
    let p = plan(Snap::first_reply().known_to("gone").client_writes());
    assert!(crm_types(&p).is_empty());
    assert_eq!(who(&p, "chat.new"), s(&["m1", "m2"]));
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).unwrap();
    assert_eq!(chat.contact_id, Some(id("c1")), "the contact stays");
    assert_eq!(chat.pending.unwrap().shown, ids(&["m1", "m2"]));
}

#[test]
fn inbound_round_robin_withdraws_a_chat_shown_before_under_first_reply() {
    let p = plan(Snap::round_robin().waiting().client_writes());
    assert_eq!(who(&p, "chat.new"), s(&["m1"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m2"]));
    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
}

#[test]
fn inbound_ids_repeat_for_the_same_event_and_differ_for_another() {
    let snap = Snap::round_robin().build();
    let once = decide_in(&inbound("ev-1"), &snap);
    let twice = decide_in(&inbound("ev-1"), &snap);
    assert_eq!(
        once, twice,
        "the same event decides the same way, byte for byte"
    );
    let first = made_up_ids(&plan(once));
    // 3 notifications, contact.created (eventId, contactId), deal.created (eventId, dealId).
    assert_eq!(first.len(), 3 + 2 + 2);
    let other = made_up_ids(&plan(decide_in(&inbound("ev-2"), &snap)));
    let first: BTreeSet<_> = first.into_iter().collect();
    let other: BTreeSet<_> = other.into_iter().collect();
    assert!(
        first.is_disjoint(&other),
        "another event makes other ids: {first:?} / {other:?}"
    );
    // Within one event, no two things share an id.
    assert_eq!(first.len(), 3 + 2 + 2);
}

#[test]
fn inbound_notification_ids_repeat_for_first_reply_too() {
    let snap = Snap::first_reply().build();
    let a = made_up_ids(&plan(decide_in(&inbound("ev-1"), &snap)));
    let b = made_up_ids(&plan(decide_in(&inbound("ev-1"), &snap)));
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
}

#[test]
fn inbound_observers_of_another_channel_see_a_chat_new_to_them_as_chat_new() {
    // Contract: "Every quality_control and supervisor user of the channel sees every
    // message of every chat on it (`chat.new` for a new chat, `chat.message` after)."
    // The client first wrote to wa1 (pending there); now he writes to wa2, whose
    // quality control has never seen this chat.
    let snap = Snap::on("wa2", ChatType::Whatsapp)
        .seat("m5", Role::Manager, true)
        .seat("q5", Role::QualityControl, false)
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1"]))
        .build();
    let e = MessageInbound {
        channel_id: id("wa2"),
        ..inbound("ev-9")
    };
    let p = plan(decide_in(&e, &snap));
    assert_eq!(told(&p), pairs(&[("m5", "chat.new"), ("q5", "chat.new")]));
}
