//! What is wrong with one field of a lead: validation and the verticals' rules report every problem at once, each
//! naming the field it is about.

use serde::Serialize;

/// What is wrong with one field of a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted field name, e.g. `consumer.phone`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), reason: reason.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
