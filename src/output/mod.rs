//! Everything the worker publishes: the messages of the contract, the compact
//! [`Output`]s a decision makes of them (kept by the store for redeliveries),
//! and the [`Message`]s they expand into, each with its [`Destination`].

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use uuid::Uuid;

mod wire;

pub use wire::*;

use crate::ids::Id;

/// Where a message goes, in the domain's terms; the publisher turns it into an
/// exchange and a routing key (see [`crate::names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The user's notification queue, through `P.notify`.
    User(Id),
    /// The CRM, through `P.crm`: the event's type.
    Crm(&'static str),
    /// The messenger gateway of one channel, through `P.outbound`.
    Gateway(Id),
    /// The requester's own queue (a suitcase reply).
    ReplyTo(String),
}

impl Destination {
    /// A label for the metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Destination::User(_) => "notify",
            Destination::Crm(_) => "crm",
            Destination::Gateway(_) => "outbound",
            Destination::ReplyTo(_) => "reply",
        }
    }
}

/// One message to publish, expanded from an [`Output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: Destination,
    /// The JSON body, exactly as the contract has it.
    pub body: String,
    pub correlation_id: Option<String>,
}

/// One user told by a group of notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(rename = "u")]
    pub user: Id,
    #[serde(rename = "k")]
    pub kind: NotificationType,
    /// The notification's id: the same for the same cause (event, user, type).
    #[serde(rename = "i")]
    pub id: Id,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

impl Recipient {
    /// Nobody: a group's template is made for him, so a template is the same
    /// whoever the group goes to first (the stored plans of a round-robin
    /// turn share it between its variants). Never published: every
    /// notification takes these fields from its own recipient.
    pub fn nobody() -> Recipient {
        let nobody = Id::parse("-").expect("a valid id");
        Recipient {
            user: nobody.clone(),
            kind: NotificationType::ChatMessage,
            id: nobody,
            reason: None,
        }
    }
}

/// Everything a decision publishes, in a compact form: a fan-out keeps its
/// text once. Stored as is with the applied event, so a redelivery publishes
/// exactly the same bytes; [`Output::messages`] expands it for the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Notifications of one template to each recipient, in order. The
    /// template is the notification without a recipient ([`Recipient::nobody`]):
    /// each recipient's notification differs only in what its [`Recipient`] says.
    #[serde(rename = "n")]
    Notify {
        #[serde(rename = "t")]
        template: Notification,
        #[serde(rename = "to")]
        to: Vec<Recipient>,
    },
    #[serde(rename = "c")]
    Crm(CrmEvent),
    /// An approved reply, to the gateway of its channel.
    #[serde(rename = "s")]
    Send(MessageSend),
    /// The answer to a suitcase request, on its `reply_to`.
    #[serde(rename = "r")]
    Reply {
        #[serde(rename = "q")]
        reply_to: String,
        #[serde(rename = "c")]
        correlation_id: String,
        #[serde(rename = "b")]
        reply: SuitcaseReply,
    },
}

impl Output {
    /// The messages this output stands for, with their bodies.
    pub fn messages(&self) -> Vec<Message> {
        let one = |to, body| {
            vec![Message {
                to,
                body,
                correlation_id: None,
            }]
        };
        match self {
            Output::Notify { template, to } => {
                match (to.len() > 1).then(|| Addressed::of(template)).flatten() {
                    // The template's JSON once, each recipient's fields spliced in.
                    Some(shared) => to
                        .iter()
                        .map(|r| Message {
                            to: Destination::User(r.user.clone()),
                            body: shared.body(r),
                            correlation_id: None,
                        })
                        .collect(),
                    None => {
                        // One copy of the template, readdressed to each recipient in turn.
                        let mut each = template.clone();
                        to.iter()
                            .map(|r| {
                                each.address(r);
                                Message {
                                    to: Destination::User(r.user.clone()),
                                    body: json(&each),
                                    correlation_id: None,
                                }
                            })
                            .collect()
                    }
                }
            }
            Output::Crm(event) => one(Destination::Crm(event.type_name()), json(event)),
            Output::Send(send) => one(Destination::Gateway(send.channel_id.clone()), json(send)),
            Output::Reply {
                reply_to,
                correlation_id,
                reply,
            } => vec![Message {
                to: Destination::ReplyTo(reply_to.clone()),
                body: json(reply),
                correlation_id: Some(correlation_id.clone()),
            }],
        }
    }
}

