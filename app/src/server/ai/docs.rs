//! The readable text of a documentation page: tags, scripts and styles dropped, block
//! elements as line breaks, the common entities decoded, blank lines dropped. Good enough
//! for a model to read; not an HTML parser.

/// How much of a page's text goes to the model.
pub const TEXT_CAP: usize = 24_000;

/// Elements whose content is never text for a reader.
const SKIPPED: [&str; 6] = ["script", "style", "noscript", "svg", "template", "iframe"];
/// Elements that start a new line.
const BLOCKS: [&str; 20] = [
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "pre", "section", "article", "header",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "title",
];

/// The page's text, at most [`TEXT_CAP`] characters.
pub fn page_text(body: &str, html: bool) -> String {
    let raw = if html {
        strip_html(body)
    } else {
        body.to_owned()
    };
    let mut out = String::new();
    for line in raw.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        out.push_str(&line);
        out.push('\n');
        if out.len() > TEXT_CAP {
            break;
        }
    }
    out.chars().take(TEXT_CAP).collect()
}

fn strip_html(html: &str) -> String {
    // One lower-case copy for finding close tags: ASCII lowering keeps every byte offset, so
    // the scan stays linear however many skipped elements the page has.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut at = 0;
    while let Some(found) = html[at..].find('<') {
        let start = at + found;
        out.push_str(&decode_entities(&html[at..start]));
        if html[start..].starts_with("<!--") {
            at = html[start + 4..]
                .find("-->")
                .map_or(html.len(), |end| start + 4 + end + 3);
            continue;
        }
        let Some(close) = html[start..].find('>') else {
            at = html.len();
            break;
        };
        let tag = &html[start + 1..start + close];
        at = start + close + 1;
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let self_closing = tag.ends_with('/');
        if !tag.starts_with('/') && !self_closing && SKIPPED.contains(&name.as_str()) {
            // Skip to the end of the matching close tag.
            let closing = format!("</{name}");
            at = lower[at..]
                .find(&closing)
                .and_then(|i| lower[at + i..].find('>').map(|j| at + i + j + 1))
                .unwrap_or(html.len());
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        } else if !name.is_empty() {
            out.push(' ');
        }
    }
    out.push_str(&decode_entities(&html[at..]));
    out
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity = rest[1..]
            .find(';')
            .filter(|n| *n <= 10)
            .map(|n| &rest[1..=n]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (entity, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &rest[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_lines_of_text_without_scripts_or_styles() {
        let html = "<html><head><title>Acme API</title><style>p{color:red}</style>\
                    <SCRIPT>alert('x')</SCRIPT></head><body><!-- note -->\
                    <h1>Auth</h1><p>Send <code>Authorization: Bearer &lt;token&gt;</code>.</p>\
                    <ul><li>GET /v1/items</li><li>POST&nbsp;/v1/items &amp; more</li></ul>\
                    <p>Caf&#233; &#x2014; 5000/hour</p></body></html>";
        let text = page_text(html, true);
        assert_eq!(
            text,
            "Acme API\nAuth\nSend Authorization: Bearer <token> .\nGET /v1/items\nPOST /v1/items & more\nCafé — 5000/hour\n"
        );
    }

    #[test]
    fn broken_markup_and_unknown_entities_do_not_panic() {
        for input in [
            "<p>unclosed",
            "<script>never closed",
            "a &bogus; b &",
            "&#xZZ; <",
            "é<é>é",
        ] {
            let _ = page_text(input, true);
        }
        assert_eq!(page_text("a &bogus; b", true), "a &bogus; b\n");
    }

    #[test]
    fn many_skipped_elements_and_self_closing_ones_keep_the_text() {
        let html = format!(
            "{}<p>kept</p><svg/><p>also kept</p>",
            "<svg></svg>".repeat(50_000)
        );
        assert_eq!(page_text(&html, true), "kept\nalso kept\n");
    }

    #[test]
    fn plain_text_is_capped() {
        let long = "word ".repeat(10_000);
        assert!(page_text(&long, false).chars().count() <= TEXT_CAP);
    }
}
