//! Webhook URLs: only the providers' official hosts and paths are accepted, and the dashboard
//! shows a mask instead of the URL (a webhook URL is a credential).

use url::{Host, Url};

use crate::model::ChannelKind;

const MAX_URL: usize = 500;
const SLACK_HOSTS: &[&str] = &["hooks.slack.com", "hooks.slack-gov.com"];
const DISCORD_HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "ptb.discord.com",
    "canary.discord.com",
];

/// Checks a webhook URL against its provider's official hosts and paths. With
/// `allow_loopback` (tests only) a plain-http loopback host may stand in for the provider.
pub fn validate_webhook(kind: ChannelKind, raw: &str, allow_loopback: bool) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "is not a valid URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a #fragment".into());
    }
    let (hosts, prefix, example) = match kind {
        ChannelKind::Slack => (
            SLACK_HOSTS,
            "/services/",
            "https://hooks.slack.com/services/T…/B…/…",
        ),
        ChannelKind::Discord => (
            DISCORD_HOSTS,
            "/api/webhooks/",
            "https://discord.com/api/webhooks/…/…",
        ),
        ChannelKind::Email => return Err("email needs no URL".into()),
    };
    if !url.path().starts_with(prefix) || url.path().len() <= prefix.len() {
        return Err(format!("must be a {} webhook like {example}", kind.label()));
    }
    let host = url.host_str().unwrap_or("");
    let loopback_host = host == "localhost"
        || matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback());
    let loopback_stand_in = allow_loopback && url.scheme() == "http" && loopback_host;
    let official =
        url.scheme() == "https" && hosts.contains(&host) && url.port().is_none_or(|p| p == 443);
    if !(official || loopback_stand_in) {
        return Err(format!(
            "must be a {} webhook on {} (like {example})",
            kind.label(),
            hosts.join(" or ")
        ));
    }
    Ok(url)
}

/// What the dashboard shows instead of a webhook URL: host, path kind and the last four
/// characters, enough to recognise it, useless to call it.
pub fn mask(url: &Url) -> String {
    let path = url.path();
    let tail: String = path
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let kind = if path.starts_with("/services/") {
        "/services/"
    } else {
        "/api/webhooks/"
    };
    format!("{}{kind}…{tail}", url.host_str().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_official_webhook_hosts_and_paths_pass() {
        assert!(
            validate_webhook(
                ChannelKind::Slack,
                "https://hooks.slack.com/services/T1/B2/xyz",
                false
            )
            .is_ok()
        );
        assert!(
            validate_webhook(
                ChannelKind::Discord,
                "https://discord.com/api/webhooks/1/abc",
                false
            )
            .is_ok()
        );
        for bad in [
            "http://hooks.slack.com/services/T1/B2/xyz",
            "https://hooks.slack.com.evil.example/services/T1",
            "https://evil.example/services/T1/B2/xyz",
            "https://hooks.slack.com@127.0.0.1/services/T1",
            "https://hooks.slack.com/other/T1",
            "https://hooks.slack.com:8443/services/T1",
            "https://127.0.0.1/services/T1",
            "http://127.0.0.1:9/services/T1",
            "not a url",
        ] {
            assert!(
                validate_webhook(ChannelKind::Slack, bad, false).is_err(),
                "{bad} must be refused"
            );
        }
        assert!(
            validate_webhook(
                ChannelKind::Discord,
                "https://hooks.slack.com/services/T1/B2/x",
                false
            )
            .is_err()
        );
    }

    #[test]
    fn the_test_setting_admits_loopback_but_not_private_hosts() {
        assert!(
            validate_webhook(ChannelKind::Slack, "http://127.0.0.1:9/services/T1", true).is_ok()
        );
        assert!(
            validate_webhook(ChannelKind::Slack, "http://10.0.0.1:9/services/T1", true).is_err()
        );
    }

    #[test]
    fn masks_keep_only_host_and_last_characters() {
        let url =
            Url::parse("https://hooks.slack.com/services/T000/B000/abcdefSECRETwxyz").expect("url");
        let masked = mask(&url);
        assert_eq!(masked, "hooks.slack.com/services/…wxyz");
        assert!(!masked.contains("SECRET"));
    }
}
