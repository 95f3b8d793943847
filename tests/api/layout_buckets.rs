//! Chats, contacts, deals and each contact's deals as fields of bucketed hashes, and
//! the lazy move from the older layout (one key each): data an older worker
//! wrote is read where it is, and moves into its bucket when it is written.

use serde_json::json;
use switchboard::handlers::ChatQuery;
use switchboard::ids::Id;
use switchboard::model::{ChatRef, ChatType};
use switchboard::store::{AccountKeys, Key, Loaded, bucket, bucket_of, chat_field};

use crate::helpers::{eid, event, inbound, redis_conn, timed};
use crate::races::{Raced, bodies, run_event};

/// Ids that need escaping in the older keys (braces, colon, `%`, non-ASCII).
const CONTACT: &str = "ct {1}:é.%2E";
const OLD_DEAL: &str = "d {2}:%é.";

async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> T {
    timed("a Redis command", cmd.query_async(conn))
        .await
        .unwrap()
}

/// The deal ids of the contact as the snapshot finds them.
async fn deals_of_chat(account: &Raced, chat: &str) -> Vec<String> {
    let q = ChatQuery {
        channel_id: None,
        chat: ChatRef {
            chat_type: ChatType::Whatsapp,
            chat_id: Id::parse(chat).unwrap(),
        },
        user_id: None,
        with_deals: true,
    };
    let (acc, event_id) = (Id::parse("acc").unwrap(), Id::parse(eid()).unwrap());
    let snapshot = timed(
        "Store::snapshot",
        account.store.snapshot(&acc, &event_id, &q),
    );
    let Loaded::Fresh(snapshot) = snapshot.await.unwrap() else {
        panic!("a fresh event")
    };
    let mut ids: Vec<String> = snapshot
        .deals
        .iter()
        .map(|d| d.deal_id.to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_of_the_older_layout_is_read_and_moves_when_written() {
    let account = Raced::new(2, "first_reply").await;
    let keys = AccountKeys::new(&account._prefix.name, &Id::parse("acc").unwrap());
    let contact = Id::parse(CONTACT).unwrap();
    let old_deal = Id::parse(OLD_DEAL).unwrap();
    let old_contact_key = keys.key(&Key::Contact(contact.clone()));
    let old_deal_key = keys.key(&Key::Deal(old_deal.clone()));
    let old_set = keys.key(&Key::ContactDeals(contact.clone()));
    let mut conn = redis_conn().await;
    // As an older worker wrote them: the model's JSON at a key each, a set of deal ids.
    let chat = ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: Id::parse("olga:{x}").unwrap(),
    };
    let old_chat_key = keys.key(&Key::Chat(chat.clone()));
    let mut old = redis::pipe();
    old.set(
        &old_contact_key,
        json!({ "contactId": CONTACT, "name": "Olga", "responsibleUserId": "m1",
                "contactData": [{ "chatType": "whatsapp", "chatId": "olga:{x}" }] })
        .to_string(),
    )
    .set(&old_chat_key, json!({ "contactId": CONTACT }).to_string())
    .set(
        &old_deal_key,
        json!({ "dealId": OLD_DEAL, "name": "Sofa", "contactIds": [CONTACT],
                "responsibleUserId": "m1", "pipelineId": "p", "stageId": "s1", "closed": false })
        .to_string(),
    )
    .sadd(&old_set, OLD_DEAL);
    let (): () = timed("writing the older layout", old.query_async(&mut conn))
        .await
        .unwrap();

    // Read where it is: the client's message reaches the old contact's responsible,
    // and the contact's deals are the old set's.
    let notes = bodies(
        &run_event(&account.store, &inbound("acc", "olga:{x}", "hi")).await,
        "notify",
    );
    let to_m1: Vec<_> = notes.iter().filter(|n| n["userId"] == "m1").collect();
    assert_eq!(to_m1.len(), 1, "{notes:?}");
    assert_eq!(to_m1[0]["type"], "chat.message");
    assert_eq!(deals_of_chat(&account, "olga:{x}").await, [OLD_DEAL]);

    // A new deal of the contact: its deals become a field, the old set is taken in and goes.
    let new_deal = event(
        "deal.upserted",
        "acc",
        json!({ "dealId": "d-new", "name": "Table", "contactIds": [CONTACT],
                "responsibleUserId": "m1", "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    run_event(&account.store, &new_deal).await;
    assert_eq!(
        deals_of_chat(&account, "olga:{x}").await,
        [OLD_DEAL, "d-new"]
    );
    let exists: i64 = query(&mut conn, redis::cmd("EXISTS").arg(&old_set)).await;
    assert_eq!(exists, 0, "the older set is gone");

    // The old deal changes (its guard finds the older value) and moves, closed now.
    let closed = event(
        "deal.upserted",
        "acc",
        json!({ "dealId": OLD_DEAL, "name": "Sofa", "contactIds": [CONTACT],
                "responsibleUserId": "m0", "pipelineId": "p", "stageId": "s2", "closed": true }),
    );
    run_event(&account.store, &closed).await;
    let exists: i64 = query(&mut conn, redis::cmd("EXISTS").arg(&old_deal_key)).await;
    assert_eq!(exists, 0, "the older deal key is gone");
    let moved: Option<String> = query(
        &mut conn,
        redis::cmd("HGET")
            .arg(keys.key(&Key::Deals(bucket(&old_deal))))
            .arg(OLD_DEAL),
    )
    .await;
    assert_eq!(
        moved.as_deref(),
        Some(r#"["Sofa",["ct {1}:é.%2E"],"m0","p","s2",true]"#)
    );

    // The contact changes hands: it moves, and the next message goes to the new responsible.
    let contact_event = event(
        "contact.upserted",
        "acc",
        json!({ "contactId": CONTACT, "name": "Olga", "responsibleUserId": "m0",
                "contactData": [{ "chatType": "whatsapp", "chatId": "olga:{x}" }] }),
    );
    run_event(&account.store, &contact_event).await;
    let exists: i64 = query(
        &mut conn,
        redis::cmd("EXISTS")
            .arg(&old_contact_key)
            .arg(&old_chat_key),
    )
    .await;
    assert_eq!(exists, 0, "the older contact and chat keys are gone");
    let field = chat_field(&chat);
    let moved: Option<String> = query(
        &mut conn,
        redis::cmd("HGET")
            .arg(keys.key(&Key::Chats(bucket_of(&field))))
            .arg(&field),
    )
    .await;
    let moved: serde_json::Value = serde_json::from_str(&moved.expect("the chat moved")).unwrap();
    assert_eq!(moved["contactId"], CONTACT);
    let notes = bodies(
        &run_event(&account.store, &inbound("acc", "olga:{x}", "again")).await,
        "notify",
    );
    let to_m0: Vec<_> = notes.iter().filter(|n| n["userId"] == "m0").collect();
    assert_eq!(to_m0.len(), 1, "{notes:?}");
    assert_eq!(to_m0[0]["type"], "chat.message");

    // The deal leaves the contact: only the new one stays.
    let unlinked = event(
        "deal.upserted",
        "acc",
        json!({ "dealId": OLD_DEAL, "name": "Sofa", "contactIds": [],
                "responsibleUserId": "m0", "pipelineId": "p", "stageId": "s2", "closed": true }),
    );
    run_event(&account.store, &unlinked).await;
    assert_eq!(deals_of_chat(&account, "olga:{x}").await, ["d-new"]);
}
