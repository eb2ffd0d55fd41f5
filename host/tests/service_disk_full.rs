//! A disk that fills while serving, for real: this test binary lowers its own file-size limit (`RLIMIT_FSIZE`) to
//! zero, so every write of the store fails as on a full disk, then lifts it. While the store cannot write, a lead is
//! `503 store_unavailable` (never `200 unsold`) and `/healthz` fails; once it can, both recover on their own and the
//! lead sells (it was not kept as seen). One test in its own binary: the limit is the whole process's.

#[path = "common/service.rs"]
mod service_harness;

use std::time::Duration;

use serde_json::{Value, json};
use service_harness::{TestService, api_keys, exchange_head, wasm_buyer_tables};

const PUBLISHER: &str = "pub-key";

fn exchange_toml() -> String {
    let keys = api_keys(&[("publisher", Some("pub-1"), PUBLISHER)]);
    exchange_head(&keys, "post_deadline_ms = 5000\ndedupe_window_days = 30")
        + &wasm_buyer_tables("acme", "acme-main", 2000)
}

fn lead(n: u32) -> Value {
    json!({
        "vertical": "health-insurance",
        "consumer": { "first_name": "Ana", "last_name": "Diaz", "phone": format!("305555{n:04}"),
                      "email": format!("ana{n}@example.com"), "state": "FL", "zip5": "33139",
                      "date_of_birth": "1968-04-02" },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/x", "tcpa_text": "I agree" }
    })
}

/// Sets this process's file-size soft limit to `bytes` (at most the hard limit).
fn limit_file_size(bytes: libc::rlim_t) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the `rlimit` passed, which lives on this stack frame.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0, "reads the limit");
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "sets the limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_disk_is_full_leads_are_503_and_healthz_fails_and_both_recover_when_it_is_not() {
    let t = TestService::start(&exchange_toml()).await;
    assert_eq!(t.post(PUBLISHER, "/v1/leads", &lead(1)).await.body["outcome"], "sold");

    // SAFETY: ignoring SIGXFSZ only changes how this process reacts to writing past its file-size limit: the write
    // fails with EFBIG instead of the signal ending the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    limit_file_size(0);
    let refused = t.post(PUBLISHER, "/v1/leads", &lead(2)).await;
    let health = t.client.get(t.url("/healthz")).send().await.expect("answers");
    let (health_status, health_body) = (health.status().as_u16(), health.text().await.unwrap_or_default());
    let again = t.post(PUBLISHER, "/v1/leads", &lead(3)).await;
    limit_file_size(libc::RLIM_INFINITY);

    assert_eq!((refused.status, refused.code()), (503, "store_unavailable"), "{}", refused.text);
    assert_eq!(health_status, 503, "{health_body}");
    assert!(health_body.contains("store_unavailable"), "{health_body}");
    assert_eq!((again.status, again.code()), (503, "store_unavailable"), "refused up front: {}", again.text);

    // Space again: the next probe write (at most every 500 ms) finds it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let health = t.client.get(t.url("/healthz")).send().await.expect("answers");
    assert_eq!(health.status().as_u16(), 200);
    let sold = t.post(PUBLISHER, "/v1/leads", &lead(2)).await;
    assert_eq!((sold.status, &sold.body["outcome"]), (200, &json!("sold")), "not a duplicate: {}", sold.text);
    t.shutdown().await;
}
