//! Where the secret goes in a proxied call: a header (`Authorization: Bearer {secret}`,
//! `X-API-Key: {secret}`, `Authorization: Basic {secret}` with a `user:pass` secret) or a query
//! parameter (`?api_key={secret}`). A JSON credential (OAuth) may be addressed by field,
//! `{secret.access_token}`.

use base64::Engine;

/// The rule used when a tool names none.
pub const DEFAULT: &str = "Authorization: Bearer {secret}";

/// Headers AgentKey never lets a rule set: they frame the request or route it.
const FORBIDDEN: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// A parsed injection rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    target: Target,
    prefix: String,
    field: Option<String>,
    suffix: String,
    /// `Basic {secret}`: the substituted value is base64-encoded.
    basic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Lower-case header name.
    Header(String),
    Query(String),
}

/// A rule applied to a secret: where it goes and every form of it that must not come back.
pub struct Rendered {
    pub target: Target,
    pub value: String,
    /// The secret's forms (raw, substituted, encoded) to redact from responses.
    pub needles: Vec<Vec<u8>>,
}

impl Injection {
    /// Parses `Header-Name: template` or `?param=template`; the template holds exactly one
    /// `{secret}` or `{secret.field}`.
    pub fn parse(text: &str) -> Result<Injection, String> {
        let text = text.trim();
        let (target, template) = if let Some(query) = text.strip_prefix('?') {
            let Some((name, template)) = query.split_once('=') else {
                return Err("a query rule is ?name={secret}".into());
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "{name:?} is not a query parameter name (letters, digits, - _ .)"
                ));
            }
            (Target::Query(name.to_owned()), template.trim())
        } else {
            let Some((name, template)) = text.split_once(':') else {
                return Err(
                    "write Header-Name: template (e.g. Authorization: Bearer {secret}) or ?param={secret}"
                        .into(),
                );
            };
            let name = name.trim();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(format!("{name:?} is not a header name"));
            }
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                return Err(format!("the {name} header cannot carry a credential"));
            }
            (Target::Header(lower), template.trim())
        };
        if template.chars().any(char::is_control) {
            return Err("the template may not contain control characters".into());
        }
        let Some(open) = template.find("{secret") else {
            return Err("the template must contain {secret} (or {secret.field})".into());
        };
        let Some(close) = template[open..].find('}').map(|c| open + c) else {
            return Err("the template's {secret} is not closed".into());
        };
        let placeholder = &template[open + 1..close];
        let field = match placeholder.strip_prefix("secret") {
            Some("") => None,
            Some(rest) => match rest.strip_prefix('.') {
                Some(f)
                    if !f.is_empty()
                        && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    Some(f.to_owned())
                }
                _ => {
                    return Err(format!(
                        "{{{placeholder}}} is not {{secret}} or {{secret.field}}"
                    ));
                }
            },
            None => unreachable!("found by the search above"),
        };
        let prefix = template[..open].to_owned();
        let suffix = template[close + 1..].to_owned();
        if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
            return Err("the template holds exactly one {secret} placeholder".into());
        }
        let basic = matches!(target, Target::Header(_)) && prefix.eq_ignore_ascii_case("basic ");
        Ok(Injection {
            target,
            prefix,
            field,
            suffix,
            basic,
        })
    }

    /// The canonical text (header names as written are not kept: HTTP ignores their case).
    pub fn text(&self) -> String {
        let placeholder = match &self.field {
            Some(f) => format!("{{secret.{f}}}"),
            None => "{secret}".to_owned(),
        };
        match &self.target {
            Target::Header(name) => {
                format!(
                    "{}: {}{placeholder}{}",
                    title(name),
                    self.prefix,
                    self.suffix
                )
            }
            Target::Query(name) => format!("?{name}={}{placeholder}{}", self.prefix, self.suffix),
        }
    }

    /// The header or parameter name (lower-case for headers).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Applies the rule to a secret. The error is for a human (never holds the secret).
    pub fn render(&self, secret: &str) -> Result<Rendered, String> {
        let mut needles = vec![secret.as_bytes().to_vec()];
        let value = match &self.field {
            None => secret.to_owned(),
            Some(field) => {
                let doc: serde_json::Value = serde_json::from_str(secret).map_err(|_| {
                    format!(
                        "the credential is not JSON, so {{secret.{field}}} cannot be read from it"
                    )
                })?;
                // Every string of the document is as secret as the field used.
                if let Some(map) = doc.as_object() {
                    for v in map.values().filter_map(serde_json::Value::as_str) {
                        if v.len() >= 8 {
                            needles.push(v.as_bytes().to_vec());
                        }
                    }
                }
                match doc.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    _ => return Err(format!("the credential has no text field {field:?}")),
                }
            }
        };
        needles.push(value.as_bytes().to_vec());
        if self.basic
            && let Some((_, password)) = value.split_once(':')
            && password.len() >= 6
        {
            // A `user:token` pair: the token alone is the secret part.
            needles.push(password.as_bytes().to_vec());
        }
        let substituted = if self.basic {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
            needles.push(encoded.as_bytes().to_vec());
            encoded
        } else {
            value
        };
        let value = format!("{}{substituted}{}", self.prefix, self.suffix);
        if matches!(self.target, Target::Header(_))
            && value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
        {
            return Err(
                "the credential holds characters a header cannot carry (such as a line break)"
                    .into(),
            );
        }
        // The forms an echo takes: URL-encoded (with + or %20, upper- or lower-case hex) and
        // JSON-escaped (also with escaped slashes).
        let mut forms = Vec::new();
        for n in &needles {
            let text = String::from_utf8_lossy(n).into_owned();
            let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
            let spaced = encoded.replace('+', "%20");
            forms.push(lower_hex(&spaced));
            forms.push(spaced);
            forms.push(lower_hex(&encoded));
            forms.push(encoded);
            if let Ok(json) = serde_json::to_string(&text) {
                let inner = json[1..json.len() - 1].to_owned();
                forms.push(inner.replace('/', "\\/"));
                forms.push(inner);
            }
        }
        needles.extend(forms.into_iter().map(String::into_bytes));
        needles.sort();
        needles.dedup();
        needles.retain(|n| !n.is_empty());
        Ok(Rendered {
            target: self.target.clone(),
            value,
            needles,
        })
    }
}

