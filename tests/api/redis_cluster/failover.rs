//! A master killed with SIGKILL while new clients flow.

use super::*;

/// Arrival times of messages on `queue`, taken by a task of its own until
/// `n` arrived or `limit` passed; `count` follows how many arrived so far.
fn arrivals(
    channel: lapin::Channel,
    queue: String,
    n: usize,
    limit: Duration,
    count: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let deadline = Instant::now() + limit;
        let mut times = Vec::new();
        while times.len() < n && Instant::now() < deadline {
            let got = tokio::time::timeout(
                Duration::from_secs(5),
                channel.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }),
            )
            .await;
            match got {
                Ok(Ok(Some(_))) => {
                    times.push(Instant::now());
                    count.store(times.len(), Ordering::Relaxed);
                }
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        times
    })
}

/// The process id of the redis-server on `port`.
async fn server_pid(port: u16) -> u32 {
    let info: String = node_query(port, redis::cmd("INFO").arg("server"))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("INFO server has process_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_under_load_loses_and_doubles_nothing() {
    let _alone = CLUSTER.write().await;
    let seeds = start_cluster().await;
    let mut app = spawn(2, &seeds).await;
    let crm = app.bind_crm().await;
    let timing = app.bind_crm().await;
    let managers = ["m1", "m2", "m3"];
    let users: Vec<_> = managers.iter().map(|m| (*m, "manager", true)).collect();
    setup_account(&app, "acc", &users, Some("round_robin")).await;
    let n = 300;
    let victim = owner(ACC_KEY).await.expect("a master serves acc");

    let result = bounded(Duration::from_secs(240), async {
        let channel = app.conn.create_channel().await.unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = arrivals(
            channel,
            timing.clone(),
            2 * n,
            Duration::from_secs(200),
            count.clone(),
        );
        let started = Instant::now();
        let publish = async {
            for i in 0..n {
                app.publish_event(&inbound("acc", &format!("client-{i:03}"), "hello"))
                    .await;
            }
            started.elapsed()
        };
        // Kill the master of the account's slot while new clients are being handled.
        let chaos = async {
            while count.load(Ordering::Relaxed) < 2 * 40 {
                assert!(started.elapsed() < Duration::from_secs(60), "nothing handled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let pid = server_pid(victim).await;
            let killed = Instant::now();
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -KILL {pid}");
            let promoted = loop {
                if let Some(port) = owner(ACC_KEY).await
                    && port != victim
                {
                    break (port, killed.elapsed());
                }
                assert!(killed.elapsed() < Duration::from_secs(30), "no failover");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            // A supervisor restarts the dead server: it rejoins as a replica of
            // the new master (until then that master has no replica to WAIT for).
            let rejoined = start_cluster().await;
            assert_eq!(rejoined, seeds);
            (killed, promoted, killed.elapsed())
        };
        let (published, (killed, (new_master, promoted_after), rejoined_after)) =
            tokio::join!(publish, chaos);
        let times = seen.await.unwrap();
        let done = started.elapsed();

        point_at_owner(&mut app).await;
        let got = app.take(&crm, 2 * n, Duration::from_secs(60)).await;
        let contacts = created_per_chat(&got, "contact.created", "contactId");
        let deals = created_per_chat(&got, "deal.created", "dealId");
        assert_eq!(contacts.len(), n, "every client got a contact");
        assert_eq!(deals.len(), n, "every client got a deal");
        assert!(contacts.values().all(|ids| ids.len() == 1), "a second contact");
        assert!(deals.values().all(|ids| ids.len() == 1), "a second deal");

        // Notifications per client: one cause, to one manager; the round robin even.
        let mut owner_of: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut per_manager = Vec::new();
        for m in managers {
            let notes = app.notes("acc", m, n / managers.len()).await;
            let causes: BTreeSet<String> =
                notes.iter().map(|x| x["notificationId"].to_string()).collect();
            for note in &notes {
                owner_of
                    .entry(note["chatId"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(m);
            }
            per_manager.push(causes.len());
        }
        assert_eq!(owner_of.len(), n, "every client reached a manager");
        assert!(owner_of.values().all(|ms| ms.len() == 1), "a client given twice");
        assert_eq!(per_manager, vec![n / 3; 3], "the round robin stayed even");

        // The state survived the failover: a second message of every client
        // reaches his manager and creates nothing.
        for i in 0..n {
            app.publish_event(&inbound("acc", &format!("client-{i:03}"), "again"))
                .await;
        }
        let mut again = 0;
        for m in managers {
            let notes = app.notes("acc", m, n / 3).await;
            for note in &notes {
                assert_eq!(note["type"], "chat.message", "{note}");
                let chat = note["chatId"].as_str().unwrap();
                assert!(owner_of[chat].contains(m), "{chat} went to {m}");
            }
            again += notes
                .iter()
                .map(|x| x["chatId"].to_string())
                .collect::<BTreeSet<_>>()
                .len();
        }
        assert_eq!(again, n, "every second message reached its manager");
        let extra = app.take(&crm, 0, Duration::from_secs(2)).await;
        assert!(extra.is_empty(), "a known client created something: {extra:?}");
        assert!(app.dead(0).await.is_empty(), "nothing dead-lettered");

        // Figures.
        let gap = times
            .windows(2)
            .filter(|w| w[1] >= killed || w[0] >= killed)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        let before = times.iter().filter(|t| **t < killed).count() / 2;
        eprintln!(
            "failover: {n} new clients ({before} handled before the kill); master :{victim} killed, \
             :{new_master} serving after {promoted_after:?}, old master back as its replica after \
             {rejoined_after:?}; longest pause in CRM output {gap:?}; \
             all published in {published:?}, all handled in {done:?}"
        );
    })
    .await;
    // Bring the killed node back (it rejoins as a replica) for the next tests.
    let seeds_again = start_cluster().await;
    assert_eq!(seeds_again, seeds);
    finish(app, result).await;
}
