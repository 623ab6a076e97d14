//! What a proxied call may do: the agent's path is checked before anything else (it must stay
//! under the tool's base URL), then matched against allow-list rules `METHOD /path-pattern`,
//! where `*` is one path segment and `**` any number of them (none included).

/// Most rules a tool (or a grant's subset) may have.
pub const MAX_RULES: usize = 50;

/// One allow-list rule, kept in its canonical text (`GET /repos/**`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Upper-case method; `None` for `*` (any method).
    method: Option<String>,
    pattern: Vec<Part>,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    One,
    Any,
}

impl Rule {
    /// Parses `METHOD /path-pattern`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let Some((method, pattern)) = text.split_once(char::is_whitespace) else {
            return Err(format!(
                "{text:?} must be METHOD /path, e.g. GET /repos/** (a method, a space, a path)"
            ));
        };
        let method = method.trim().to_ascii_uppercase();
        let pattern = pattern.trim();
        let method = match method.as_str() {
            "*" | "ANY" => None,
            m if (1..=16).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(method)
            }
            _ => {
                return Err(format!(
                    "{method:?} is not an HTTP method (use GET, POST, PUT, PATCH, DELETE, HEAD or * for any)"
                ));
            }
        };
        if !pattern.starts_with('/') {
            return Err(format!("the path {pattern:?} must start with /"));
        }
        if pattern.contains(['?', '#', '\\', '%']) || pattern.chars().any(char::is_whitespace) {
            return Err(format!(
                "the path {pattern:?} may not contain ?, #, %, \\ or spaces (rules match the path only)"
            ));
        }
        let mut parts = Vec::new();
        for segment in pattern[1..].split('/') {
            match segment {
                "" if parts.is_empty() && pattern == "/" => {}
                "" => return Err(format!("the path {pattern:?} has an empty segment (//)")),
                "." | ".." => return Err(format!("the path {pattern:?} may not contain . or ..")),
                "*" => parts.push(Part::One),
                "**" => parts.push(Part::Any),
                s if s.contains('*') => {
                    return Err(format!(
                        "in {pattern:?}, * and ** must be whole segments (/repos/*/issues)"
                    ));
                }
                s => parts.push(Part::Literal(s.to_owned())),
            }
        }
        let text = format!("{} {pattern}", method.as_deref().unwrap_or("*"));
        Ok(Rule {
            method,
            pattern: parts,
            text,
        })
    }

    /// The canonical text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the rule allows `method` on the path made of `segments` (a GET rule allows
    /// HEAD too: the same answer without its body).
    pub fn allows(&self, method: &str, segments: &[&str]) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m == method || (m == "GET" && method == "HEAD"))
            && matches(&self.pattern, segments)
    }
}

fn matches(pattern: &[Part], segments: &[&str]) -> bool {
    match pattern.split_first() {
        None => segments.is_empty(),
        Some((Part::Any, rest)) => {
            (0..=segments.len()).any(|skip| matches(rest, &segments[skip..]))
        }
        Some((part, rest)) => segments.split_first().is_some_and(|(first, tail)| {
            (*part == Part::One || *part == Part::Literal((*first).to_owned()))
                && matches(rest, tail)
        }),
    }
}

/// Parses a list of rules (blank lines skipped); the error names the first bad one.
pub fn parse_all<S: AsRef<str>>(lines: &[S]) -> Result<Vec<Rule>, String> {
    let rules: Vec<Rule> = lines
        .iter()
        .map(AsRef::as_ref)
        .filter(|l| !l.trim().is_empty())
        .map(Rule::parse)
        .collect::<Result<_, _>>()?;
    if rules.len() > MAX_RULES {
        return Err(format!("at most {MAX_RULES} rules"));
    }
    Ok(rules)
}

/// The stored form of rules: one per line.
pub fn join(rules: &[Rule]) -> String {
    rules.iter().map(Rule::text).collect::<Vec<_>>().join("\n")
}

/// The rules of a stored text (one per line); a line that no longer parses allows nothing.
pub fn stored(text: &str) -> Vec<Rule> {
    text.lines().filter_map(|l| Rule::parse(l).ok()).collect()
}

