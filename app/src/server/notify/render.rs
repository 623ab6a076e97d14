//! One alert, three renderings: a Slack Block Kit message, a Discord embed and a mail with
//! plain text and HTML parts. Every agent-written field passes through [`super::neutral`]
//! for its destination; only AgentKey's own link is trusted.

use serde_json::{Value, json};

use super::Alert;
use super::neutral::{self, caps};
use crate::model::AlertEvent;
use crate::server::{clock, mail::Mail};

/// Title line of an alert.
pub fn title(alert: &Alert) -> String {
    match alert.event {
        AlertEvent::AccessRequested => "New access request".into(),
        AlertEvent::ToolSuggested => "New tool suggestion".into(),
        AlertEvent::GuideSuggested => "New guide suggestion".into(),
        AlertEvent::Decided => format!("Access {}", alert.decision.as_deref().unwrap_or("decided")),
        AlertEvent::Reminder => alert.decision.clone().unwrap_or_else(|| "Reminder".into()),
    }
}

/// The labelled fields of an alert, agent-written values still raw.
fn fields(alert: &Alert) -> Vec<(&'static str, &str, usize)> {
    let mut out = vec![("Agent", alert.agent_name.as_str(), caps::NAME)];
    out.push((
        if alert.event == AlertEvent::ToolSuggested {
            "Suggested tool"
        } else {
            "Tool"
        },
        alert.tool_name.as_str(),
        caps::NAME,
    ));
    if let Some(url) = alert.tool_url.as_deref() {
        out.push(("URL", url, caps::URL));
    }
    if let Some(reviewer) = alert.reviewer.as_deref() {
        out.push(("Reviewer", reviewer, caps::NAME));
    }
    out
}

/// Label of the free-text part.
fn text_label(alert: &Alert) -> &'static str {
    match alert.event {
        AlertEvent::AccessRequested | AlertEvent::ToolSuggested => "Reason",
        AlertEvent::GuideSuggested => "Learned",
        AlertEvent::Decided | AlertEvent::Reminder => "Note",
    }
}

fn button_label(alert: &Alert) -> &'static str {
    if alert.event == AlertEvent::Decided {
        "Open the audit log"
    } else {
        "Review in AgentKey"
    }
}

/// Slack incoming-webhook payload (Block Kit).
pub fn slack(alert: &Alert) -> Value {
    let field_blocks: Vec<Value> = fields(alert)
        .into_iter()
        .map(|(label, value, cap)| json!({ "type": "mrkdwn", "text": format!("*{label}*\n{}", or_dash(neutral::slack(value, cap))) }))
        .collect();
    let summary = format!(
        "{}: {} → {}",
        title(alert),
        neutral::slack(&alert.agent_name, caps::NAME),
        neutral::slack(&alert.tool_name, caps::NAME)
    );
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": title(alert) } }),
        json!({ "type": "section", "fields": field_blocks }),
    ];
    if !alert.text.trim().is_empty() {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn",
            "text": format!("*{}*\n{}", text_label(alert), neutral::slack(&alert.text, caps::TEXT)) } }));
    }
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn",
        "text": format!("{} · {}", neutral::slack(&alert.org_name, caps::NAME), clock::iso(alert.at)) }] }));
    blocks.push(
        json!({ "type": "actions", "elements": [{ "type": "button", "style": "primary",
        "text": { "type": "plain_text", "text": button_label(alert) }, "url": alert.link }] }),
    );
    json!({ "text": summary, "blocks": blocks })
}

/// Discord webhook payload (one embed); `allowed_mentions` empty so nothing can ping.
pub fn discord(alert: &Alert) -> Value {
    let fields: Vec<Value> = fields(alert)
        .into_iter()
        .map(|(label, value, cap)| json!({ "name": label, "value": or_dash(neutral::discord(value, cap)), "inline": true }))
        .collect();
    let description = if alert.text.trim().is_empty() {
        String::new()
    } else {
        format!(
            "**{}:** {}",
            text_label(alert),
            neutral::discord(&alert.text, caps::TEXT)
        )
    };
    json!({
        "username": "AgentKey",
        "allowed_mentions": { "parse": [] },
        "embeds": [{
            "title": title(alert),
            "url": alert.link,
            "description": description,
            "fields": fields,
            "footer": { "text": format!("{} · {}", neutral::discord(&alert.org_name, caps::NAME), button_label(alert)) },
            "timestamp": clock::iso(alert.at),
        }],
    })
}

/// Alert mail to one member.
pub fn mail(alert: &Alert, to: &str, message_id: &str) -> Mail {
    let subject = neutral::mail_text(
        &format!(
            "[AgentKey] {}: {} → {}",
            title(alert),
            alert.agent_name,
            alert.tool_name
        ),
        caps::SUBJECT,
    );
    let mut text = format!("{}\n\n", title(alert));
    let mut rows = String::new();
    for (label, value, cap) in fields(alert) {
        text.push_str(&format!("{label}: {}\n", neutral::mail_text(value, cap)));
        rows.push_str(&format!(
            "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
            neutral::mail_html(value, cap)
        ));
    }
    if !alert.text.trim().is_empty() {
        text.push_str(&format!(
            "{}: {}\n",
            text_label(alert),
            neutral::mail_text(&alert.text, caps::TEXT)
        ));
        rows.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            text_label(alert),
            neutral::mail_html(&alert.text, caps::TEXT)
        ));
    }
    let org = neutral::mail_text(&alert.org_name, caps::NAME);
    text.push_str(&format!("\n{}: {}\n\n{org} · {}\nYou receive this because you turned on alert mail in AgentKey's settings.\n", button_label(alert), alert.link, clock::iso(alert.at)));
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><table cellpadding=\"4\">{rows}</table>\
         <p><a href=\"{}\">{}</a></p><p style=\"color:#666\">{} · {}<br>You receive this because you turned on alert mail in AgentKey's settings.</p></body></html>",
        neutral::mail_html(&title(alert), caps::NAME),
        crate::server::mail::escape_html(&alert.link),
        button_label(alert),
        neutral::mail_html(&alert.org_name, caps::NAME),
        clock::iso(alert.at),
    );
    Mail {
        to: to.to_owned(),
        subject,
        text,
        html,
        message_id: Some(message_id.to_owned()),
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() { "—".into() } else { text }
}
