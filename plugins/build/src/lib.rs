//! Builds the plugins under `plugins/` to Wasm and says where each file is.
//!
//! Tests, benchmarks and examples call [`wasm`] to get a real plugin built from this repository's source. The first
//! call in a process runs one `cargo build --release --target wasm32-unknown-unknown` for every plugin (a no-op when
//! nothing changed); the wasm target is added with rustup first when it is missing. Plugins get their own target
//! directory (`target/plugins`) so this never waits on the lock of the cargo command that runs the tests.
//!
//! [`hostile_fixture`] makes the hostile fixtures that are not Rust crates (a bare core module, components of the
//! wrong world or version or with WASI imports, random bytes, an empty and a truncated file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

mod hostile;
mod inspect;

pub use hostile::{HOSTILE_FIXTURES, RANDOM_BYTES_LEN, hostile_fixture};
pub use inspect::component_names;

/// The Rust target plugins are built for. The host turns the core module into a component when it loads it.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The time zones compiled into a plugin's chrono-tz (`CHRONO_TZ_TIMEZONE_FILTER` of the plugins' build): those of
/// the United States and its territories, plus UTC. The whole IANA database would put ~900 KB of data into every
/// plugin instance; the host, which has no such cost, keeps every zone.
pub const PLUGIN_TIME_ZONES: &str = "^(America/(New_York|Detroit|Kentucky/.*|Indiana/.*|Chicago|Menominee|North_Dakota/.*|\
    Denver|Boise|Phoenix|Los_Angeles|Anchorage|Juneau|Sitka|Metlakatla|Yakutat|Nome|Adak|Puerto_Rico)|\
    Pacific/(Honolulu|Guam|Pago_Pago)|US/.*|UTC|Etc/UTC)$";

/// Every plugin crate under `plugins/`, by package name.
pub const PLUGINS: &[&str] = &[
    "config-buyer",
    "scorecard-buyer",
    "standard-redactor",
    "hostile-buyer",
    // Plugins of the released contract 0.1.0, which the host keeps running.
    "flat-buyer-0-1",
    "plain-redactor-0-1",
];

/// The workspace root (the folder holding `plugins/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("plugins/build sits two levels below the workspace root")
}

/// Where the built plugins land.
pub fn out_dir() -> PathBuf {
    workspace_root().join("target/plugins").join(WASM_TARGET).join("release")
}

/// Builds every plugin (once per process) and returns the path of `package`'s `.wasm` file.
pub fn wasm(package: &str) -> Result<PathBuf> {
    if !PLUGINS.contains(&package) {
        bail!("unknown plugin {package:?}; known: {PLUGINS:?}");
    }
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| build_all().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)?;
    let path = out_dir().join(format!("{}.wasm", package.replace('-', "_")));
    if !path.is_file() {
        bail!("{} was not produced by the build", path.display());
    }
    Ok(path)
}

/// Reads `package`'s built `.wasm` file.
pub fn wasm_bytes(package: &str) -> Result<Vec<u8>> {
    let path = wasm(package)?;
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Runs one cargo build of every plugin for the wasm target.
pub fn build_all() -> Result<()> {
    ensure_target()?;
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", WASM_TARGET, "--target-dir"])
        .arg(root.join("target/plugins"));
    for package in PLUGINS {
        cmd.args(["-p", package]);
    }
    // A test run sets these for the host's own build; they must not leak into the plugins' build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    // A filter the caller set wins (to build plugins with more zones, or fewer).
    if std::env::var_os("CHRONO_TZ_TIMEZONE_FILTER").is_none() {
        cmd.env("CHRONO_TZ_TIMEZONE_FILTER", PLUGIN_TIME_ZONES);
    }
    let status = cmd.status().context("running cargo to build the plugins")?;
    if !status.success() {
        bail!(
            "building the plugins failed ({status}); run `cargo build --release --target {WASM_TARGET} -p <plugin>` to see why"
        );
    }
    Ok(())
}

/// Adds the wasm target with rustup when it is not installed yet (a fresh machine has none). Test binaries run in
/// parallel and each builds the plugins, so the check-and-add holds an exclusive lock on a file in `target/`: two
/// concurrent `rustup target add` calls of one toolchain fail each other (rustup's download and install are not
/// safe to run twice at once).
fn ensure_target() -> Result<()> {
    let lock_dir = workspace_root().join("target");
    std::fs::create_dir_all(&lock_dir).with_context(|| format!("creating {}", lock_dir.display()))?;
    let lock_path = lock_dir.join(".wasm-target.lock");
    let lock = std::fs::File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        // No rustup: the toolchain was installed another way; let cargo report a missing target itself.
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("running rustup to add the wasm target")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed ({status})");
    }
    Ok(())
}
