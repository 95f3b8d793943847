//! The one harness of the integration tests: real workers (the same `run` as
//! the binary) against the real RabbitMQ and Redis, each test on its own
//! random prefix ([`Prefix`]), removed when the test ends, also when it
//! panics. Every request to the broker or Redis is under a timeout
//! ([`timed`]), so a stalled service fails a test instead of hanging the run.
//!
//! - [`app`]: [`TestApp`], its workers, publishing, waiting for Redis;
//! - [`messages`]: taking messages from queues ([`Got`]);
//! - [`setup`]: builders of an account's set-up and of the events tests publish;
//! - [`checks`]: what several tests assert the same way;
//! - [`suitcase`]: asking for a suitcase on a reply queue of the test's own;
//! - [`ops`]: the operator commands' target and queue depths;
//! - [`process`]: the `switchboard` binary as a child process, killed on drop;
//! - [`prefix`], [`proxy`], [`redis_server`]: prefixes, cut connections, a Redis of a test's own.

mod app;
mod broker;
mod checks;
mod messages;
pub mod ops;
mod prefix;
pub mod process;
pub mod proxy;
pub mod redis_server;
mod setup;
mod suitcase;

use std::time::Duration;

pub use app::TestApp;
pub use checks::{by_type, count, ids, kinds, texts_by_chat};
pub use messages::Got;
pub use prefix::Prefix;
pub use setup::*;
pub use suitcase::{ask, ask_until, reply_queue};

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS: &str = "redis://127.0.0.1:6379/0";
pub const TS: &str = "2026-11-25T10:00:00Z";

/// How long to keep listening after the expected messages arrived, to catch extras.
pub const SETTLE: Duration = Duration::from_millis(700);

/// How long one request to the broker or Redis may take.
pub const REQUEST: Duration = Duration::from_secs(20);

/// A connection to the tests' Redis ([`REDIS`]).
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(REDIS).unwrap();
    timed(
        "connecting to Redis",
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap()
}

/// `fut`, one request to the broker or Redis (`what` names it): the test
/// fails, saying so, when no answer comes within [`REQUEST`].
pub async fn timed<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(REQUEST, fut).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no answer within {REQUEST:?} (a stalled broker or Redis?)"),
    }
}

/// A whole scenario under a deadline: the test fails when it takes longer.
pub async fn within<F: Future>(limit: Duration, scenario: F) -> F::Output {
    match tokio::time::timeout(limit, scenario).await {
        Ok(output) => output,
        Err(_) => panic!("the scenario did not finish within {limit:?}"),
    }
}
