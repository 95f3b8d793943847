//! Settings, deals, contacts, channels and pipelines.

use super::*;

fn pipelines() -> Vec<Pipeline> {
    vec![Pipeline {
        pipeline_id: id(PIPELINE),
        name: "Sales".into(),
        stages: vec![
            Stage {
                stage_id: id(STAGE),
                name: "New".into(),
            },
            Stage {
                stage_id: id("st-won"),
                name: "Won".into(),
            },
        ],
    }]
}

fn settings_updated(pipeline: &str, stage: &str, links: Links) -> Event {
    Event::SettingsUpdated(SettingsUpdated {
        envelope: env("ev-a3"),
        new_clients: NewClients {
            pipeline_id: id(pipeline),
            stage_id: id(stage),
            distribution: Distribution::RoundRobin,
        },
        links,
    })
}

#[test]
fn settings_updated_table() {
    let links = || Links {
        deal: DEAL_LINK.into(),
        new_deal: NEW_DEAL_LINK.into(),
    };
    let loaded = || {
        ReadsBuilder::new()
            .with(Item::Pipelines, ItemValue::Pipelines(pipelines()))
            .build()
    };
    let table: Vec<(&str, Event, Reads, Result<(), &str>)> = vec![
        (
            "valid",
            settings_updated(PIPELINE, STAGE, links()),
            loaded(),
            Ok(()),
        ),
        (
            "another stage",
            settings_updated(PIPELINE, "st-won", links()),
            loaded(),
            Ok(()),
        ),
        (
            "unknown pipeline",
            settings_updated("p9", STAGE, links()),
            loaded(),
            Err("invalid"),
        ),
        (
            "unknown stage",
            settings_updated(PIPELINE, "st-9", links()),
            loaded(),
            Err("invalid"),
        ),
        (
            "no pipelines loaded",
            settings_updated(PIPELINE, STAGE, links()),
            ReadsBuilder::new().absent(Item::Pipelines).build(),
            Err("invalid"),
        ),
        (
            "deal link without {dealId}",
            settings_updated(
                PIPELINE,
                STAGE,
                Links {
                    deal: "https://crm.example/deals".into(),
                    ..links()
                },
            ),
            loaded(),
            Err("invalid_field"),
        ),
        (
            "new deal link without {contactId}",
            settings_updated(
                PIPELINE,
                STAGE,
                Links {
                    new_deal: "https://crm.example/new".into(),
                    ..links()
                },
            ),
            loaded(),
            Err("invalid_field"),
        ),
    ];
    for (case, event, reads, expected) in table {
        match (decide_account(&event, &reads), expected) {
            (Decision::Apply(p), Ok(())) => {
                let Event::SettingsUpdated(e) = &event else {
                    unreachable!()
                };
                let settings: Settings = written(&p, &Item::Settings).expect(case);
                assert_eq!(settings.new_clients, e.new_clients, "{case}");
                assert_eq!(settings.links, e.links, "{case}");
                assert!(p.changes.contains(&Change::ConfigChanged), "{case}");
                assert!(
                    has_guard_on(&p, &Item::Pipelines),
                    "{case}: the pipelines must not change under it"
                );
            }
            (Decision::Reject(r), Err(code)) => assert_eq!(r.code(), code, "{case}: {r}"),
            (other, expected) => panic!("{case}: expected {expected:?}, got {other:?}"),
        }
    }
}

fn deal_upserted(contacts: &[&str], responsible: &str) -> Event {
    Event::DealUpserted(DealUpserted {
        envelope: env("ev-a4"),
        deal: Deal {
            uri: Some("https://crm.example/x/d1".into()),
            ..deal("d1", contacts, responsible)
        },
    })
}

#[test]
fn deal_upserted_moves_the_deal_between_contacts() {
    let e = deal_upserted(&["c2", "c3"], "m1");
    let reads = ReadsBuilder::new()
        .user("m1", &[("wa1", Role::Manager, true)])
        .with(
            Item::Deal(id("d1")),
            ItemValue::Deal(deal("d1", &["c1", "c2"], "m1")),
        )
        .build();
    let p = plan(decide_account(&e, &reads));
    assert_eq!(
        changes_where(&p, |op| matches!(
            op,
            Change::LinkDeal { .. } | Change::UnlinkDeal { .. }
        )),
        vec![
            &Change::UnlinkDeal {
                contact: id("c1"),
                deal: id("d1")
            },
            &Change::LinkDeal {
                contact: id("c2"),
                deal: id("d1")
            },
            &Change::LinkDeal {
                contact: id("c3"),
                deal: id("d1")
            },
        ]
    );
    let deal: Deal = written(&p, &Item::Deal(id("d1"))).unwrap();
    assert_eq!(deal.contact_ids, ids(&["c2", "c3"]));
    assert_eq!(deal.uri.as_deref(), Some("https://crm.example/x/d1"));
    assert!(has_guard_on(&p, &Item::Deal(id("d1"))));
}

