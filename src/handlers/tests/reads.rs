//! Builders of the reads an account event decides on.

use super::*;

/// Reads as the store would give them: each read with its raw value (or absent).
pub(super) struct ReadsBuilder(pub(super) Reads);

impl ReadsBuilder {
    pub(super) fn new() -> Self {
        ReadsBuilder(Reads {
            config: Some("3".into()),
            ..Reads::default()
        })
    }

    pub(super) fn with<T: Serialize>(mut self, read: Read, value: &T) -> Self {
        self.0.values.insert(read, Some(json(value)));
        self
    }

    pub(super) fn absent(mut self, read: Read) -> Self {
        self.0.values.insert(read, None);
        self
    }

    pub(super) fn channel(self, channel: &str) -> Self {
        let c = Channel {
            channel_id: id(channel),
            chat_type: ChatType::Whatsapp,
            name: channel.into(),
        };
        self.with(Read::HGet(Key::Channels, id(channel)), &c)
    }

    pub(super) fn user(self, user: &str, access: &[(&str, Role, bool)]) -> Self {
        let u = User {
            user_id: id(user),
            name: user.into(),
            access: access
                .iter()
                .map(|(c, role, rnc)| Access {
                    channel_id: id(c),
                    role: *role,
                    receives_new_clients: *rnc,
                })
                .collect(),
            removed: false,
        };
        self.with(Read::HGet(Key::Users, id(user)), &u)
    }

    pub(super) fn build(self) -> Reads {
        self.0
    }
}

pub(super) fn seat_json(role: Role, receives_new_clients: bool) -> String {
    json(&Seat {
        role,
        receives_new_clients,
    })
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
        access: access
            .iter()
            .map(|(c, role, rnc)| Access {
                channel_id: id(c),
                role: *role,
                receives_new_clients: *rnc,
            })
            .collect(),
    }
}
