//! The inbound routing across a broker restart. RabbitMQ 3.10 rebuilds a
//! durable consistent-hash exchange's ring at boot from its bindings sorted
//! by queue name, not in the order they were made, so accounts would move to
//! other partitions while their earlier events still wait in the old ones
//! (the chaos run saw it). `P.inbound` and `P.inbound.hash` are therefore
//! transient: a restart takes them away and a worker declares them again,
//! binding the partitions in order. The restart itself is the chaos run's
//! (`chaos.rs`, a private node); the shared broker is not restarted here.

use std::process::Stdio;
use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ExchangeKind};
use switchboard::names::Names;

use crate::helpers::process::{Process, switchboard};
use crate::helpers::*;

/// What `switchboard run` on `prefix` logs up to "Worker started." (within 30 s);
/// the worker is killed then.
fn start_up_log(prefix: &str, partitions: u16) -> Vec<String> {
    let mut worker = Process::spawn(
        switchboard()
            .args(["run", "--prefix", prefix, "--partitions"])
            .arg(partitions.to_string())
            .env("RUST_LOG", "warn,switchboard=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let (lines_rx, _reader) = worker.stdout_lines();
    let mut lines = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(30)) {
        let started = line.contains("Worker started.");
        lines.push(line);
        if started {
            worker.kill();
            return lines;
        }
    }
    panic!(
        "the worker did not start within 30 s:\n{}",
        lines.join("\n")
    );
}

const DURABLE_RING_WARNING: &str = "The inbound ring is durable";

/// What declaring `exchange` as durable answers: `Ok` or the AMQP reply code.
async fn declare_durable(conn: &Connection, names: &Names, exchange: &str) -> Result<(), u16> {
    let channel = timed("channel.open", conn.create_channel()).await.unwrap();
    let (kind, options, args) = if exchange == names.inbound_hash() {
        let options = ExchangeDeclareOptions {
            durable: true,
            internal: true,
            ..Default::default()
        };
        (
            ExchangeKind::Custom("x-consistent-hash".into()),
            options,
            FieldTable::default(),
        )
    } else {
        let mut args = FieldTable::default();
        args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(names.inbound_hash().into()),
        );
        let options = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        (ExchangeKind::Fanout, options, args)
    };
    let declared = timed(
        "exchange.declare",
        channel.exchange_declare(exchange.into(), kind, options, args),
    )
    .await;
    match declared {
        Ok(()) => {
            let _ = timed("channel.close", channel.close(200, "declared".into())).await;
            Ok(())
        }
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(p) => Err(p.get_id()),
            other => panic!("exchange.declare of {exchange} failed: {other:?}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_routing_does_not_outlive_a_broker_restart() {
    let app = TestApp::spawn_with(1, |c| c.partitions = 4).await;
    for exchange in [app.names.inbound_hash(), app.names.inbound()] {
        // 406 PRECONDITION_FAILED: it exists, and not as a durable exchange.
        assert_eq!(
            declare_durable(&app.conn, &app.names, &exchange).await,
            Err(406),
            "{exchange} is durable: a broker restart would keep it with a ring in another order"
        );
    }
    // A worker starting on them says nothing of a durable ring.
    let log = start_up_log(&app.prefix, 4).join("\n");
    assert!(!log.contains(DURABLE_RING_WARNING), "{log}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_deployments_durable_inbound_exchanges_are_kept() {
    let app = TestApp::spawn_with(0, |c| c.partitions = 2).await;
    let (names, config) = (&app.names, app.config());
    // The layout of earlier versions: both exchanges durable, the ring bound in order.
    declare_durable(&app.conn, names, &names.inbound_hash())
        .await
        .unwrap();
    for n in 0..config.partitions {
        timed(
            "queue.declare",
            switchboard::amqp::declare_partition(&app.channel, names, n),
        )
        .await
        .unwrap();
        timed(
            "queue.bind",
            switchboard::amqp::bind_partition(&app.channel, names, &names.inbound_hash(), n),
        )
        .await
        .unwrap();
    }
    declare_durable(&app.conn, names, &names.inbound())
        .await
        .unwrap();
    // The worker starts on them (it would fail declaring them transient) and leaves them be.
    let partitions = config.partitions;
    app.start_worker(config).await;
    for exchange in [names.inbound_hash(), names.inbound()] {
        assert_eq!(
            declare_durable(&app.conn, names, &exchange).await,
            Ok(()),
            "{exchange}"
        );
    }
    // A worker starting on them warns, naming the way out.
    let log = start_up_log(&app.prefix, partitions).join("\n");
    assert!(
        log.contains(DURABLE_RING_WARNING) && log.contains("delete P.inbound and P.inbound.hash"),
        "no warning of the durable ring:\n{log}"
    );
    app.cleanup().await;
}
