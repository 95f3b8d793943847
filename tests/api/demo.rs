//! `switchboard demo`, run as a newcomer would: the binary against the local
//! services. Its printout is what each user saw; afterwards nothing is left.

use std::time::Duration;

use crate::helpers::*;

/// The lines of one user's table in the demo's output.
fn table<'a>(out: &'a str, user: &str) -> Vec<&'a str> {
    let head = format!("  {user} (");
    out.lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim_start)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_each_users_day_and_cleans_up() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("demo")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let out = tokio::time::timeout(Duration::from_secs(120), async {
        use tokio::io::AsyncReadExt;
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        // Both at once: a full stderr pipe must not stall the demo.
        let (read_out, read_err) = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        read_out.unwrap();
        read_err.unwrap();
        (child.wait().await.unwrap(), stdout, stderr)
    })
    .await
    .expect("the demo ends within two minutes");
    let (status, out, err) = out;
    // Whatever the demo left of its prefix is removed when the test ends.
    let prefix = out
        .split("prefix ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_owned);
    let _demo = prefix.as_deref().map(Prefix::adopt);
    assert!(status.success(), "{status}: {out}\n{err}");

    let anna = table(&out, "anna");
    assert!(
        anna[0].starts_with("chat.new") && anna[1].starts_with("chat.message"),
        "{out}"
    );
    let boris = table(&out, "boris");
    assert!(
        boris.iter().any(|l| l.contains("reason not_responsible")),
        "{out}"
    );
    let quinn = table(&out, "quinn");
    assert_eq!(quinn.len(), 5, "{out}");
    assert!(
        quinn.iter().any(|l| l.contains("reason read_only")),
        "{out}"
    );
    let gleb = table(&out, "gleb");
    assert!(
        gleb.iter().any(|l| l.starts_with("chat.withdrawn")),
        "{out}"
    );
    assert!(
        gleb.iter().any(|l| l.contains("reason claimed_by_other")),
        "{out}"
    );
    let dina = table(&out, "dina");
    assert!(dina.iter().any(|l| l.starts_with("chat.assigned")), "{out}");
    assert_eq!(out.matches("contact.created").count(), 3, "{out}");
    assert_eq!(out.matches("deal.created").count(), 3, "{out}");
    assert_eq!(out.matches("message.send ").count(), 2, "{out}");
    assert!(out.contains("anna's suitcase for Olga: 1 deal(s)"), "{out}");
    assert!(out.contains("not_json: "), "{out}");

    // Nothing of the demo's prefix is left on the broker.
    let prefix = prefix.expect("the demo names its prefix");
    let app = TestApp::spawn(0).await;
    let dead = switchboard::names::Names::new(&prefix).dead();
    assert!(!app.queue_exists(&dead).await, "{prefix}.dead left");
    assert!(
        !app.queue_exists(&format!("{prefix}.user.demo-shop.anna"))
            .await
    );
    app.cleanup().await;
}
