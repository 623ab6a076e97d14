//! Identity rules: normalized names, URLs and domains, config keys.

use url::Url;

/// Lower-case, every run of non-alphanumerics becomes one space, trimmed:
/// `"  Linear, Inc.  "` → `"linear inc"`.
pub fn name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

/// A product URL and its identity domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalUrl {
    pub url: String,
    pub domain: String,
}

/// Normalizes a URL: bare domains get `https://`; only http(s) with a host; the domain is the
/// lower-case host without a leading `www.`. Blank input is `Ok(None)`.
pub fn url(text: &str) -> Result<Option<NormalUrl>, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let parsed = Url::parse(&with_scheme).map_err(|_| "must be a valid http(s) URL or domain")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must use http or https");
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("must include a host name")?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain credentials");
    }
    let host = host.to_ascii_lowercase();
    let domain = host
        .strip_prefix("www.")
        .unwrap_or(&host)
        .trim_end_matches('.')
        .to_owned();
    // `www.` alone, or dots only, names no domain: suggestions would merge on the empty one.
    if domain == "www" || !domain.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err("must include a domain name, e.g. linear.app");
    }
    Ok(Some(NormalUrl {
        url: parsed.to_string(),
        domain,
    }))
}

/// A stable config key from a name: lower-case ASCII letters and digits in hyphenated runs.
pub fn slug(text: &str) -> String {
    let words: Vec<String> = name(text)
        .split(' ')
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let slug: String = words.join("-").chars().take(64).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "tool".into() } else { slug }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_to_lowercase_words() {
        assert_eq!(name("  Linear, Inc.  "), "linear inc");
        assert_eq!(name("GitHub"), "github");
        assert_eq!(name("Ünïcode—Tool"), "ünïcode tool");
    }

    #[test]
    fn bare_domains_become_https_urls_and_www_is_dropped() {
        let u = url("www.Linear.app").expect("valid").expect("present");
        assert_eq!(u.url, "https://www.linear.app/");
        assert_eq!(u.domain, "linear.app");
        assert_eq!(url("  "), Ok(None));
        assert!(url("ftp://example.com").is_err());
        assert!(url("https://user:pw@example.com").is_err());
    }

    #[test]
    fn hosts_without_a_domain_are_refused() {
        for text in [
            "www.",
            "https://www.",
            "https://www./x",
            "http://./",
            "...",
            "www",
        ] {
            assert!(url(text).is_err(), "{text:?} names no domain");
        }
        let u = url("https://Linear.app./docs")
            .expect("valid")
            .expect("present");
        assert_eq!(u.domain, "linear.app", "a trailing dot is the same domain");
    }

    #[test]
    fn slugs_are_ascii_and_hyphenated() {
        assert_eq!(slug("GitHub Enterprise"), "github-enterprise");
        assert_eq!(slug("日本"), "tool");
    }
}
