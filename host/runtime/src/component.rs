//! Turns uploaded bytes into component bytes: a component is taken as it is, a core module built with pingpost-sdk
//! (which embeds its component type) is encoded with wit-component. Bad bytes become typed errors, never a panic.

use std::borrow::Cow;

use wasmparser::{Parser, Payload};
use wit_component::ComponentEncoder;

use super::error::LoadError;

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// What kind of Wasm binary was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Component,
    CoreModule,
}

/// Sniffs the binary kind from the header.
pub fn sniff(bytes: &[u8]) -> Result<BinaryKind, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(LoadError::NotWasm);
    }
    if bytes.len() < 8 {
        return Err(LoadError::Malformed { reason: "the file ends inside the 8-byte Wasm header".into() });
    }
    if Parser::is_component(bytes) {
        Ok(BinaryKind::Component)
    } else if Parser::is_core_wasm(bytes) {
        Ok(BinaryKind::CoreModule)
    } else {
        Err(LoadError::Malformed { reason: "unknown Wasm binary version or layer".into() })
    }
}

/// The component bytes for an upload: borrowed when it already is a component, encoded when it is a core module.
pub fn to_component(bytes: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
    match sniff(bytes)? {
        BinaryKind::Component => Ok(Cow::Borrowed(bytes)),
        BinaryKind::CoreModule => {
            if !has_component_type(bytes)? {
                return Err(LoadError::NotAPlugin);
            }
            let encoded = ComponentEncoder::default()
                .validate(true)
                .module(bytes)
                .and_then(|mut encoder| encoder.encode())
                .map_err(|e| LoadError::Encode { reason: one_line(&e) })?;
            Ok(Cow::Owned(encoded))
        }
    }
}

/// Whether a core module carries the `component-type` custom section wit-bindgen embeds.
fn has_component_type(bytes: &[u8]) -> Result<bool, LoadError> {
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Malformed { reason: e.to_string() })?;
        if let Payload::CustomSection(section) = payload
            && section.name().starts_with("component-type")
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An error chain on one line.
pub(crate) fn one_line(e: &impl std::fmt::Display) -> String {
    format!("{e:#}").replace('\n', " ")
}
