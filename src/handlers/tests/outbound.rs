//! `message.outbound`: a user replies; the permission table and the claim.

use super::*;

/// What a reply comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Dead-lettered with this rejection code.
    Dead(&'static str),
    /// Not sent: the author gets `message.rejected` with this reason.
    Refused(RejectReason),
    /// Sent to the gateway; nothing else changes.
    Sent,
    /// The author claims the chat, then it is sent.
    Claims,
}

#[test]
fn outbound_permission_table() {
    use Expect::*;
    use RejectReason::*;
    let team = Snap::first_reply();
    let own = team.clone().known_to("m1");
    let waiting = team.clone().waiting();
    let nobody_eligible = Snap::wa1()
        .seat("m3", Role::Manager, false)
        .seat("s1", Role::Supervisor, false)
        .settings(Distribution::FirstReply)
        .chat(pending(&["s1"]));
    let lost_claim = team
        .clone()
        .chat(claimed("c1", &["m1", "m2"]))
        .contact("c1", "m2");
    // One user, manager on wa1 and quality control on wa2: seats are per channel.
    let both = [("wa1", Role::Manager), ("wa2", Role::QualityControl)];
    let u_on_wa1 = Snap::wa1()
        .seat("u", Role::Manager, true)
        .known_to("u")
        .user("u", &both);
    let u_on_wa2 = Snap::on("wa2", ChatType::Whatsapp)
        .seat("u", Role::QualityControl, false)
        .known_to("u")
        .user("u", &both);

    #[rustfmt::skip]
    let table: Vec<(&str, Snap, &str, &str, Expect)> = vec![
        // (case, snapshot, author, channel, outcome)
        ("unknown channel", own.clone().no_channel().asker("m1"), "m1", WA1, Dead("unknown_channel")),
        ("unknown user", own.clone(), "m1", WA1, Dead("unknown_user")),
        ("no seat on the channel", own.clone().asker("x9"), "x9", WA1, Refused(NoAccess)),
        ("removed user", own.clone().removed_user("gone"), "gone", WA1, Refused(NoAccess)),
        ("quality control, known chat", own.clone().asker("q1"), "q1", WA1, Refused(ReadOnly)),
        ("quality control, pending chat", waiting.clone().asker("q1"), "q1", WA1, Refused(ReadOnly)),
        ("manager, own contact", own.clone().asker("m1"), "m1", WA1, Sent),
        ("manager, another's contact", own.clone().asker("m2"), "m2", WA1, Refused(NotResponsible)),
        ("manager without new clients, another's contact", own.clone().asker("m3"), "m3", WA1, Refused(NotResponsible)),
        ("manager shown the chat, claimed by another", lost_claim.clone().asker("m1"), "m1", WA1, Refused(ClaimedByOther)),
        ("the winner of that claim", lost_claim.clone().asker("m2"), "m2", WA1, Sent),
        ("eligible manager, pending chat", waiting.clone().asker("m1"), "m1", WA1, Claims),
        ("eligible manager not shown yet, pending chat", team.clone().chat(pending(&["m1"])).asker("m2"), "m2", WA1, Claims),
        ("non-eligible manager, pending chat, others eligible", waiting.clone().asker("m3"), "m3", WA1, Refused(NotResponsible)),
        ("non-eligible manager, pending chat, nobody eligible", nobody_eligible.clone().asker("m3"), "m3", WA1, Claims),
        ("manager, chat never seen", team.clone().asker("m1"), "m1", WA1, Refused(NotResponsible)),
        ("supervisor, another's contact", own.clone().asker("s1"), "s1", WA1, Sent),
        ("supervisor, claimed chat", lost_claim.clone().asker("s1"), "s1", WA1, Sent),
        ("supervisor, pending chat", waiting.clone().asker("s1"), "s1", WA1, Claims),
        ("supervisor, pending chat nobody is eligible for", nobody_eligible.clone().asker("s1"), "s1", WA1, Claims),
        ("supervisor, chat never seen", team.clone().asker("s1"), "s1", WA1, Claims),
        ("same user as manager on wa1", u_on_wa1, "u", "wa1", Sent),
        ("same user as quality control on wa2", u_on_wa2, "u", "wa2", Refused(ReadOnly)),
    ];

    for (case, snap, author, channel, expect) in table {
        let snap = snap.build();
        let decision = decide_out(&outbound_on("ev-o1", author, channel), &snap);
        match expect {
            Dead(code) => assert_eq!(rejection(decision).code(), code, "{case}"),
            Refused(reason) => {
                let p = plan(decision);
                let expected = vec![Out {
                    target: Target::Notify,
                    to: author.into(),
                    kind: "message.rejected".into(),
                    reason: Some(reason),
                }];
                assert_eq!(outs(&p.outputs), expected, "{case}");
                assert!(
                    p.changes.is_empty(),
                    "{case}: a refused reply changes nothing"
                );
                let note = &notifications(&p)[0];
                assert_eq!(note.message_id, Some(id("msg-out-1")), "{case}");
            }
            Sent | Claims => {
                let p = plan(decision);
                let o = outs(&p.outputs);
                let sends: Vec<_> = o.iter().filter(|o| o.target == Target::Outbound).collect();
                assert_eq!(sends.len(), 1, "{case}: {o:?}");
                assert_eq!(sends[0].kind, "message.send", "{case}");
                assert_eq!(sends[0].to, format!("{ACC}.{channel}"), "{case}");
                assert!(
                    !o.iter().any(|o| o.kind == "message.rejected"),
                    "{case}: {o:?}"
                );
                let assigned = who(&p, "chat.assigned");
                if expect == Claims {
                    assert_eq!(assigned, s(&[author]), "{case}");
                    let chat: Chat = written(&p, &Item::Chat(chat_ref())).expect(case);
                    assert!(chat.pending.is_none(), "{case}");
                    let contact: Contact =
                        written(&p, &Item::Contact(chat.contact_id.unwrap())).expect(case);
                    assert_eq!(contact.responsible_user_id.as_str(), author, "{case}");
                } else {
                    assert!(assigned.is_empty(), "{case}");
                    assert!(p.changes.is_empty(), "{case}: {:?}", p.changes);
                    assert!(crm_types(&p).is_empty(), "{case}");
                }
            }
        }
    }
}