impl Notification {
    /// Makes this notification the one `to` gets.
    pub fn address(&mut self, to: &Recipient) {
        self.notification_id.clone_from(&to.id);
        self.kind = to.kind;
        self.user_id.clone_from(&to.user);
        self.reason = to.reason;
    }
}

/// A notification's JSON without the fields its [`Recipient`] sets, cut from
/// serde's JSON of the template, so a group of notifications escapes its text
/// once: `{"notificationId":ID,"type":KIND` + `head` + `USER` + `middle` +
/// (`,"reason":REASON`) + `tail`, in the order of [`Notification`]'s fields.
struct Addressed {
    /// `,"accountId":..,"userId":`.
    head: String,
    /// From `,"channelId"` up to the reason.
    middle: String,
    /// `,"occurredAt":..}`.
    tail: String,
}

impl Addressed {
    /// The shared parts of `template`'s JSON, or `None` when its JSON is not
    /// laid out as expected (then each notification is serialized whole).
    fn of(template: &Notification) -> Option<Addressed> {
        let whole = json(template);
        let mut start = String::new();
        start_of(&mut start, &template.notification_id, template.kind);
        let mut head = String::from(",\"accountId\":");
        push_json_str(&mut head, template.account_id.as_str());
        head.push_str(",\"userId\":");
        let mut user = String::new();
        push_json_str(&mut user, template.user_id.as_str());
        let mut end = String::new();
        push_reason(&mut end, template.reason);
        let mut tail = String::from(",\"occurredAt\":");
        push_json_str(&mut tail, template.occurred_at.as_str());
        tail.push('}');
        end.push_str(&tail);
        let from = start.len() + head.len() + user.len();
        let rest = whole.get(start.len()..)?;
        if !whole.starts_with(&start)
            || !rest.starts_with(&head)
            || !rest[head.len()..].starts_with(&user)
            || !whole.ends_with(&end)
            || whole.len() < from + end.len()
        {
            return None;
        }
        let middle = whole[from..whole.len() - end.len()].to_owned();
        Some(Addressed { head, middle, tail })
    }

    /// The JSON of the template addressed to `to`: serde's bytes of
    /// [`Notification::address`]ed.
    fn body(&self, to: &Recipient) -> String {
        let mut body =
            String::with_capacity(self.head.len() + self.middle.len() + self.tail.len() + 160);
        start_of(&mut body, &to.id, to.kind);
        body.push_str(&self.head);
        push_json_str(&mut body, to.user.as_str());
        body.push_str(&self.middle);
        push_reason(&mut body, to.reason);
        body.push_str(&self.tail);
        body
    }
}

/// `{"notificationId":ID,"type":KIND`.
fn start_of(out: &mut String, id: &Id, kind: NotificationType) {
    out.push_str("{\"notificationId\":");
    push_json_str(out, id.as_str());
    out.push_str(",\"type\":\"");
    out.push_str(kind.as_str());
    out.push('"');
}

/// `,"reason":REASON`, or nothing.
fn push_reason(out: &mut String, reason: Option<RejectReason>) {
    if let Some(reason) = reason {
        out.push_str(",\"reason\":");
        out.push_str(&json(&reason));
    }
}

/// Appends `raw` as a JSON string, as serde_json writes it.
fn push_json_str(out: &mut String, raw: &str) {
    if raw.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&json(raw));
    } else {
        out.push('"');
        out.push_str(raw);
        out.push('"');
    }
}

/// The outputs of one decision, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outputs(pub Vec<Output>);

impl Outputs {
    pub fn push(&mut self, output: Output) {
        self.0.push(output);
    }

