//! Switchboard routes messenger conversations to CRM users: it consumes client
//! messages and CRM events from RabbitMQ, keeps the account state in Redis and
//! publishes notifications, CRM events and approved replies.
//!
//! One event's way through the worker: bytes -> [`events::parse`] -> a
//! snapshot from the [`store`] -> a pure decision in [`handlers`] -> one atomic
//! apply -> confirmed publishes -> ack. [`worker::run`] is the whole worker.

pub mod amqp;
pub mod clip;
pub mod config;
pub mod diagnose;
pub mod events;
pub mod handlers;
pub mod ids;
pub mod model;
pub mod monitor;
pub mod names;
pub mod ops;
pub mod output;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web_url;
pub mod worker;

pub use config::{Config, RedisMode, UserQueueType};
pub use worker::run;
