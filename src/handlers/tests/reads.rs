//! Builders of the reads an account event decides on.

use super::*;

/// Reads as the store would give them: each read with its raw value (or absent).
pub(super) struct ReadsBuilder(pub(super) Reads);

impl ReadsBuilder {
    pub(super) fn new() -> Self {
        ReadsBuilder(Reads {
            config: Version::stored(Some("3".into())),
            ..Reads::default()
        })
    }

    pub(super) fn with(mut self, item: Item, value: ItemValue) -> Self {
        let stored = Stored {
            version: version_of(&value),
            value: Some(value),
        };
        self.0.items.insert(item, stored);
        self
    }

    pub(super) fn absent(mut self, item: Item) -> Self {
        self.0.items.insert(item, Stored::default());
        self
    }

    pub(super) fn channel(self, channel: &str) -> Self {
        let c = Channel {
            channel_id: id(channel),
            chat_type: ChatType::Whatsapp,
            name: channel.into(),
        };
        self.with(Item::Channel(id(channel)), ItemValue::Channel(c))
    }

    pub(super) fn user(self, user: &str, access: &[(&str, Role, bool)]) -> Self {
        let u = User {
            user_id: id(user),
            name: user.into(),
            access: access_list(access),
            removed: false,
        };
        self.with(Item::User(id(user)), ItemValue::User(u))
    }

    pub(super) fn build(self) -> Reads {
        self.0
    }
}

/// Access lists from `(channel, role, receives new clients)`.
fn access_list(list: &[(&str, Role, bool)]) -> Vec<Access> {
    list.iter()
        .map(|(c, role, rnc)| Access {
            channel_id: id(c),
            role: *role,
            receives_new_clients: *rnc,
        })
        .collect()
}

pub(super) fn seat(role: Role, receives_new_clients: bool) -> Seat {
    Seat {
        role,
        receives_new_clients,
    }
}

pub(super) fn users_upserted(users: Vec<UserUpsert>) -> Event {
    Event::UsersUpserted(UsersUpserted {
        envelope: env("ev-a1"),
        users,
    })
}

pub(super) fn upsert(user: &str, access: &[(&str, Role, bool)]) -> UserUpsert {
    UserUpsert {
        user_id: id(user),
        name: user.to_uppercase(),
        access: access_list(access),
    }
}
