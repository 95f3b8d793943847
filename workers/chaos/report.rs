//! The figures of a run, one per line, and the verdict: every count 0 except
//! repeats by `notificationId`, the round-robin spread at most 1, and no
//! worker that stopped by itself.

use crate::check::Figures;
use crate::faults::Faults;
use crate::model::{Distribution, Rule};
use crate::plan::Plan;

pub struct Run<'a> {
    pub plan: &'a Plan,
    pub faults: &'a Faults,
    pub figures: &'a Figures,
    pub workers: usize,
    pub worker_starts: u32,
    pub exited_alone: &'a [String],
    pub republished_batches: u32,
    pub stalled: bool,
    pub seconds: f64,
}

/// Prints the report; returns whether every check passed.
pub fn print(run: &Run) -> bool {
    let f = run.figures;
    let p = run.plan;
    let bad = p.model.bad.len();
    let rr: Vec<String> = f
        .round_robin
        .iter()
        .map(|(a, v)| format!("{a} {v:?}"))
        .collect();
    println!();
    println!(
        "published events        {} ({} good, {bad} bad) over {} chats in {} accounts",
        p.events.len(),
        p.events.len() - bad,
        p.chats,
        p.accounts.len()
    );
    let m = &p.model;
    let first_reply = m
        .new_chats
        .iter()
        .filter(|c| c.distribution == Distribution::FirstReply)
        .count();
    let races: Vec<usize> = m
        .expects
        .iter()
        .filter_map(|e| match &e.rule {
            Rule::Race { replies } => Some(replies.len()),
            _ => None,
        })
        .collect();
    let replies = m
        .expects
        .iter()
        .filter(|e| matches!(e.rule, Rule::Reply { .. }))
        .count();
    println!(
        "chats                   {} known, {} new by round robin, {first_reply} new by first reply",
        m.known_chats.len(),
        m.new_chats.len() - first_reply
    );
    println!(
        "replies                 {replies}, plus {} claim races of {} replies",
        races.len(),
        races.iter().sum::<usize>()
    );
    println!(
        "workers                 {} ({} starts); batches published again after a broker fault: {}",
        run.workers, run.worker_starts, run.republished_batches
    );
    println!(
        "faults                  {} worker SIGKILLs, {} broker restart, {} Redis restart, {} Redis cuts ({} connections closed)",
        run.faults.worker_kills,
        run.faults.broker_restarts,
        run.faults.redis_restarts,
        run.faults.redis_cuts,
        run.faults.redis_connections_cut
    );
    println!(
        "notifications           expected {}, received {} ({} distinct ids)",
        f.expected_notes, f.received_notes, f.distinct_notes
    );
    println!(
        "duplicated by id        {} (allowed; {} of them the reader's own redeliveries)",
        f.duplicated_by_id, f.reader_redeliveries
    );
    println!(
        "message.send            expected {}, received {} distinct",
        f.expected_sends, f.distinct_sends
    );
    println!(
        "CRM events              expected {}, received {} distinct",
        f.expected_crm, f.distinct_crm
    );
    println!(
        "dead letters            expected {}, received {} distinct ({} copies)",
        f.expected_dead, f.distinct_dead, f.dead_copies
    );
    println!("round robin per manager {}", rr.join(", "));
    println!("run time                {:.0} s", run.seconds);
    println!();
    let checks: Vec<(&str, usize, usize)> = vec![
        ("lost notifications", f.lost, 0),
        ("unexpected notifications", f.unexpected, 0),
        ("same cause under a new id", f.same_cause_new_id, 0),
        ("wrong rejection reason", f.wrong_reason, 0),
        ("lost message.send", f.lost_sends, 0),
        ("message.send not allowed", f.unexpected_sends, 0),
        ("lost contacts or deals", f.lost_crm, 0),
        ("unexpected CRM events", f.unexpected_crm, 0),
        ("duplicate contacts", f.duplicate_contacts, 0),
        ("duplicate deals", f.duplicate_deals, 0),
        ("claims with >1 winner", f.multi_winner_claims, 0),
        ("claims won by a non-replier", f.winner_not_replier, 0),
        ("round-robin spread", f.spread(), 1),
        ("out of order per chat", f.out_of_order, 0),
        ("dead letters lost", f.lost_dead, 0),
        ("good events dead-lettered", f.good_dead, 0),
        ("workers that exited alone", run.exited_alone.len(), 0),
        ("reading stalled", usize::from(run.stalled), 0),
    ];
    let mut pass = true;
    for (what, value, max) in checks {
        let ok = value <= max;
        pass &= ok;
        let limit = if max == 0 {
            String::new()
        } else {
            format!(" (<= {max})")
        };
        println!(
            "{:<4} {what:<28} {value}{limit}",
            if ok { "ok" } else { "FAIL" }
        );
    }
    for line in run.exited_alone {
        println!("     {line}");
    }
    if !f.examples.is_empty() {
        println!("\nexamples:");
        for e in &f.examples {
            println!("  {e}");
        }
    }
    println!("\n{}", if pass { "PASS" } else { "FAIL" });
    pass
}