/// `%2F` → `%2f`.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// `x-api-key` → `X-Api-Key`, for display.
fn title(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_templates_render() {
        let bearer = Injection::parse("Authorization: Bearer {secret}").expect("test step");
        let r = bearer.render("tok_123").expect("test step");
        assert_eq!(r.target, Target::Header("authorization".into()));
        assert_eq!(r.value, "Bearer tok_123");
        let key = Injection::parse("x-api-key:{secret}").expect("test step");
        assert_eq!(key.text(), "X-Api-Key: {secret}");
        assert_eq!(key.render("k").expect("test step").value, "k");
        let basic = Injection::parse("Authorization: Basic {secret}").expect("test step");
        let r = basic.render("user:pass").expect("test step");
        assert_eq!(r.value, "Basic dXNlcjpwYXNz");
        assert!(r.needles.contains(&b"dXNlcjpwYXNz".to_vec()));
        assert!(r.needles.contains(&b"user:pass".to_vec()));
        let jira = basic.render("me@example.com:tok/en+1").expect("renders");
        for form in ["tok/en+1", "tok\\/en+1", "tok%2Fen%2B1", "tok%2fen%2b1"] {
            assert!(jira.needles.contains(&form.as_bytes().to_vec()), "{form}");
        }
    }

    #[test]
    fn json_fields_and_query_parameters() {
        let oauth =
            Injection::parse("Authorization: Bearer {secret.access_token}").expect("test step");
        let secret = r#"{"access_token":"at_abcdefgh","refresh_token":"rt_ijklmnop"}"#;
        let r = oauth.render(secret).expect("test step");
        assert_eq!(r.value, "Bearer at_abcdefgh");
        assert!(
            r.needles.contains(&b"rt_ijklmnop".to_vec()),
            "every token is redacted"
        );
        assert!(oauth.render("plain").is_err());
        assert!(oauth.render(r#"{"other":"x"}"#).is_err());
        let query = Injection::parse("?api_key={secret}").expect("test step");
        assert_eq!(query.target(), &Target::Query("api_key".into()));
        assert_eq!(query.render("a b").expect("test step").value, "a b");
        assert!(
            query
                .render("a b")
                .expect("test step")
                .needles
                .contains(&b"a+b".to_vec())
        );
    }

    #[test]
    fn bad_rules_and_secrets_are_refused() {
        for bad in [
            "Bearer {secret}",
            "Host: {secret}",
            "Content-Length: {secret}",
            "Proxy-Authorization: {secret}",
            "Authorization: Bearer",
            "Authorization: {token}",
            "Authorization: {secret} {secret}",
            "Authorization: {secret.}",
            "Bad Header: {secret}",
            "?={secret}",
            "?a b={secret}",
        ] {
            assert!(Injection::parse(bad).is_err(), "{bad} should be refused");
        }
        let bearer = Injection::parse(DEFAULT).expect("test step");
        let err = bearer.render("line\r\nX-Evil: 1").err().expect("test step");
        assert!(!err.contains("X-Evil"), "the error never holds the secret");
    }
}
