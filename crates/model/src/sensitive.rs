//! Personal data (phone numbers, emails, collected digits, message bodies) travels wrapped in
//! [`Sensitive`], whose `Debug` and `Display` print a redaction marker, so a `tracing` line or a
//! panic message cannot leak it. Serialization (to the store, to an authorised API caller) is
//! unchanged: the value itself is what is stored and shown to those allowed to see it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value that must not reach a log line.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Sensitive(value)
    }
    /// The value, for code that has a reason to see it (storage, an authorised response).
    pub fn expose(&self) -> &T {
        &self.0
    }
    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_but_serde_keeps_the_value() {
        let s = Sensitive::new("+15551234567".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            "\"+15551234567\""
        );
    }
}
