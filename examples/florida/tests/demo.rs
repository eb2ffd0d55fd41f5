//! The example runs with the one command its README gives (here on free ports, so it cannot clash with anything
//! already listening on 18401–18404).

use std::process::Command;

use serde_json::Value;

/// Runs the demo on its own data directory, so tests running at once never share one.
fn florida(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    florida_on(dir.path(), args)
}

fn florida_on(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_florida"))
        .args(["--any-port", "--once", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_demo_sells_the_lead_to_the_26_dollar_http_buyer() {
    let (success, stdout, stderr) = florida(&["--json"]);

    assert!(success, "{stderr}");
    let outcome: Value = serde_json::from_str(&stdout).expect("JSON outcome");
    assert_eq!(outcome["status"], "sold");
    assert_eq!(outcome["sales"][0]["campaign_id"], "sunshine-health-direct");
    assert_eq!(outcome["sales"][0]["price_cents"], 2600);
    assert_eq!(outcome["trace"]["campaigns"].as_array().map(Vec::len), Some(18));
}

#[test]
fn the_demo_table_shows_the_winner_and_what_the_http_buyers_received() {
    let (success, stdout, stderr) = florida(&[]);

    assert!(success, "{stderr}");
    assert!(stdout.contains("SOLD to sunshine-health-direct (Sunshine Health Direct) at $26.00"), "{stdout}");
    assert!(stdout.contains(r#""outcome":"sold""#), "the publisher's answer over HTTP: {stdout}");
    assert!(
        stdout.contains("sunshine-health-direct   1 ping(s), PII in pings: false 1 post(s) with the full lead"),
        "{stdout}"
    );
    assert!(stdout.contains("atlantic-brokers         1 ping(s), PII in pings: false 0 post(s)"), "{stdout}");
    // The sale's entries, read back from the ledger: the publisher's payout (held for returns) and the buyer's debit.
    let payout = outcome_payout(&stdout);
    assert!(stdout.contains(&format!("publisher sunshine-quotes: balance {payout}, payable $0.00")), "{stdout}");
    assert!(stdout.contains("buyer sunshine: balance -$26.00"), "{stdout}");
}

/// The publisher's payout the headline names (`publisher paid $x.yy`).
fn outcome_payout(stdout: &str) -> String {
    let at = stdout.find("publisher paid ").expect("the headline names the payout") + "publisher paid ".len();
    stdout[at..].split_whitespace().next().expect("an amount").to_owned()
}

#[test]
fn on_a_saturday_the_weekend_call_center_bids_and_wins() {
    let (success, stdout, stderr) = florida(&["--json", "--now", "2026-11-28T15:00:00Z"]);

    assert!(success, "{stderr}");
    let outcome: Value = serde_json::from_str(&stdout).expect("JSON outcome");
    assert_eq!(outcome["sales"][0]["campaign_id"], "weekend-callcenter");
    assert_eq!(outcome["sales"][0]["price_cents"], 2900);
}

#[test]
fn the_demo_records_into_its_sqlite_file_and_a_kept_store_sees_the_consumer_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data/florida");

    let (first_ok, first, stderr) = florida_on(&data, &["--json"]);
    assert!(first_ok, "{stderr}");
    assert!(data.join("pingpost.db").is_file(), "the demo writes its SQLite database");
    let (second_ok, second, stderr) = florida_on(&data, &["--json", "--keep-data"]);

    assert!(second_ok, "{stderr}");
    let first: Value = serde_json::from_str(&first).expect("JSON outcome");
    let second: Value = serde_json::from_str(&second).expect("JSON outcome");
    assert_eq!(first["status"], "sold");
    assert_eq!(second["status"], "duplicate", "{second}");
}
