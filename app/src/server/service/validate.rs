//! Field checks shared by every entry point: trimmed text with length limits counted in
//! characters, no control characters, all failures collected into one 400.

use crate::model::FieldError;
use crate::server::error::ServiceError;

/// Length limits, in characters.
pub mod limits {
    pub const NAME: (usize, usize) = (2, 120);
    pub const DESCRIPTION: usize = 500;
    pub const URL: usize = 500;
    pub const REASON: (usize, usize) = (5, 500);
    pub const LEARNED: (usize, usize) = (5, 2000);
    pub const INSTRUCTIONS: usize = 16_000;
    pub const NOTE: usize = 500;
    pub const SECRET: usize = 16_384;
}

/// Collects field errors while reading input.
#[derive(Debug, Default)]
pub struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for `field`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Required text: trimmed, `min..=max` characters, control characters refused (newlines
    /// and tabs allowed when `multiline`).
    pub fn text(
        &mut self,
        field: &str,
        value: &str,
        (min, max): (usize, usize),
        multiline: bool,
    ) -> String {
        let value = value.trim();
        let len = value.chars().count();
        if len < min {
            if len == 0 {
                self.fail(field, "is required");
            } else {
                self.fail(
                    field,
                    format!("must be at least {min} characters (got {len})"),
                );
            }
        } else if len > max {
            self.fail(
                field,
                format!("must be at most {max} characters (got {len})"),
            );
        } else if value
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
        {
            self.fail(field, "must not contain control characters");
        }
        value.to_owned()
    }

    /// Optional text: blank becomes `None`, otherwise as [`Check::text`] with no minimum.
    pub fn optional(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
        multiline: bool,
    ) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        Some(self.text(field, value, (1, max), multiline))
    }

    /// Ends the check: `Ok` if nothing failed, else a 400 with every field listed.
    pub fn finish(self, hint: &str) -> Result<(), ServiceError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::validation(self.errors, hint))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        let mut check = Check::new();
        assert_eq!(
            check.text("name", "  日本語ツール  ", limits::NAME, false),
            "日本語ツール"
        );
        assert!(check.finish("").is_ok());
    }

    #[test]
    fn short_long_blank_and_control_characters_are_all_reported() {
        let mut check = Check::new();
        check.text("a", "x", limits::NAME, false);
        check.text("b", &"y".repeat(121), limits::NAME, false);
        check.text("c", "   ", limits::NAME, false);
        check.text("d", "bad\u{7}name", limits::NAME, false);
        let Err(ServiceError::Invalid(body)) = check.finish("hint") else {
            panic!("expected 400")
        };
        let fields: Vec<_> = body
            .details
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["a", "b", "c", "d"]);
    }
}
