//! Why a plugin was refused ([`LoadError`]) and why one call failed ([`CallError`]).

use thiserror::Error;

/// The most of a plugin's own text (a refused config's reason) an error carries, in bytes: the rest is cut, so a
/// plugin cannot make the host store or echo megabytes.
pub const MAX_PLUGIN_REASON_BYTES: usize = 1024;

/// `reason` cut to [`MAX_PLUGIN_REASON_BYTES`] on a character boundary, marked when cut.
pub fn bounded_reason(mut reason: String) -> String {
    if reason.len() > MAX_PLUGIN_REASON_BYTES {
        let mut end = MAX_PLUGIN_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let cut = reason.len() - end;
        reason.truncate(end);
        reason.push_str(&format!("… [{cut} more bytes]"));
    }
    reason
}

/// Why uploaded bytes could not become a runnable plugin. Every variant says what is wrong in one line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    #[error("empty file: a plugin is a Wasm component or a core module built with pingpost-sdk")]
    Empty,
    #[error("not WebAssembly: the file does not start with the Wasm magic bytes")]
    NotWasm,
    #[error("malformed Wasm: {reason}")]
    Malformed { reason: String },
    #[error("a core module with no pingpost contract: build it with pingpost-sdk")]
    NotAPlugin,
    #[error("could not turn the core module into a component: {reason}")]
    Encode { reason: String },
    #[error("could not compile the component: {reason}")]
    Compile { reason: String },
    #[error("not a pingpost plugin: it must export exactly one of `pingpost:plugin/bidder` or `pingpost:plugin/redaction`, found exports [{}]", exports.join(", "))]
    WrongWorld { exports: Vec<String> },
    #[error("forbidden import `{name}`: a plugin may import only pingpost:plugin/host and pingpost:plugin/types")]
    ForbiddenImport { name: String },
    #[error("contract version {plugin} is not compatible with the host's {host}")]
    ContractVersion { plugin: String, host: String },
    #[error("the plugin's interface does not match contract {host}: {reason}")]
    InterfaceMismatch { host: String, reason: String },
    #[error("a {found} plugin cannot be used as a {expected}")]
    WorldMismatch { expected: &'static str, found: &'static str },
    #[error("could not start the plugin engine: {reason}")]
    Engine { reason: String },
    #[error("the plugin refused its config: {reason}")]
    Config { reason: String },
    #[error("the plugin's first instance failed: {error}")]
    FirstInstance { error: CallError },
}

/// Why one plugin call produced no answer. The host and every other plugin carry on; the instance that failed is
/// dropped and replaced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    #[error("timed out: the call ran past its {deadline_ms} ms deadline")]
    Timeout { deadline_ms: u64 },
    #[error("out of fuel: the call used its whole budget of {budget} units")]
    OutOfFuel { budget: u64 },
    #[error("memory limit: the plugin tried to grow its memory past {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: usize },
    #[error("stack overflow: the plugin recursed too deep")]
    StackOverflow,
    #[error("the plugin trapped: {message}")]
    Trap { message: String },
    #[error("output too large: {bytes} bytes of strings, the limit is {limit}")]
    OutputTooLarge { bytes: usize, limit: usize },
    #[error("invalid output: {reason}")]
    InvalidOutput { reason: String },
    /// The host's input does not fit the contract; the plugin was not called.
    #[error("invalid input, the plugin was not called: {reason}")]
    InvalidInput { reason: String },
    #[error("suspended until {until_unix_ms} (unix ms) after repeated failures; last: {reason}")]
    Suspended { until_unix_ms: i64, reason: String },
    #[error("could not instantiate the plugin: {reason}")]
    Instantiate { reason: String },
    #[error("the plugin refused its config: {reason}")]
    Config { reason: String },
    /// The plugin's contract version has no such export; the plugin was not called.
    #[error("the plugin's contract {version} has no `{export}`")]
    Unsupported { export: &'static str, version: &'static str },
}
