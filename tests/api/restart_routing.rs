//! The inbound routing across a broker restart. RabbitMQ 3.10 rebuilds a
//! durable consistent-hash exchange's ring at boot from its bindings sorted
//! by queue name, not in the order they were made, so accounts would move to
//! other partitions while their earlier events still wait in the old ones
//! (the chaos run saw it). `P.inbound` and `P.inbound.hash` are therefore
//! transient: a restart takes them away and a worker declares them again,
//! binding the partitions in order. The restart itself is the chaos run's
//! (`chaos.rs`, a private node); the shared broker is not restarted here.

use lapin::options::ExchangeDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ExchangeKind};
use switchboard::names::Names;

use crate::helpers::*;

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
    app.start_worker(config).await;
    for exchange in [names.inbound_hash(), names.inbound()] {
        assert_eq!(
            declare_durable(&app.conn, names, &exchange).await,
            Ok(()),
            "{exchange}"
        );
    }
    app.cleanup().await;
}
