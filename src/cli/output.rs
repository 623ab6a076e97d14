//! Human tables or JSON.

use anyhow::anyhow;
use serde::Serialize;

use app::server::ServiceError;

/// Output mode.
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` as JSON, or the table/text `human` builds.
    pub fn show<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            print!("{}", human(value));
        }
        Ok(())
    }
}

/// A plain-text table with columns padded to their widest cell.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| h.to_uppercase()).collect());
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Turns a service error into a readable CLI error (message and hint).
pub fn service_error(err: ServiceError) -> anyhow::Error {
    if let ServiceError::Internal(inner) = err {
        return inner;
    }
    let body = err.body();
    let details = body
        .details
        .unwrap_or_default()
        .into_iter()
        .map(|d| format!("\n  {}: {}", d.field, d.message))
        .collect::<String>();
    match body.hint {
        Some(hint) => anyhow!("{}{details}\nhint: {hint}", body.error),
        None => anyhow!("{}{details}", body.error),
    }
}

/// `None` as a dash.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}