#[test]
fn deal_upserted_new_deal_and_unknown_responsible() {
    let e = deal_upserted(&["c1"], "m1");
    let reads = ReadsBuilder::new()
        .user("m1", &[("wa1", Role::Manager, true)])
        .absent(Item::Deal(id("d1")))
        .build();
    let p = plan(decide_account(&e, &reads));
    assert!(
        !p.changes
            .iter()
            .any(|op| matches!(op, Change::UnlinkDeal { .. }))
    );
    assert!(p.changes.contains(&Change::LinkDeal {
        contact: id("c1"),
        deal: id("d1")
    }));

    let e = deal_upserted(&["c1"], "ghost");
    let reads = ReadsBuilder::new().absent(Item::User(id("ghost"))).build();
    assert_eq!(rejection(decide_account(&e, &reads)).code(), "unknown_user");
}

fn contact_upserted(responsible: &str) -> Event {
    Event::ContactUpserted(ContactUpserted {
        envelope: env("ev-a5"),
        contact: Contact {
            contact_id: id("c7"),
            name: "Ivan".into(),
            responsible_user_id: id(responsible),
            contact_data: vec![chat_ref()],
        },
    })
}

#[test]
fn contact_upserted_settles_a_waiting_chat_and_withdraws_it() {
    let reads = ReadsBuilder::new()
        .user("m2", &[("wa1", Role::Manager, true)])
        .absent(Item::Contact(id("c7")))
        .with(
            Item::Chat(chat_ref()),
            ItemValue::Chat(pending(&["m1", "m2"])),
        )
        .build();
    let p = plan(decide_account(&contact_upserted("m2"), &reads));
    assert_eq!(told(&p), pairs(&[("m1", "chat.withdrawn")]));
    let chat: Chat = written(&p, &Item::Chat(chat_ref())).unwrap();
    assert_eq!(chat.contact_id, Some(id("c7")));
    assert!(chat.pending.is_none());
    let contact: Contact = written(&p, &Item::Contact(id("c7"))).unwrap();
    assert_eq!(contact.responsible_user_id, id("m2"));
    assert!(has_guard_on(&p, &Item::Chat(chat_ref())));

    let reads = ReadsBuilder::new().absent(Item::User(id("ghost"))).build();
    assert_eq!(
        rejection(decide_account(&contact_upserted("ghost"), &reads)).code(),
        "unknown_user"
    );
}

#[test]
fn channels_and_pipelines() {
    let e = Event::ChannelsUpserted(ChannelsUpserted {
        envelope: env("ev-a6"),
        channels: vec![
            Channel {
                channel_id: id("wa1"),
                chat_type: ChatType::Whatsapp,
                name: "Support".into(),
            },
            Channel {
                channel_id: id("ig1"),
                chat_type: ChatType::Instagram,
                name: "Sales".into(),
            },
        ],
    });
    assert_eq!(super::super::reads(&e), Some(vec![]));
    let p = plan(decide_account(&e, &Reads::default()));
    assert!(matches!(&p.changes[0], Change::SaveChannel(c) if c.channel_id == id("wa1")));
    assert!(matches!(&p.changes[1], Change::SaveChannel(c) if c.channel_id == id("ig1")));
    assert_eq!(p.changes[2], Change::ConfigChanged);

    let loaded = |stages: &[&str]| {
        Event::PipelinesLoaded(PipelinesLoaded {
            envelope: env("ev-a7"),
            pipelines: vec![Pipeline {
                pipeline_id: id(PIPELINE),
                name: "Sales".into(),
                stages: stages
                    .iter()
                    .map(|s| Stage {
                        stage_id: id(s),
                        name: s.to_uppercase(),
                    })
                    .collect(),
            }],
        })
    };
    let p = plan(decide_account(&loaded(&["a", "b"]), &Reads::default()));
    let stored: Vec<Pipeline> = written(&p, &Item::Pipelines).unwrap();
    assert_eq!(stored[0].stages.len(), 2);
    assert_eq!(
        rejection(decide_account(&loaded(&["a", "a"]), &Reads::default())).code(),
        "invalid"
    );
}

#[test]
fn chat_events_read_from_a_snapshot_not_from_reads() {
    for event in [
        Event::MessageInbound(inbound("ev-1")),
        Event::MessageOutbound(outbound("ev-1", "m1")),
        Event::SuitcaseRequested(suitcase("m1")),
    ] {
        assert_eq!(super::super::reads(&event), None);
        assert!(super::super::chat_query(&event).is_some());
    }
    let q = super::super::chat_query(&Event::SuitcaseRequested(suitcase("m1"))).unwrap();
    assert!(q.with_deals && q.channel_id.is_none() && q.user_id == Some(id("m1")));
}