#[test]
fn outbound_rejects_a_chat_type_of_another_messenger() {
    let snap = Snap::team().known_to("m1").asker("m1").build();
    let e = MessageOutbound {
        chat_type: ChatType::Telegram,
        ..outbound("ev-o1", "m1")
    };
    assert_eq!(rejection(decide_out(&e, &snap)).code(), "invalid");
}

#[test]
fn outbound_sent_reply_carries_the_request_and_the_contact() {
    let snap = Snap::team().known_to("m1").asker("m1").build();
    let p = plan(decide_out(&outbound("ev-o1", "m1"), &snap));
    let send = &bodies(&p, Target::Outbound)[0];
    assert_eq!(
        *send,
        serde_json::json!({
            "type": "message.send",
            "eventId": "ev-o1",
            "accountId": ACC,
            "messageId": "msg-out-1",
            "channelId": WA1,
            "chatType": "whatsapp",
            "chatId": CHAT,
            "userId": "m1",
            "contactId": "c1",
            "text": "Yes, we do.",
            "occurredAt": "2026-01-01T10:00:00Z",
        })
    );
    // Quality control and supervisors see it; the author and the other managers do not.
    assert_eq!(
        told(&p),
        pairs(&[("q1", "chat.message"), ("s1", "chat.message")])
    );
    for n in notifications(&p) {
        assert_eq!(n.text.as_deref(), Some("Yes, we do."));
        assert_eq!(n.contact_id, Some(id("c1")));
    }
}

#[test]
fn outbound_supervisor_reply_is_seen_by_the_other_observers_only() {
    let p = plan(
        Snap::team()
            .seat("s2", Role::Supervisor, false)
            .known_to("m1")
            .reply_of("s1"),
    );
    assert_eq!(bodies(&p, Target::Outbound)[0]["userId"], "s1");
    assert_eq!(
        told(&p),
        pairs(&[("q1", "chat.message"), ("s2", "chat.message")])
    );
}

