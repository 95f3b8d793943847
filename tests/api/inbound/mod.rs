//! The inbound flow (`message.inbound`) end to end: real workers, real
//! RabbitMQ and Redis.
//!
//! - [`new_clients`]: round robin and first reply, many at once, no eligible
//!   manager, no settings;
//! - [`once`]: a republished event, and one whose worker died after applying it;
//! - [`known`]: known contacts, a responsible who lost access, ids that need escaping.

mod known;
mod new_clients;
mod once;
