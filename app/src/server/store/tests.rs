//! The store's own rules: URLs in logs, the backend a URL names.

use super::*;

#[test]
fn database_urls_are_logged_without_their_password() {
    let shown =
        redact_url("postgres://agentkey:hunter2-secret@db.internal:5432/agentkey?sslmode=require");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert_eq!(shown, "postgres://agentkey@db.internal:5432/agentkey");
    let shown = redact_url(
        "postgres://agentkey@db.internal/agentkey?password=hunter2-secret&sslmode=require",
    );
    assert_eq!(shown, "postgres://agentkey@db.internal/agentkey");
    assert_eq!(
        redact_url("postgres://postgres@127.0.0.1:5432/test"),
        "postgres://postgres@127.0.0.1:5432/test"
    );
    assert_eq!(
        redact_url("postgres://a:pw@[not a url"),
        "(unparseable URL)",
        "unparseable URLs are not echoed"
    );
}

#[test]
fn the_backend_follows_the_url_scheme() {
    assert_eq!(Backend::of_url("postgres://h/db"), Backend::Postgres);
    assert_eq!(Backend::of_url("postgresql://h/db"), Backend::Postgres);
    assert_eq!(
        Backend::of_url("sqlite://data/agentkey.db"),
        Backend::Sqlite
    );
    assert_eq!(Backend::of_url("data/agentkey.db"), Backend::Sqlite);
}