#[test]
fn outbound_claim_by_a_manager_creates_assigns_and_withdraws() {
    // s1 was shown the chat too (say, when nobody was eligible): he keeps it.
    let p = plan(
        Snap::first_reply()
            .chat(pending(&["m1", "m2", "s1"]))
            .reply_of("m1"),
    );

    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
    let contact = &crm_of(&p, "contact.created")[0];
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(contact["responsibleUserId"], "m1");
    assert_eq!(
        contact["name"], "Ivan",
        "the name the gateway gave with the first message"
    );
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(
        (&deal["pipelineId"], &deal["stageId"]),
        (&Value::from(PIPELINE), &Value::from(STAGE))
    );
    assert_eq!(
        deal["contactIds"],
        serde_json::json!([contact["contactId"]])
    );

    assert_eq!(who(&p, "chat.assigned"), s(&["m1"]));
    assert_eq!(
        who(&p, "chat.withdrawn"),
        s(&["m2"]),
        "not to the supervisor, who may still write"
    );
    assert_eq!(who(&p, "chat.message"), s(&["q1", "s1"]));
    assert!(who(&p, "chat.new").is_empty());

    assert_names_created(&first_of(&p, "chat.assigned"), contact, deal);

    let send = &bodies(&p, Target::Outbound)[0];
    assert_eq!(send["contactId"], contact["contactId"]);
    assert_eq!(send["userId"], "m1");

    // The claim is a guarded write of the chat, remembering who was shown it.
    assert!(has_guard_on(&p, &Item::Chat(chat_ref())));
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).unwrap();
    assert!(chat.pending.is_none());
    assert_eq!(chat.shown, ids(&["m1", "m2", "s1"]));
}

#[test]
fn outbound_claim_without_settings_creates_the_contact_but_no_deal() {
    let p = plan(Snap::team().waiting().reply_of("m2"));
    assert_eq!(crm_types(&p), s(&["contact.created"]));
    assert!(
        !p.changes
            .iter()
            .any(|op| matches!(op, Change::SaveDeal(_) | Change::LinkDeal { .. }))
    );
    assert_eq!(who(&p, "chat.assigned"), s(&["m2"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m1"]));
    let assigned = first_of(&p, "chat.assigned");
    assert_eq!(assigned.deal_id, None);
}

#[test]
fn outbound_claim_by_a_supervisor_withdraws_from_the_managers() {
    let p = plan(Snap::first_reply().waiting().reply_of("s1"));
    assert_eq!(who(&p, "chat.assigned"), s(&["s1"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m1", "m2"]));
    assert_eq!(crm_of(&p, "contact.created")[0]["responsibleUserId"], "s1");
    assert_eq!(crm_of(&p, "deal.created")[0]["responsibleUserId"], "s1");
    assert_eq!(who(&p, "chat.message"), s(&["q1"]));
}

#[test]
fn outbound_claim_of_a_contact_whose_responsible_lost_access_hands_it_over() {
    let p = plan(
        Snap::first_reply()
            .waiting_on_contact("gone")
            .reply_of("m2"),
    );
    assert_eq!(
        crm_types(&p),
        s(&["contact.responsibleChanged", "deal.created"])
    );
    let changed = &crm_of(&p, "contact.responsibleChanged")[0];
    assert_eq!(
        (
            changed["previousUserId"].as_str(),
            changed["responsibleUserId"].as_str()
        ),
        (Some("gone"), Some("m2"))
    );
    assert_eq!(bodies(&p, Target::Outbound)[0]["contactId"], "c1");
}

#[test]
fn outbound_claim_ids_repeat_for_the_same_event() {
    let snap = Snap::first_reply().waiting().asker("m1").build();
    let a = decide_out(&outbound("ev-o1", "m1"), &snap);
    let b = decide_out(&outbound("ev-o1", "m1"), &snap);
    assert_eq!(a, b);
    let other = made_up_ids(&plan(decide_out(&outbound("ev-o2", "m1"), &snap)));
    let a: BTreeSet<_> = made_up_ids(&plan(a)).into_iter().collect();
    assert!(a.is_disjoint(&other.into_iter().collect()));
}

#[test]
fn outbound_responsible_manager_may_write_to_his_contact_while_it_waits() {
    // Contract, permission table: "`manager` | contacts he is responsible for; ...".
    // c1's responsible m3 lost access, the client wrote (the chat now waits under
    // first_reply), then m3 got his seat back without new clients. The contact
    // still names him responsible, so his reply should go out.
    let p = plan(Snap::first_reply().waiting_on_contact("m3").reply_of("m3"));
    assert!(
        who(&p, "message.rejected").is_empty(),
        "{:?}",
        outs(&p.outputs)
    );
    assert_eq!(bodies(&p, Target::Outbound).len(), 1);
}