    /// Tells `to` of a chat: joins the group of notifications whose template
    /// `same` accepts, or starts one with the template `make` builds for
    /// [`Recipient::nobody`].
    pub fn notify(
        &mut self,
        same: impl Fn(&Notification) -> bool,
        make: impl FnOnce(&Recipient) -> Notification,
        to: Recipient,
    ) {
        let group = self.0.iter_mut().find_map(|o| match o {
            Output::Notify { template, to } if same(template) => Some(to),
            _ => None,
        });
        match group {
            Some(group) => group.push(to),
            None => self.0.push(Output::Notify {
                template: make(&Recipient::nobody()),
                to: vec![to],
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Output> {
        self.0.iter()
    }

    /// Every message, expanded.
    pub fn messages(&self) -> Vec<Message> {
        self.0.iter().flat_map(Output::messages).collect()
    }
}

/// JSON of a value the worker itself made; serializing plain data cannot fail.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// Namespace of every id Switchboard derives.
const NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_8f0e_4a7d_4e2b_9c3f_6d1e_2a8b_7c40);

/// A deterministic id from its parts: the same cause gives the same id on every
/// retry and redelivery, which is what lets consumers drop repeats.
pub fn derive_id(parts: &[&str]) -> Id {
    let mut name = Vec::with_capacity(parts.iter().map(|p| 4 + p.len()).sum());
    push_parts(&mut name, parts);
    RECENT.with_borrow_mut(|recent| {
        if let Some(at) = recent.iter().position(|(n, _)| *n == name) {
            // Used again: moved to the front, so the ids every variant derives
            // outlive the notification ids of one manager each.
            let kept = recent.remove(at).expect("a kept id");
            let id = kept.1.clone();
            recent.push_front(kept);
            return id;
        }
        let mut sha1 = Sha1::new();
        sha1.update(NAMESPACE.as_bytes());
        sha1.update(&name);
        let id = v5_id(sha1);
        if recent.len() == RECENT_IDS {
            recent.pop_back();
        }
        recent.push_front((name, id.clone()));
        id
    })
}

/// [`derive_id`] of `prefix` followed by each of `each` in turn (the same
/// ids), for many at once: the SHA-1 of the names' common start is computed
/// once, so an id whose name adds a block or less to it costs one block of
/// SHA-1, not two. Not kept in [`RECENT`]: each is derived once.
pub fn derive_ids<const N: usize>(prefix: &[&str], each: &[[&str; N]]) -> Vec<Id> {
    let mut name = Vec::with_capacity(prefix.iter().map(|p| 4 + p.len()).sum());
    push_parts(&mut name, prefix);
    let mut start = Sha1::new();
    start.update(NAMESPACE.as_bytes());
    start.update(&name);
    let mut rest = Vec::new();
    each.iter()
        .map(|parts| {
            rest.clear();
            push_parts(&mut rest, parts);
            let mut sha1 = start.clone();
            sha1.update(&rest);
            v5_id(sha1)
        })
        .collect()
}

/// The UUIDv5 id of what `sha1` has taken in (the namespace, then the name).
/// SHA-1 by the `sha1` crate, which uses the CPU's SHA instructions where it
/// has them: an 80-byte name took 105 ns against 200-245 with `sha1_smol`
/// (uuid's), on this project's test machine. `Uuid::new_v5` gives the same
/// ids (a unit test checks).
fn v5_id(sha1: Sha1) -> Id {
    let digest = sha1.finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_id(uuid::Builder::from_sha1_bytes(bytes).into_uuid())
}

/// The parts of a derived id's name, each after its length.
fn push_parts(name: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        name.extend_from_slice(&(part.len() as u32).to_be_bytes());
        name.extend_from_slice(part.as_bytes());
    }
}

/// A UUID as an id, in its lowercase hyphenated form.
fn uuid_id(uuid: Uuid) -> Id {
    let mut buffer = Uuid::encode_buffer();
    Id::parse(uuid.hyphenated().encode_lower(&mut buffer).to_owned()).expect("a uuid is a valid id")
}

/// How many of the last derived ids [`RECENT`] keeps.
const RECENT_IDS: usize = 8;

thread_local! {
    /// The last ids derived on this thread, by name, last used first. A
    /// round-robin turn builds one variant of its plan per eligible manager,
    /// and every variant derives the same contact, deal, CRM event and quality
    /// control notification ids: each is hashed (SHA-1) once, not once per
    /// manager. An id depends on its name alone, so a kept one is exact.
    static RECENT: std::cell::RefCell<std::collections::VecDeque<(Vec<u8>, Id)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_derived_at_once_are_the_ids_derived_one_by_one() {
        let long = "x".repeat(200);
        for prefix in [
            vec![
                "notification",
                "acc",
                "2f1d7a4e-0000-4000-8000-000000000001",
            ],
            vec![],
            vec![long.as_str()],
            vec!["é", ""],
        ] {
            let each = [["m1", "chat.new"], ["", ""], [long.as_str(), "chat.new"]];
            let at_once = derive_ids(&prefix, &each);
            for (parts, id) in each.iter().zip(&at_once) {
                let mut all = prefix.clone();
                all.extend(parts);
                assert_eq!(*id, derive_id(&all), "{all:?}");
            }
        }
        assert_eq!(
            derive_id(&["a"]).as_str(),
            Uuid::new_v5(&NAMESPACE, b"\0\0\0\x01a").to_string()
        );
        // The same as uuid's own v5, for names of every length around SHA-1's
        // 64-byte blocks.
        for len in 0..200 {
            let part = "x".repeat(len);
            let mut name = Vec::new();
            push_parts(&mut name, &[&part]);
            assert_eq!(
                derive_id(&[&part]).as_str(),
                Uuid::new_v5(&NAMESPACE, &name).to_string(),
                "{len}"
            );
        }
    }

    use crate::events::Timestamp;
    use crate::model::ChatType;

    fn id(raw: &str) -> Id {
        Id::parse(raw).unwrap()
    }

    fn template(text: Option<&str>, extra: bool, reason: Option<RejectReason>) -> Notification {
        let occurred_at: Timestamp =
            serde_json::from_str("\"2026-11-27T01:02:03.456+03:00\"").unwrap();
        let nobody = Recipient::nobody();
        Notification {
            notification_id: nobody.id,
            kind: nobody.kind,
            account_id: id("acme \"co\" \\ é"),
            user_id: nobody.user,
            channel_id: id("ch.1"),
            chat_type: ChatType::Vk,
            chat_id: id("chat\\\"9"),
            contact_id: extra.then(|| id("contact-1")),
            deal_id: extra.then(|| id("deal \"1\"")),
            message_id: extra.then(|| id("m-1")),
            text: text.map(str::to_owned),
            reason,
            occurred_at,
        }
    }

    /// Splicing each recipient into the template's JSON gives serde's bytes
    /// of the addressed notification, whatever the text and ids hold.
    #[test]
    fn spliced_notifications_are_serdes_bytes() {
        let texts = [
            None,
            Some(""),
            Some("plain"),
            Some(
                "quote \" backslash \\ slash / tab \t nl \n cr \r nul \u{0} bell \u{7} del \u{7f}",
            ),
            Some("Ünïcødé 日本 🙂 \u{2028} \u{2029} </script>"),
            Some("\"\"\"\\\\"),
        ];
        let recipients = vec![
            Recipient {
                user: id("u1"),
                kind: NotificationType::ChatMessage,
                id: id("n-1"),
                reason: None,
            },
            Recipient {
                user: id("user \"two\" \\ é"),
                kind: NotificationType::ChatNew,
                id: id("n\"2\\"),
                reason: None,
            },
            Recipient {
                user: id("u3"),
                kind: NotificationType::MessageRejected,
                id: id("n-3"),
                reason: Some(RejectReason::ClaimedByOther),
            },
            Recipient {
                user: id("u.4"),
                kind: NotificationType::ChatAssigned,
                id: id("n-4"),
                reason: Some(RejectReason::NoAccess),
            },
            Recipient {
                user: id("u5"),
                kind: NotificationType::ChatWithdrawn,
                id: id("n-5"),
                reason: None,
            },
        ];
        let mut checked = 0;
        for text in texts {
            for extra in [false, true] {
                for reason in [None, Some(RejectReason::ReadOnly)] {
                    let template = template(text, extra, reason);
                    assert!(Addressed::of(&template).is_some(), "{template:?}");
                    let output = Output::Notify {
                        template: template.clone(),
                        to: recipients.clone(),
                    };
                    let messages = output.messages();
                    assert_eq!(messages.len(), recipients.len());
                    for (message, r) in messages.iter().zip(&recipients) {
                        let mut each = template.clone();
                        each.address(r);
                        assert_eq!(message.body, serde_json::to_string(&each).unwrap());
                        assert_eq!(message.to, Destination::User(r.user.clone()));
                        assert_eq!(message.correlation_id, None);
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 6 * 2 * 2 * 5);
    }

    #[test]
    fn derived_ids_are_stable_and_unambiguous() {
        assert_eq!(derive_id(&["a", "b"]), derive_id(&["a", "b"]));
        assert_ne!(derive_id(&["ab", ""]), derive_id(&["a", "b"]));
    }

    #[test]
    fn a_kept_id_is_the_id_derived_again() {
        // More names than are kept, used again in another order.
        let names: Vec<String> = (0..3 * RECENT_IDS).map(|n| format!("n{n}")).collect();
        let first: Vec<Id> = names.iter().map(|n| derive_id(&["x", n])).collect();
        for _ in 0..3 {
            for (n, id) in names.iter().zip(&first).rev() {
                assert_eq!(derive_id(&["x", n]), *id);
                assert_eq!(derive_id(&["x", &names[0]]), first[0]);
            }
        }
        let distinct: std::collections::HashSet<&Id> = first.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }
}
