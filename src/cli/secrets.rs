//! Reading secrets from stdin (never from arguments, which end up in shell history and `ps`).

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use secrecy::SecretString;

/// Reads a secret from stdin; a single trailing newline is dropped.
pub fn read_stdin(what: &str) -> anyhow::Result<SecretString> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the {what}, then press Enter and Ctrl-D:");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("failed to read the secret from stdin")?;
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if trimmed.trim().is_empty() {
        bail!("no {what} on stdin; pipe it in, e.g. `printf %s \"$TOKEN\" | agentkey …`");
    }
    Ok(SecretString::from(trimmed.to_owned()))
}
