//! The settings' parsing and validation.

use std::time::Duration;

use super::*;
use crate::http::limits::{Limit, Tier};

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_are_the_embedded_sqlite_on_localhost() {
    let s = Settings::from_sources(None, vars(&[])).expect("defaults");
    assert_eq!(s.database_url, "sqlite://data/agentkey.db");
    assert_eq!(s.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(s.master_key_file, PathBuf::from("data/master.key"));
    assert_eq!(s.limits.get(Tier::Read).max, 120);
}

#[test]
fn bad_values_name_their_variable() {
    let err =
        Settings::from_sources(None, vars(&[("AGENTKEY_BIND", "nope")])).expect_err("invalid");
    assert!(err.to_string().contains("AGENTKEY_BIND"));
    let err = Settings::from_sources(None, vars(&[("AGENTKEY_RATE_LIMITS", "read=fast")]))
        .expect_err("invalid");
    assert!(err.to_string().contains("AGENTKEY_RATE_LIMITS"));
}

#[test]
fn rate_limit_overrides_apply_per_tier() {
    let s = Settings::from_sources(
        None,
        vars(&[("AGENTKEY_RATE_LIMITS", "credential=5/s, request=2/h")]),
    )
    .expect("valid");
    assert_eq!(
        s.limits.get(Tier::Credential),
        Limit {
            max: 5,
            window_secs: 1
        }
    );
    assert_eq!(
        s.limits.get(Tier::Request),
        Limit {
            max: 2,
            window_secs: 3600
        }
    );
    assert_eq!(s.limits.get(Tier::Read).max, 120);
}

#[test]
fn notification_retry_schedule_is_configurable_and_checked() {
    let s = Settings::from_sources(
        None,
        vars(&[(
            "AGENTKEY_NOTIFY_RETRY",
            "base=50ms,cap=1s,attempts=4,lease=2s",
        )]),
    )
    .expect("valid");
    assert_eq!(s.notify_policy.base, std::time::Duration::from_millis(50));
    assert_eq!(s.notify_policy.cap, std::time::Duration::from_secs(1));
    assert_eq!(s.notify_policy.max_attempts, 4);
    let err = Settings::from_sources(None, vars(&[("AGENTKEY_NOTIFY_RETRY", "base=soon")]))
        .expect_err("invalid");
    assert!(err.to_string().contains("AGENTKEY_NOTIFY_RETRY"));
}

#[test]
fn connection_limits_are_configurable_and_checked() {
    let s = Settings::from_sources(
        None,
        vars(&[("AGENTKEY_CONNECTIONS", "max=64, header=500ms, body=2s")]),
    )
    .expect("valid");
    assert_eq!(s.connections.max, 64);
    assert_eq!(s.connections.header_timeout, Duration::from_millis(500));
    assert_eq!(s.connections.body_timeout, Duration::from_secs(2));
    assert_eq!(
        s.connections.idle_timeout,
        Duration::from_secs(60),
        "default kept"
    );
    for bad in ["max=0", "header=0s", "idle=soon", "speed=1s"] {
        let err =
            Settings::from_sources(None, vars(&[("AGENTKEY_CONNECTIONS", bad)])).expect_err(bad);
        assert!(
            err.to_string().contains("AGENTKEY_CONNECTIONS"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn loopback_test_switches_are_refused_on_a_public_bind() {
    for switch in [
        "AGENTKEY_TEST_LOOPBACK_WEBHOOKS",
        "AGENTKEY_TEST_LOOPBACK_UPSTREAMS",
    ] {
        let err = Settings::from_sources(
            None,
            vars(&[(switch, "1"), ("AGENTKEY_BIND", "0.0.0.0:3000")]),
        )
        .expect_err("refused");
        assert!(err.to_string().contains(switch));
        let behind_proxy = [
            (switch, "1"),
            ("AGENTKEY_BASE_URL", "https://keys.example.com"),
        ];
        assert!(
            Settings::from_sources(None, vars(&behind_proxy)).is_err(),
            "a real public URL refuses {switch}"
        );
        let on = Settings::from_sources(None, vars(&[(switch, "1")])).expect("loopback bind");
        assert!(on.test_loopback_webhooks || on.test_loopback_upstreams);
        assert_ne!(
            on.test_loopback_webhooks, on.test_loopback_upstreams,
            "independent switches"
        );
    }
}

#[test]
fn proxy_limits_parse_times_and_sizes() {
    let s = Settings::from_sources(
        None,
        vars(&[(
            "AGENTKEY_PROXY",
            "connect=2s,total=1m,request_body=64KiB,response_body=1GiB",
        )]),
    )
    .expect("valid");
    assert_eq!(s.proxy.connect, std::time::Duration::from_secs(2));
    assert_eq!(s.proxy.total, std::time::Duration::from_secs(60));
    assert_eq!(s.proxy.request_body, 64 * 1024);
    assert_eq!(s.proxy.response_body, 1 << 30);
    for bad in ["total=0s", "request_body=10XB", "speed=1"] {
        let err = Settings::from_sources(None, vars(&[("AGENTKEY_PROXY", bad)])).expect_err(bad);
        assert!(err.to_string().contains("AGENTKEY_PROXY"), "{err}");
    }
}

#[test]
fn a_missing_or_unreachable_public_url_is_named_for_the_snippets() {
    let s = Settings::from_sources(None, vars(&[])).expect("defaults");
    assert_eq!(s.base_url, "http://127.0.0.1:3000");
    assert!(
        s.base_url_problem()
            .is_some_and(|p| p.contains("AGENTKEY_BASE_URL")),
        "no public URL configured"
    );
    let s = Settings::from_sources(None, vars(&[("AGENTKEY_BIND", "0.0.0.0:8080")]))
        .expect("wildcard bind");
    assert_eq!(
        s.base_url, "http://127.0.0.1:8080",
        "links never name the wildcard address"
    );
    let s = Settings::from_sources(None, vars(&[("AGENTKEY_BASE_URL", "http://0.0.0.0:3000")]))
        .expect("configured");
    assert!(s.base_url_problem().is_some_and(|p| p.contains("0.0.0.0")));
    let s = Settings::from_sources(
        None,
        vars(&[("AGENTKEY_BASE_URL", "https://keys.example.com")]),
    )
    .expect("configured");
    assert_eq!(s.base_url_problem(), None);
}

#[test]
fn the_model_settings_come_all_together_and_each_problem_names_its_variable() {
    let off = Settings::from_sources(None, vars(&[])).expect("defaults");
    assert!(off.ai.is_none());
    let on = Settings::from_sources(
        None,
        vars(&[
            ("AGENTKEY_AI_URL", "http://127.0.0.1:11434/v1"),
            ("AGENTKEY_AI_MODEL", " llama3.1 "),
            ("AGENTKEY_AI_KEY", "sk-hidden"),
        ]),
    )
    .expect("valid");
    let ai = on.ai.expect("configured");
    assert_eq!(ai.model, "llama3.1");
    assert_eq!(ai.idle, Duration::from_secs(60));
    assert!(!format!("{ai:?}").contains("sk-hidden"));
    for (pairs, names) in [
        (vec![("AGENTKEY_AI_MODEL", "m")], "AGENTKEY_AI_URL"),
        (
            vec![("AGENTKEY_AI_URL", "http://127.0.0.1:1/v1")],
            "AGENTKEY_AI_MODEL",
        ),
        (
            vec![
                ("AGENTKEY_AI_URL", "ftp://x/v1"),
                ("AGENTKEY_AI_MODEL", "m"),
            ],
            "AGENTKEY_AI_URL",
        ),
        (
            vec![
                ("AGENTKEY_AI_URL", "http://127.0.0.1:1/v1"),
                ("AGENTKEY_AI_MODEL", "m"),
                ("AGENTKEY_AI_TIMEOUT", "0"),
            ],
            "AGENTKEY_AI_TIMEOUT",
        ),
    ] {
        let err = Settings::from_sources(None, vars(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains(names), "{pairs:?}: {err}");
    }
}

#[test]
fn metrics_are_off_unless_turned_on_with_a_token_or_given_an_address() {
    let mode =
        |pairs: &[(&str, &str)]| Settings::from_sources(None, vars(pairs)).map(|s| s.metrics);
    assert!(matches!(mode(&[]).expect("default"), MetricsMode::Off));
    assert!(matches!(
        mode(&[("AGENTKEY_METRICS", "off")]).expect("off"),
        MetricsMode::Off
    ));
    let token = "0123456789abcdef0123";
    let on = mode(&[
        ("AGENTKEY_METRICS", "on"),
        ("AGENTKEY_METRICS_TOKEN", token),
    ])
    .expect("on");
    assert!(matches!(on, MetricsMode::On { .. }));
    assert!(
        !format!("{on:?}").contains(token),
        "the token never shows in Debug"
    );
    let listen = mode(&[("AGENTKEY_METRICS", "127.0.0.1:9464")]).expect("address");
    assert!(matches!(listen, MetricsMode::Listen(a) if a.port() == 9464));
    for (pairs, names) in [
        (vec![("AGENTKEY_METRICS", "on")], "AGENTKEY_METRICS_TOKEN"),
        (
            vec![
                ("AGENTKEY_METRICS", "on"),
                ("AGENTKEY_METRICS_TOKEN", "short"),
            ],
            "AGENTKEY_METRICS_TOKEN",
        ),
        (
            vec![("AGENTKEY_METRICS", "yes please")],
            "AGENTKEY_METRICS must be off, on, or a listen address",
        ),
        (
            vec![("AGENTKEY_METRICS", "127.0.0.1:3000")],
            "main listener",
        ),
    ] {
        let err = mode(&pairs).expect_err("refused").to_string();
        assert!(err.contains(names), "{pairs:?}: {err}");
        assert!(!err.contains("short"), "a token is never echoed: {err}");
    }
}
