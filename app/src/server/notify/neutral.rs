//! Agent-written text made harmless before it reaches Slack, Discord or a mailbox. Agents
//! control names, reasons and guide facts; none of it may ping a whole channel, disguise a
//! link behind a trusted label, inject markup, or break the message layout.

use crate::server::mail::escape_html;

/// Length caps, in characters, per kind of field.
pub mod caps {
    pub const NAME: usize = 200;
    pub const TEXT: usize = 1000;
    pub const URL: usize = 500;
    pub const SUBJECT: usize = 150;
}

const ZWSP: char = '\u{200B}';

/// One line of plain text: control characters and newlines become spaces, runs of spaces
/// collapse, and anything past `max` characters is cut with an ellipsis.
pub fn flatten(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = count > 0;
            continue;
        }
        if count > max {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    if count > max {
        let cut: String = out.chars().take(max.saturating_sub(1)).collect();
        return format!("{}…", cut.trim_end());
    }
    out
}

/// Breaks `@everyone`, `@here` and `@channel` so no platform reads them as mass mentions.
fn break_mass_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        if ["everyone", "here", "channel"]
            .iter()
            .any(|w| lower.starts_with(w))
        {
            out.push(ZWSP);
        }
    }
    out.push_str(rest);
    out
}

/// Text for a Slack `mrkdwn` field. Slack control sequences are written `<…>`: special
/// mentions become `[channel]`-style words, user/channel/group references become placeholders,
/// `<url|label>` collapses to the bare URL (a label could pose as "Open in AgentKey"), and the
/// remaining `&`, `<`, `>` are escaped as Slack requires.
pub fn slack(text: &str, max: usize) -> String {
    let flat = flatten(text, max);
    let mut out = String::with_capacity(flat.len() + 16);
    let mut rest = flat.as_str();
    while let Some(open) = rest.find('<') {
        out.push_str(&slack_escape(&rest[..open]));
        let after = &rest[open + 1..];
        match after.find(['>', '<']) {
            Some(close) if after.as_bytes()[close] == b'>' && is_slack_token(&after[..close]) => {
                out.push_str(&slack_token(&after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str("&lt;");
                rest = after;
            }
        }
    }
    out.push_str(&slack_escape(rest));
    cut_escaped(&break_mass_mentions(&out), max)
}

/// Cuts escaped text to `max` characters (Slack counts the escaped form against its limits)
/// without splitting an `&…;` entity.
fn cut_escaped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    format!("{}…", cut.trim_end())
}

/// Slack reads `<…>` as a control sequence only for mentions and links without spaces.
fn is_slack_token(inner: &str) -> bool {
    let target = inner.split('|').next().unwrap_or("");
    !target.is_empty()
        && !target.contains(char::is_whitespace)
        && (target.starts_with(['!', '@', '#']) || target.contains(':'))
}

fn slack_token(inner: &str) -> String {
    if let Some(special) = inner.strip_prefix('!') {
        let name = special.split(['^', '|']).next().unwrap_or("");
        match name {
            "channel" | "here" | "everyone" => format!("[{name}]"),
            "subteam" => "[group]".into(),
            "date" => "[date]".into(),
            _ => "[mention]".into(),
        }
    } else if inner.starts_with('@') {
        "[user]".into()
    } else if inner.starts_with('#') {
        "[channel]".into()
    } else {
        // A link: keep only the real target, never the label.
        slack_escape(inner.split('|').next().unwrap_or(""))
    }
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a Discord embed field. Discord mentions are `<@id>`, `<@&role>`, `<#channel>`;
/// masked links are `[label](url)`. Mentions become placeholders, brackets are escaped so no
/// masked link forms, and mass mentions are broken (the payload also disables pings).
pub fn discord(text: &str, max: usize) -> String {
    let flat = flatten(text, max);
    let mut out = String::with_capacity(flat.len() + 16);
    let mut rest = flat.as_str();
    while let Some(open) = rest.find('<') {
        out.push_str(&discord_escape(&rest[..open]));
        let after = &rest[open + 1..];
        let token = after.find('>').map(|close| (&after[..close], close));
        match token {
            Some((inner, close)) if inner.starts_with("@&") => {
                out.push_str("[role]");
                rest = &after[close + 1..];
            }
            Some((inner, close)) if inner.starts_with('@') => {
                out.push_str("[user]");
                rest = &after[close + 1..];
            }
            Some((inner, close)) if inner.starts_with('#') => {
                out.push_str("[channel]");
                rest = &after[close + 1..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(&discord_escape(rest));
    break_mass_mentions(&out)
}

fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '*' | '_' | '~' | '`' | '|' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Plain-text mail line.
pub fn mail_text(text: &str, max: usize) -> String {
    flatten(text, max)
}

/// HTML mail fragment.
pub fn mail_html(text: &str, max: usize) -> String {
    escape_html(&flatten(text, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_controls_collapse_to_single_spaces() {
        assert_eq!(
            flatten("line one\n\n  line\ttwo\r\n\u{7}", 100),
            "line one line two"
        );
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let cut = flatten(&"a".repeat(50), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(flatten("short", 10), "short");
        assert_eq!(flatten(&"b".repeat(10), 10), "b".repeat(10));
    }

    #[test]
    fn slack_special_mentions_become_words() {
        assert_eq!(
            slack("hi <!channel> and <!here|here> <!everyone>", 200),
            "hi [channel] and [here] [everyone]"
        );
        assert_eq!(
            slack("<!subteam^S123|@team> <@U123> <#C42|general>", 200),
            "[group] [user] [channel]"
        );
    }

    #[test]
    fn slack_link_labels_are_dropped() {
        assert_eq!(
            slack("see <https://evil.example/x|Open in AgentKey>", 200),
            "see https://evil.example/x"
        );
    }

    #[test]
    fn slack_markup_characters_are_escaped() {
        assert_eq!(
            slack("a < b && c > d <unterminated", 200),
            "a &lt; b &amp;&amp; c &gt; d &lt;unterminated"
        );
        assert!(!slack("<b>bold</b> <script>", 200).contains('<'));
    }

    #[test]
    fn plain_mass_mentions_are_broken_everywhere() {
        for out in [
            slack("ping @channel @Here", 200),
            discord("ping @everyone @here", 200),
        ] {
            assert!(
                !out.contains("@channel")
                    && !out.contains("@everyone")
                    && !out.contains("@here")
                    && !out.contains("@Here"),
                "{out}"
            );
            assert!(out.contains('\u{200B}'));
        }
    }

    #[test]
    fn escaping_never_pushes_slack_text_past_its_cap() {
        for text in [
            "<".repeat(1000),
            "&".repeat(1000),
            format!("a{}", "&".repeat(600)),
        ] {
            let out = slack(&text, 1000);
            assert!(
                out.chars().count() <= 1000,
                "{} characters",
                out.chars().count()
            );
            let body = out.trim_end_matches('…');
            if let Some(amp) = body.rfind('&') {
                assert!(
                    body[amp..].contains(';'),
                    "a broken entity at the end: {:?}",
                    &body[amp..]
                );
            }
        }
    }

    #[test]
    fn discord_mentions_and_masked_links_are_neutralised() {
        assert_eq!(
            discord("<@123> <@!456> <@&789> <#42>", 200),
            "[user] [user] [role] [channel]"
        );
        let out = discord("[Approve here](https://evil.example)", 200);
        assert_eq!(out, "\\[Approve here\\](https://evil.example)");
    }

    #[test]
    fn mail_html_escapes_markup() {
        assert_eq!(
            mail_html("<script>alert(1)</script>\nnext", 200),
            "&lt;script&gt;alert(1)&lt;/script&gt; next"
        );
        assert_eq!(mail_text("Subject\r\nBcc: x@y", 200), "Subject Bcc: x@y");
    }
}
