//! The Switchboard phase: workers run on the bench prefix (child processes or
//! in-process), the accounts are set up by events, `--contacts` are loaded
//! straight into Redis, known contacts are added, a warm-up makes the chats,
//! then the measured events go through and every output is read from the
//! users', the gateway's and the CRM's queues, with Redis work counted.

use anyhow::{Result, anyhow, bail};
use redis::aio::MultiplexedConnection;
use switchboard::ids::Id;

use crate::account::{self, outgoing};
use crate::amqp;
use crate::args::{Args, Pace};
use crate::cleanup::Topology;
use crate::collect::Collector;
use crate::load::{MEASURED, Probes, WARMUP, measure, publish_events};
use crate::preload;
use crate::report::{self, PhaseResult};
use crate::session::Bench;
use crate::shape::Shape;

/// New-client events in the warm-up when the scenario has any.
const WARM_NEW: u64 = 300;

impl Bench {
    pub async fn switchboard(
        &mut self,
        args: &Args,
        shape: &Shape,
        rconn: &mut MultiplexedConnection,
    ) -> Result<PhaseResult> {
        let mut user_queues = Vec::new();
        for account in &shape.accounts {
            for user in shape.managers.iter().chain(&shape.qcs).chain(&shape.idle) {
                user_queues.push(self.names.user_queue(&account.id, &Id::parse(user)?));
            }
        }
        self.topologies.push(Topology {
            names: self.names.clone(),
            partitions: args.partitions,
            user_queues,
        });
        self.start_workers(args)?;
        // `P.dead` is the last thing a worker declares.
        self.wait_queue(&self.names.dead()).await?;

        let publisher = amqp::confirm_channel(self.conn()).await?;
        let inbound = self.names.inbound();
        for account in &shape.accounts {
            account::set_up(&publisher, &inbound, rconn, self.prefix(), account, shape).await?;
        }
        if args.contacts > 0 {
            let loaded = preload::contacts(rconn, self.prefix(), shape, args.contacts).await?;
            report::preloaded(&loaded);
        }

        let mut collector = Collector::new(self.base);
        let names = self.names.clone();
        let tasks = self.watch_all(&mut collector, &names, shape).await?;
        let uses_known = args.scenario.uses_known();
        if uses_known {
            account::add_contacts(&publisher, &inbound, rconn, self.prefix(), shape).await?;
        }

        // Warm-up: every known chat seen once (so the measured messages are of
        // settled chats), new clients as the scenario has them, scripts
        // loaded, pools and connections hot.
        let warm_known = if uses_known { args.chats as u64 } else { 0 };
        let warm = warm_known
            + if args.scenario.uses_new() {
                WARM_NEW
            } else {
                0
            };
        if warm > 0 {
            let pace = Pace {
                rate: 0,
                ..args.pace()
            };
            publish_events(&publisher, pace, self.base, warm, |seq, at| {
                let target = if seq < warm_known {
                    shape.known(seq as usize)
                } else {
                    shape.new_client("warm", seq - warm_known)
                };
                outgoing(&inbound, shape, &target, WARMUP, (seq, at))
            })
            .await?;
            let got = collector.collect(WARMUP, warm, args.stall()).await;
            if got.primaries < warm {
                bail!(
                    "warm-up: only {} of {warm} measured outputs arrived; see the workers' log",
                    got.primaries
                );
            }
        }

        let probes = Probes {
            rconn,
            workers: self.worker_pids(),
        };
        let mut result = measure(
            &publisher,
            &mut collector,
            args,
            self.base,
            probes,
            |seq, at| outgoing(&inbound, shape, &shape.event(seq), MEASURED, (seq, at)),
        )
        .await?;
        self.check_workers()?;
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
}
