//! Shared helpers for the runtime tests: real plugins built from `plugins/`, each compiled once per test binary
//! (through one artifact cache per process), and small builders for pings and leads.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pingpost::model::{Consent, ConsentFlags, Consumer, Lead, Ping};
use pingpost::plugin::{Limits, Plugin, Runtime, RuntimeConfig};

/// A cache dir shared by every runtime of this test binary, so each plugin is compiled once per engine config.
pub fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for the artifact cache")).path().to_owned()
}

/// `config` with the shared cache dir.
pub fn with_cache(config: RuntimeConfig) -> RuntimeConfig {
    RuntimeConfig { cache_dir: Some(cache_dir()), ..config }
}

/// A runtime with the default config (warm instances, no fuel) but a generous deadline, shared by the tests of this
/// binary. Tests share a loaded 2-core machine with debug builds, where a thread can lose the CPU for longer than a
/// production deadline; the deadline itself is tested in `runtime_sandbox.rs` with its own runtimes.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let limits = Limits { deadline: Duration::from_secs(5), ..Limits::default() };
        Runtime::new(with_cache(RuntimeConfig { limits, ..RuntimeConfig::default() })).expect("the runtime starts")
    })
}

/// The bytes of a plugin built from `plugins/`.
pub fn wasm(name: &str) -> Vec<u8> {
    pingpost_plugins::wasm_bytes(name).unwrap_or_else(|e| panic!("building plugin {name}: {e:#}"))
}

/// The bytes of a hostile fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    pingpost_plugins::hostile_fixture(name).unwrap_or_else(|e| panic!("hostile fixture {name}: {e:#}"))
}

/// `name` loaded once into the shared [`runtime`].
pub fn plugin(name: &str) -> Arc<Plugin> {
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<Plugin>>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(plugin) = loaded.lock().unwrap().get(name) {
        return plugin.clone();
    }
    let plugin = runtime().load(&wasm(name)).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    loaded.lock().unwrap().insert(name.to_owned(), plugin.clone());
    plugin
}

/// 2026-11-25 15:00 UTC (a Wednesday): 10:00 in New York, 09:00 in Chicago.
pub const NOW: i64 = 1_795_618_800_000;

/// A health-insurance ping from Florida, age 40, with every consent flag.
pub fn ping() -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 40,
        gender: None,
        consent: ConsentFlags { trusted_form: true, jornaya: true, tcpa_text: true },
        publisher_id: "pub-1".into(),
        source_id: "src-1".into(),
        sub_id: String::new(),
        extra: Default::default(),
    }
}

/// A full lead from Miami, born 1986-05-17.
pub fn lead() -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: String::new(),
        consumer: Consumer {
            first_name: "Ana".into(),
            last_name: "Lopez".into(),
            phone: "3055550100".into(),
            email: "ana@example.com".into(),
            street: "1 Ocean Dr".into(),
            city: "Miami".into(),
            state: "fl".into(),
            zip5: "33139".into(),
            date_of_birth: "1986-05-17".into(),
            gender: None,
        },
        consent: Consent {
            trusted_form_url: Some("https://cert.trustedform.com/abc".into()),
            jornaya_leadid: None,
            tcpa_text: Some("I agree".into()),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla/5.0".into()),
        },
        extra: [("coverage_type".to_owned(), "family".to_owned()), ("ssn_last4".to_owned(), "1234".to_owned())]
            .into_iter()
            .collect(),
    }
}
