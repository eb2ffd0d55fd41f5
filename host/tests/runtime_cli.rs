//! `pingpost plugin check` and `pingpost plugin run`, end to end: the built binary on real plugins and on hostile
//! ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixture, ping};
use serde_json::Value;

fn pingpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pingpost")).args(args).output().expect("the pingpost binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn plugin_path(name: &str) -> String {
    pingpost_plugins::wasm(name).expect("the plugins build").display().to_string()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test input");
    path
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

#[test]
fn check_prints_world_contract_imports_size_and_hash_of_a_loadable_plugin() {
    let out = pingpost(&["plugin", "check", &plugin_path("config-buyer")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in ["world: buyer", "contract: 0.2.0", "pingpost:plugin/host@0.2.0", "size: ", "sha256: "] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn check_fails_with_a_one_line_reason_on_a_core_module_without_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "core.wasm", fixture("core-module"));
    let out = pingpost(&["plugin", "check", s(&file)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("build it with pingpost-sdk"), "{err}");
}

#[test]
fn check_fails_naming_a_forbidden_wasi_import() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "sockets.wasm", fixture("wasi-sockets"));
    let out = pingpost(&["plugin", "check", s(&file)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wasi:sockets/"), "{}", stderr(&out));
}

#[test]
fn check_fails_on_a_plugin_that_cannot_start_within_the_memory_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "huge.wasm", fixture("huge-memory"));
    let out = pingpost(&["plugin", "check", s(&file)]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("cannot start within the default limits"), "{}", stderr(&out));
}

#[test]
fn run_prints_the_decision_fuel_memory_and_logs_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ping_file = write(dir.path(), "ping.json", serde_json::to_vec(&ping()).expect("json"));
    let config = write(dir.path(), "config.json", r#"{"base_price_cents": 725, "echo_input": true}"#);
    let out =
        pingpost(&["plugin", "run", &plugin_path("config-buyer"), "--ping", s(&ping_file), "--config", s(&config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    assert_eq!(json["decision"]["decision"], "bid");
    assert_eq!(json["decision"]["price_cents"], 725);
    assert!(json["fuel_consumed"].as_u64().is_some_and(|fuel| fuel > 0), "{json}");
    assert!(json["peak_memory_bytes"].as_u64().is_some_and(|bytes| bytes > 0), "{json}");
    assert!(json["wall_us"].is_u64(), "{json}");
    assert_eq!(json["logs"].as_array().map(Vec::len), Some(1), "{json}");
}

#[test]
fn run_redacts_a_lead_with_a_redactor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lead = write(dir.path(), "lead.json", serde_json::to_vec(&common::lead()).expect("json"));
    let out = pingpost(&["plugin", "run", &plugin_path("standard-redactor"), "--lead", s(&lead)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    assert_eq!(json["ping"]["zip3"], "331");
    assert!(!stdout(&out).contains("Lopez"), "no PII in the ping");
}

#[test]
fn run_fails_with_a_clear_message_when_the_plugin_runs_out_of_fuel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ping_file = write(dir.path(), "ping.json", serde_json::to_vec(&ping()).expect("json"));
    let config = write(dir.path(), "mode.txt", "loop");
    let out = pingpost(&[
        "plugin",
        "run",
        &plugin_path("hostile-buyer"),
        "--ping",
        s(&ping_file),
        "--config",
        s(&config),
        "--fuel",
        "1000000",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("out of fuel"), "{}", stderr(&out));
}

#[test]
fn run_fails_with_a_clear_message_when_the_plugin_traps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ping_file = write(dir.path(), "ping.json", serde_json::to_vec(&ping()).expect("json"));
    let config = write(dir.path(), "mode.txt", "panic");
    let out =
        pingpost(&["plugin", "run", &plugin_path("hostile-buyer"), "--ping", s(&ping_file), "--config", s(&config)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("trapped"), "{}", stderr(&out));
}

#[test]
fn run_asks_for_a_ping_when_a_buyer_gets_none() {
    let out = pingpost(&["plugin", "run", &plugin_path("config-buyer")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--ping"), "{}", stderr(&out));
}

#[test]
fn run_refuses_a_ping_outside_the_contract_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ping = serde_json::to_value(ping()).expect("json");
    ping["zip3"] = Value::from("33131");
    let ping_file = write(dir.path(), "ping.json", ping.to_string());
    let config = write(dir.path(), "config.json", r#"{"base_price_cents": 725}"#);
    let out =
        pingpost(&["plugin", "run", &plugin_path("config-buyer"), "--ping", s(&ping_file), "--config", s(&config)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("invalid input") && err.contains("zip3"), "{err}");
}
