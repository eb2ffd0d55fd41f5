//! Logging from a plugin. In Wasm the line goes to the host, which caps lines and bytes per call; natively (in a
//! plugin's unit tests) it is kept in a thread-local buffer that [`take_native_log`] drains.

use crate::LogLevel;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static NATIVE_LOG: std::cell::RefCell<Vec<(LogLevel, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records one log line for the operator (and for `pingpost plugin run`).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::buyer::pingpost::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_LOG.with(|lines| lines.borrow_mut().push((level, message.to_owned())));
}

/// Returns and clears the lines logged on this thread when running natively (always empty in Wasm).
pub fn take_native_log() -> Vec<(LogLevel, String)> {
    #[cfg(not(target_arch = "wasm32"))]
    return NATIVE_LOG.with(|lines| std::mem::take(&mut *lines.borrow_mut()));
    #[cfg(target_arch = "wasm32")]
    Vec::new()
}
