//! The integration tests: one binary (one build, one link), one module per
//! area, all on the one harness in [`helpers`]. Every test runs on its own
//! random prefix against the real RabbitMQ (127.0.0.1:5672) and Redis
//! (127.0.0.1:6379), and removes it when it ends, also when it fails.

mod helpers;

mod bulk;
mod chaos;
mod crash;
mod dead_letter;
mod dead_letter_exact;
mod demo;
mod faults;
mod foreign_queue;
mod inbound;
mod lanes;
mod layout_buckets;
mod logs;
mod monitor;
mod ops_dead;
mod ops_state;
mod order;
mod partitions;
mod publisher;
mod rabbit_cluster;
mod races;
mod redis_cluster;
mod redis_errors;
mod replies;
mod restart_routing;
mod round_trips;
mod shutdown;
mod startup;
mod stream;
mod suitcase;
mod suitcase_reply_to;
mod user_queues;