/// The stored text as lines, for views.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks the agent's path (the part after `/proxy`, still percent-encoded) and returns its
/// segments. Anything that could leave the tool's base URL or change how the upstream reads
/// the request is refused: `.` and `..` segments, encoded dots, slashes, backslashes and
/// percent signs, empty segments (`//`), backslashes, control characters and absolute URLs.
pub fn check_path(raw: &str) -> Result<Vec<&str>, &'static str> {
    if raw.is_empty() || raw == "/" {
        return Ok(Vec::new());
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err("the path must start with /");
    };
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => return Err("backslashes are not allowed in the path"),
            0..=0x20 | 0x7f.. => {
                return Err(
                    "control characters, spaces and non-ASCII bytes must be percent-encoded",
                );
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let Some(decoded) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    return Err("a % in the path must start a percent-encoded byte (%XX)");
                };
                match decoded {
                    b'/' | b'\\' => {
                        return Err("encoded slashes (%2F, %5C) are not allowed in the path");
                    }
                    b'.' => return Err("encoded dots (%2E) are not allowed in the path"),
                    b'%' => return Err("double encoding (%25) is not allowed in the path"),
                    0..=0x1f | 0x7f => {
                        return Err(
                            "encoded control characters (such as CR and LF) are not allowed in the path",
                        );
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(colon) = rest.find(':')
        && !rest[..colon].contains('/')
        && rest[..colon]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && rest[..colon]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
        && rest[colon..].starts_with("://")
    {
        return Err("the path may not be an absolute URL");
    }
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = trimmed.split('/').collect();
    for s in &segments {
        // `..;x` is `..` to servers that drop path parameters (Tomcat, Spring).
        match s.split(';').next().unwrap_or_default() {
            _ if s.is_empty() => return Err("empty path segments (//) are not allowed"),
            "." | ".." => return Err("the path may not contain . or .. segments"),
            _ => {}
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text).expect(text)
    }

    #[test]
    fn patterns_match_segments() {
        let any = rule("GET /repos/**");
        assert!(any.allows("GET", &["repos"]));
        assert!(any.allows("GET", &["repos", "a", "b"]));
        assert!(!any.allows("POST", &["repos", "a"]));
        assert!(any.allows("HEAD", &["repos", "a"]), "GET rules allow HEAD");
        assert!(!any.allows("GET", &["users"]));
        let one = rule("post /repos/*/issues");
        assert_eq!(one.text(), "POST /repos/*/issues");
        assert!(one.allows("POST", &["repos", "x", "issues"]));
        assert!(!one.allows("POST", &["repos", "x", "y", "issues"]));
        assert!(!one.allows("POST", &["repos", "issues"]));
        let mid = rule("* /a/**/z");
        assert!(mid.allows("DELETE", &["a", "z"]));
        assert!(mid.allows("PUT", &["a", "b", "c", "z"]));
        assert!(!mid.allows("PUT", &["a", "b"]));
        let root = rule("GET /");
        assert!(root.allows("GET", &[]));
        assert!(!root.allows("GET", &["x"]));
    }

    #[test]
    fn bad_rules_say_why() {
        for bad in [
            "GET",
            "GET repos",
            "G3T /x",
            "GET /a//b",
            "GET /a/../b",
            "GET /a*b",
            "GET /a?x=1",
            "GET /a%2F",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad} should be refused");
        }
        let too_many: Vec<String> = (0..=MAX_RULES).map(|i| format!("GET /{i}")).collect();
        assert!(parse_all(&too_many).is_err());
    }

    #[test]
    fn paths_that_could_leave_the_base_are_refused() {
        assert_eq!(
            check_path("/repos/a/b").expect("test step"),
            ["repos", "a", "b"]
        );
        assert_eq!(check_path("/repos/a/").expect("test step"), ["repos", "a"]);
        assert!(check_path("").expect("test step").is_empty());
        assert_eq!(check_path("/v1/x:run").expect("test step"), ["v1", "x:run"]);
        assert_eq!(check_path("/a%20b").expect("test step"), ["a%20b"]);
        for bad in [
            "/../etc",
            "/a/..",
            "/a/./b",
            "/%2e%2e/x",
            "/a%2Fb",
            "/a%5cb",
            "//evil.example",
            "/a//b",
            "/a\\b",
            "/a%0d%0aHost:%20x",
            "/a%00",
            "/https://evil.example/",
            "/a%252e",
            "/a%zz",
            "/a b",
            "/public/..;/admin",
            "/.;x",
        ] {
            assert!(check_path(bad).is_err(), "{bad} should be refused");
        }
    }
}
