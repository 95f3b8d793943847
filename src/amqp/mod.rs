//! RabbitMQ: the topology of the contract, confirmed publishing and the
//! dead-letter queue. Small and boring on purpose: every decision is made
//! elsewhere.

mod nodes;
mod publisher;
mod refusing;
mod topology;
mod user_queues;

pub use nodes::{BadUrl, Nodes, Unreachable};
pub use publisher::{PublishError, Publisher, Unconfirmed};
pub use topology::{
    Existing, bind_partition, declare, declare_partition, declare_ring, declare_with,
};
pub(crate) use user_queues::is_precondition_failed;
pub use user_queues::{DECLARE_CHANNELS, UserQueues};

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Queue arguments of a durable quorum queue.
pub(crate) fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args
}
