//! Every metric series a worker records, with Prometheus names and units.
//! Labels are low-cardinality only: event types, outcomes, reasons, kinds;
//! never account, user or chat ids.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

pub const EVENTS: &str = "switchboard_events_total";
pub const EVENT_SECONDS: &str = "switchboard_event_duration_seconds";
pub const PUBLISHED: &str = "switchboard_published_total";
pub const DEAD_LETTERS: &str = "switchboard_dead_letters_total";
pub const RETRIES: &str = "switchboard_retries_total";
pub const CLAIMS: &str = "switchboard_claims_total";
pub const ROUND_ROBIN: &str = "switchboard_round_robin_assignments_total";
pub const RECONNECTS: &str = "switchboard_reconnects_total";
pub const RUNNING: &str = "switchboard_events_running";
pub const WAITING: &str = "switchboard_events_waiting";
pub const PARTITIONS_LED: &str = "switchboard_partitions_led";
pub const DROPPED_REPLIES: &str = "switchboard_replies_dropped_total";
pub const REDIS_ROUND_TRIPS: &str = "switchboard_redis_round_trips_total";
pub const UNDELIVERED: &str = "switchboard_undelivered_total";
pub const REFUSING: &str = "switchboard_refusing_destinations";

pub(super) fn describe() {
    describe_counter!(
        EVENTS,
        "Events handled (acked), by type and outcome (done, replayed, dead_lettered)."
    );
    describe_histogram!(
        EVENT_SECONDS,
        Unit::Seconds,
        "Time from a delivery's start to its ack, by type."
    );
    describe_counter!(
        PUBLISHED,
        "Messages published and confirmed, by target (notify, crm, outbound, reply)."
    );
    describe_counter!(DEAD_LETTERS, "Inputs dead-lettered, by reason code.");
    describe_counter!(
        RETRIES,
        "Events retried after a passing failure or a lost race, by kind."
    );
    describe_counter!(CLAIMS, "Claims of waiting chats, by result (won, lost).");
    describe_counter!(ROUND_ROBIN, "New clients handed out by round robin.");
    describe_counter!(
        RECONNECTS,
        "Sessions with RabbitMQ started again after a failure."
    );
    describe_gauge!(RUNNING, "Events being handled right now.");
    describe_gauge!(
        WAITING,
        "Events held behind an earlier event of their account or chat."
    );
    describe_gauge!(
        PARTITIONS_LED,
        "Inbound partitions this worker has received from since it subscribed."
    );
    describe_counter!(
        REDIS_ROUND_TRIPS,
        "Requests sent to Redis and answered or not, by operation (snapshot, read, channel, apply, replicate, heartbeat; connection: the pool's check of the connection it hands out)."
    );
    describe_counter!(
        UNDELIVERED,
        "Messages put on P.dead (undelivered) instead of their destination, which kept refusing messages, by target (notify, crm, outbound)."
    );
    describe_gauge!(
        REFUSING,
        "Destinations (exchange and routing key) whose messages go to P.dead now, since the broker refused every message to them for 10 s."
    );
    describe_counter!(
        DROPPED_REPLIES,
        "Suitcase replies the broker refused or could not route."
    );
}

pub fn event(kind: &'static str, outcome: &'static str, took: Duration) {
    counter!(EVENTS, "type" => kind, "outcome" => outcome).increment(1);
    histogram!(EVENT_SECONDS, "type" => kind).record(took.as_secs_f64());
}

pub fn published(target: &'static str, n: u64) {
    counter!(PUBLISHED, "target" => target).increment(n);
}

pub fn dead_letter(reason: &'static str) {
    counter!(DEAD_LETTERS, "reason" => reason).increment(1);
}

pub fn retry(kind: &'static str) {
    counter!(RETRIES, "kind" => kind).increment(1);
}

pub fn claims(won: u32, lost: u32) {
    if won > 0 {
        counter!(CLAIMS, "result" => "won").increment(u64::from(won));
    }
    if lost > 0 {
        counter!(CLAIMS, "result" => "lost").increment(u64::from(lost));
    }
}

pub fn round_robin(n: u32) {
    if n > 0 {
        counter!(ROUND_ROBIN).increment(u64::from(n));
    }
}

pub fn reconnect() {
    counter!(RECONNECTS).increment(1);
}

pub fn running(n: usize) {
    gauge!(RUNNING).set(n as f64);
}

pub fn waiting(n: usize) {
    gauge!(WAITING).set(n as f64);
}

pub fn partitions_led(n: usize) {
    gauge!(PARTITIONS_LED).set(n as f64);
}

pub fn undelivered(target: &'static str) {
    counter!(UNDELIVERED, "target" => target).increment(1);
}

pub fn refusing(destinations: usize) {
    gauge!(REFUSING).set(destinations as f64);
}

pub fn dropped_reply() {
    counter!(DROPPED_REPLIES).increment(1);
}

/// One request to Redis (a script, a pipeline, a command), counted as it is sent.
pub fn redis_round_trip(op: &'static str) {
    counter!(REDIS_ROUND_TRIPS, "op" => op).increment(1);
}
