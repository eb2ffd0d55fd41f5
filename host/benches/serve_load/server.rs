//! The real `pingpost serve` process under test: started on a free loopback port with a config file in a temp dir,
//! killed when dropped; its CPU time is read from /proc.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running server process.
pub struct Server {
    pub base: String,
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Ignore errors: the process may have exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (bound, read and released; the server binds it right after).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    /// Writes `config` to `dir/serve.toml`, starts `pingpost serve` on it and waits until `GET /healthz` answers 200.
    pub async fn start(dir: &Path, config: &str) -> Result<Self> {
        let config_path = dir.join("serve.toml");
        std::fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
        let port = free_port()?;
        let log = dir.join("server.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        // SERVE_LOAD_PINGPOST swaps in another build of the server (an A/B of two commits under one load generator).
        let binary = std::env::var_os("SERVE_LOAD_PINGPOST").unwrap_or_else(|| env!("CARGO_BIN_EXE_pingpost").into());
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("PINGPOST_OPERATOR_KEY")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting pingpost serve")?;
        let pid = child.id();
        let mut server = Server { base: format!("http://127.0.0.1:{port}"), pid, child, log };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("pingpost serve exited with {status} before it was healthy:\n{}", server.log_tail());
            }
            if let Ok(response) = client.get(format!("{}/healthz", server.base)).send().await
                && response.status() == 200
            {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("pingpost serve was not healthy after 120 s:\n{}", server.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines the server printed.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// User + system CPU time of a process so far (`None`: this process).
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    stat_cpu_time(&path)
}

/// User + system CPU time so far of `pid`'s threads named `name` (the store writer is `pingpost-writer`).
pub fn thread_cpu_time(pid: u32, name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    tasks
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        .map(|task| stat_cpu_time(&task.path().join("stat").to_string_lossy()))
        .sum()
}

/// The CPU time in a /proc `stat` file (0 if unreadable).
fn stat_cpu_time(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else { return Duration::ZERO };
    // Fields after the command name (which is in parentheses and may hold spaces): state is field 3, utime 14.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is field 3, so field 14 (utime) is rest[11] and field 15 (stime) rest[12].
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks_per_second())
}

/// Bytes a process has caused to be written to storage so far (`write_bytes` in /proc/PID/io; 0 if unreadable).
pub fn disk_write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| io.lines().find_map(|line| line.strip_prefix("write_bytes:")?.trim().parse().ok()))
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
