//! One chaos run from start to verdict: services up, workers up, the run's
//! CRM and gateway queues bound, the stream published while the faults
//! happen, then every queue read and checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use switchboard::ids::Id;
use switchboard::names::Names;

use crate::collect::{Source, bind_queue, collect};
use crate::fleet::Fleet;
use crate::model::{MANAGERS, QC};
use crate::publish::{Publisher, connect, within};
use crate::services::Lab;
use crate::{Args, check, faults, plan, report};

/// Runs the whole scenario; `Ok(false)` when a check failed.
pub async fn run(lab: &mut Lab, args: &Args) -> Result<bool> {
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs(args.deadline);
    let plan = plan::make(args.seed, args.events, args.chats);
    let prefix = format!("chaos-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    println!(
        "switchboard-chaos: {} events over {} chats, {} workers, prefix {prefix}, seed {}, scratch {}",
        plan.events.len(),
        plan.chats,
        args.workers,
        args.seed,
        lab.dir.display()
    );
    // Every event's id, routing key and body, one a line, beside the worker
    // logs (kept when the run fails): their `eventId`s lead back to chats.
    let lines: Vec<String> = plan
        .events
        .iter()
        .map(|e| format!("{}\t{}", e.key, String::from_utf8_lossy(&e.body)))
        .collect();
    std::fs::write(lab.dir.join("logs/plan.tsv"), lines.join("\n") + "\n")?;
    lab.start_redis().await?;
    println!("  Redis (AOF) on 127.0.0.1:{}", lab.redis_port);
    lab.start_rabbit().await?;
    println!(
        "  RabbitMQ node {} on 127.0.0.1:{}",
        lab.node, lab.amqp_port
    );
    let (amqp, redis) = (lab.amqp_url(), lab.redis_url());
    lab.fleet.configure(args.workers, &prefix, &amqp, &redis);
    lab.fleet.fill()?;

    let names = Names::new(&prefix);
    let crm_queue = format!("{prefix}.chaos.crm");
    let outbound_queue = format!("{prefix}.chaos.outbound");
    {
        let conn = connect(&amqp, "switchboard-chaos setup").await?;
        wait_queue(&conn, &names.dead(), &mut lab.fleet).await?;
        let channel = within("opening a channel", conn.create_channel()).await?;
        bind_queue(&channel, &crm_queue, &names.crm()).await?;
        bind_queue(&channel, &outbound_queue, &names.outbound()).await?;
        let _ = within("closing", conn.close(200, "set".into())).await;
    }
    println!(
        "  {} workers running; publishing at {}/s with faults:",
        args.workers, args.rate
    );

    let progress = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut publisher = Publisher::new(amqp.clone(), names.inbound());
    let publish = async {
        let r = publisher
            .publish_all(&plan.events, args.rate, progress.clone(), deadline)
            .await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let kill_every = Duration::from_secs(args.kill_every);
    let inflict = faults::inflict(
        lab,
        progress.clone(),
        plan.events.len(),
        kill_every,
        done.clone(),
    );
    let ((), faults) = tokio::try_join!(publish, inflict)?;
    println!(
        "  stream published and faults over at {:.0} s; reading every queue",
        begin.elapsed().as_secs_f64()
    );

    let conn = connect(&amqp, "switchboard-chaos reader").await?;
    let mut queues = Vec::new();
    for (account, _) in &plan.accounts {
        let id = Id::parse(account.as_str())?;
        for user in MANAGERS.iter().chain([&QC]) {
            let queue = names.user_queue(&id, &Id::parse(*user)?);
            queues.push((
                queue,
                Source::User {
                    account: account.clone(),
                    user: (*user).to_owned(),
                },
            ));
        }
    }
    queues.push((crm_queue, Source::Crm));
    queues.push((outbound_queue, Source::Outbound));
    queues.push((names.dead(), Source::Dead));
    let model = &plan.model;
    let want = (model.notifications(), model.crm_events(), model.bad.len());
    let received = collect(
        &conn,
        &queues,
        want,
        Duration::from_secs(args.stall),
        deadline,
    )
    .await?;
    let _ = within("closing", conn.close(200, "read".into())).await;
    lab.fleet.reap();

    let figures = check::check(model, &received);
    Ok(report::print(&report::Run {
        plan: &plan,
        faults: &faults,
        figures: &figures,
        workers: args.workers,
        worker_starts: lab.fleet.started,
        exited_alone: &lab.fleet.exited_alone,
        republished_batches: publisher.republished_batches,
        stalled: received.stalled,
        seconds: begin.elapsed().as_secs_f64(),
    }))
}

/// Waits until a worker declared `queue` (a failed passive declare closes its channel).
async fn wait_queue(conn: &lapin::Connection, queue: &str, fleet: &mut Fleet) -> Result<()> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        fleet.reap();
        if let Some(exit) = fleet.exited_alone.first() {
            bail!("{exit} (see its log)");
        }
        let probe = within("opening a channel", conn.create_channel()).await?;
        let found = within(
            "a passive declare",
            probe.queue_declare(queue.into(), passive, FieldTable::default()),
        )
        .await
        .is_ok();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), probe.close(200, "probe".into())).await;
        if found {
            return Ok(());
        }
        if Instant::now() > limit {
            bail!("the workers never declared {queue} (see their logs)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
