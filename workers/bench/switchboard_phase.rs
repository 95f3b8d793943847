//! The Switchboard phase: workers run in-process on the bench prefix, the
//! account is set up by events, known contacts are added, a warm-up makes
//! the chats, then the measured `message.inbound` events go through and the
//! notifications are read from the users' queues, with Redis work counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow, bail};
use lapin::options::QueueBindOptions;
use lapin::types::FieldTable;
use redis::aio::MultiplexedConnection;
use switchboard::ids::Id;
use tokio_util::sync::CancellationToken;

use crate::account::{self, inbound_body};
use crate::amqp;
use crate::args::{Args, Pace, Scenario};
use crate::cleanup::Topology;
use crate::collect::{self, Collector};
use crate::limit::within;
use crate::load::{Outgoing, WARMUP, measure, publish_events};
use crate::redis_stats::{RedisDelta, commandstats};
use crate::report::PhaseResult;
use crate::session::Bench;
use crate::shape::Shape;

/// New clients in the warm-up when the scenario has any.
const WARM_NEW: u64 = 300;

impl Bench {
    pub async fn switchboard(
        &mut self,
        args: &Args,
        shape: &Shape,
        rconn: &mut MultiplexedConnection,
    ) -> Result<PhaseResult> {
        let mut user_queues = Vec::new();
        for (account, user, _) in shape.users() {
            user_queues.push(self.names.user_queue(&account.id, &Id::parse(user)?));
        }
        self.topologies.push(Topology {
            names: self.names.clone(),
            partitions: args.partitions,
            user_queues,
        });
        self.start_workers(args);
        // `P.dead` is the last thing a worker declares.
        self.wait_queue(&self.names.dead()).await?;

        let publisher = amqp::confirm_channel(self.conn()).await?;
        let inbound = self.names.inbound();
        for account in &shape.accounts {
            account::set_up(&publisher, &inbound, rconn, self.prefix(), account, shape).await?;
        }

        // The client side: every user's queue, and a CRM queue on P.crm.
        let mut collector = Collector::new(self.base);
        let mut tasks = self.watch_users(&mut collector, &self.names, shape).await?;
        let crm_queue = format!("{}.bench.crm", self.prefix());
        self.queues.push(crm_queue.clone());
        let crm = Arc::new(AtomicU64::new(0));
        {
            let channel = within("open a channel", self.conn().create_channel()).await?;
            amqp::declare_quorum(&channel, &crm_queue).await?;
            let bind = channel.queue_bind(
                crm_queue.as_str().into(),
                self.names.crm().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            );
            within("queue.bind", bind).await?;
            tasks.push(collect::count(self.conn(), &crm_queue, crm.clone()).await?);
        }

        let uses_known = args.scenario != Scenario::New;
        let uses_new = args.scenario != Scenario::Known;
        if uses_known {
            account::add_contacts(&publisher, &inbound, rconn, self.prefix(), shape).await?;
        }

        // Warm-up: every known chat seen once (so the measured messages are of
        // settled chats), scripts loaded, pools and JIT-free paths hot.
        let warm_known = if uses_known { args.chats as u64 } else { 0 };
        let warm = warm_known + if uses_new { WARM_NEW } else { 0 };
        if warm > 0 {
            let pace = Pace {
                rate: 0,
                ..args.pace()
            };
            publish_events(&publisher, pace, self.base, WARMUP, warm, |seq, mark| {
                let target = if seq < warm_known {
                    shape.known(seq as usize)
                } else {
                    shape.fresh("warm", seq)
                };
                Outgoing::event(&inbound, &target.account.key, inbound_body(&target, mark))
            })
            .await?;
            let got = collector.collect(WARMUP, warm, args.stall()).await;
            if got.primaries < warm {
                bail!(
                    "warm-up: only {} of {warm} notifications arrived; see the log above",
                    got.primaries
                );
            }
        }

        // The measured run.
        let before = commandstats(rconn).await?;
        let crm0 = crm.load(Ordering::Relaxed);
        let mut result = measure(&publisher, &mut collector, args, self.base, |seq, mark| {
            let target = shape.event(seq);
            Outgoing::event(&inbound, &target.account.key, inbound_body(&target, mark))
        })
        .await?;
        let after = commandstats(rconn).await?;
        result.redis = Some(RedisDelta::between(&before, &after));
        result.crm = crm.load(Ordering::Relaxed) - crm0;

        let dead = amqp::message_count(self.conn(), &self.names.dead())
            .await?
            .ok_or_else(|| anyhow!("the dead-letter queue is missing"))?;
        result.dead = u64::from(dead);
        for task in tasks {
            task.abort();
        }
        amqp::close(&publisher).await;
        Ok(result)
    }

    /// Starts `args.workers` workers in-process on the bench prefix; cleanup stops them.
    fn start_workers(&mut self, args: &Args) {
        let mut config = switchboard::Config::with_prefix(self.prefix());
        config.amqp_url = args.amqp_url.clone();
        config.redis_url = args.redis_url.clone();
        config.concurrency = args.concurrency;
        config.partitions = args.partitions;
        config.shutdown_grace_secs = 5;
        for _ in 0..args.workers {
            let token = CancellationToken::new();
            let config = config.clone();
            let handle = tokio::spawn({
                let token = token.clone();
                async move {
                    if let Err(e) = switchboard::run(config, token).await {
                        eprintln!("switchboard-bench: worker failed: {e}");
                    }
                }
            });
            self.workers.push((token, handle));
        }
    }
}
