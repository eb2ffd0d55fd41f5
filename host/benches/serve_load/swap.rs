//! Hot swaps under load: plugin versions activated one after another through the operator API while leads flow.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::scenario::OPERATOR_KEY;

/// The plugin swapped: 17 of the 18 campaigns of the Wasm scenario run it.
pub const PLUGIN: &str = "config-buyer";

/// `bytes` with a custom section appended: a valid module with the same code and another SHA-256.
pub fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut section = Vec::new();
    leb128(&mut section, name.len() as u64);
    section.extend_from_slice(name.as_bytes());
    section.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, section.len() as u64);
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[derive(Deserialize)]
struct Uploaded {
    version: u32,
}

/// What the swaps measured.
pub struct SwapStats {
    pub swaps: u32,
    /// Activations the server refused (the live version stayed).
    pub refused: u32,
    /// Upload + activate, per swap, microseconds.
    pub swap_us: Histogram<u64>,
    pub versions: Vec<u32>,
}

/// Uploads the two builds alternately (a repeated upload of the same bytes returns the existing version) and
/// activates each, `swaps` times.
pub async fn swap(base: &str, builds: [&[u8]; 2], swaps: u32) -> Result<SwapStats> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut swap_us = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    let mut versions = Vec::new();
    let mut refused = 0;
    for i in 0..swaps {
        let started = Instant::now();
        let bytes = builds[(i % 2) as usize].to_vec();
        let response = client
            .post(format!("{base}/v1/plugins/{PLUGIN}/versions"))
            .bearer_auth(OPERATOR_KEY)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .context("uploading a plugin version")?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("upload {i}: {status} {text}");
        }
        let uploaded: Uploaded = serde_json::from_str(&text).with_context(|| format!("upload answer {text}"))?;
        let response = client
            .post(format!("{base}/v1/plugins/{PLUGIN}/activate"))
            .bearer_auth(OPERATOR_KEY)
            .json(&serde_json::json!({ "version": uploaded.version }))
            .send()
            .await
            .context("activating a plugin version")?;
        let status = response.status();
        if status.is_client_error() {
            // The server refused this activation (e.g. a new instance missed its deadline on a starved machine);
            // the old version stays live. Counted, not fatal: the run is about the leads.
            let text = response.text().await?;
            println!("  swap {}/{swaps}: activation of version {} refused: {status} {text}", i + 1, uploaded.version);
            refused += 1;
            continue;
        }
        if !status.is_success() {
            bail!("activate {i} (version {}): {status} {}", uploaded.version, response.text().await?);
        }
        swap_us.saturating_record(started.elapsed().as_micros() as u64);
        if (i + 1) % 10 == 0 || i == 0 {
            println!(
                "  swap {}/{swaps}: version {} live after {:.0} ms",
                i + 1,
                uploaded.version,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        versions.push(uploaded.version);
    }
    Ok(SwapStats { swaps, refused, swap_us, versions })
}
