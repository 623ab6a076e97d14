//! What a reviewer weighs beside a decision: the requesting agent's standing (who registered
//! it, its last activity, what it holds, what was denied to it before) and, for a guide
//! suggestion, the guide as accepting it would leave it.

use leptos::prelude::*;

use crate::model::{AccessRequestView, AgentContext, GuideSuggestionView, guide_after};
use crate::ui::countdown::ago_view;
use crate::ui::widgets::{short_time, shown};

/// One line under the request: registered by, last active, holds, denied before. A denial of
/// the tool asked for now comes first and stands out.
pub(super) fn agent_line(r: &AccessRequestView, agent: Option<AgentContext>) -> AnyView {
    let Some(a) = agent else {
        return ().into_any();
    };
    let active = match a.last_used_at.as_deref() {
        Some(at) => view! { " · last active " {ago_view(at)} }.into_any(),
        None => " · has not used its key yet".into_any(),
    };
    let holds = if a.holds.is_empty() {
        " · holds nothing yet".to_owned()
    } else {
        let names: Vec<String> = a
            .holds
            .iter()
            .map(|g| match g.expires_at.as_deref() {
                Some(until) => format!("{} (until {})", shown(&g.tool_name), short_time(until)),
                None => shown(&g.tool_name),
            })
            .collect();
        format!(
            " · holds {}{}",
            names.join(", "),
            more(a.holds_total, a.holds.len())
        )
    };
    let mut denials = a.denials.clone();
    // Stable: the tool asked for now first, then newest first as listed.
    denials.sort_by_key(|d| d.tool_id != r.tool_id);
    let denied = (!denials.is_empty()).then(|| {
        let extra = more(a.denials_total, denials.len());
        view! {
            " · denied before: "
            {denials.into_iter().map(|d| {
                let same = d.tool_id == r.tool_id;
                let reason = d.reason.as_deref().map(|t| format!(": “{}”", shown(t))).unwrap_or_default();
                let when = d.decided_at.as_deref().map(short_time).unwrap_or_default();
                let by = d.decided_by.clone().unwrap_or_default();
                view! {
                    <span class="denied-before" class:same-tool=same title=format!("Denied by {by} {when}")>
                        {format!("{}{reason}", shown(&d.tool_name))}
                    </span>
                    " "
                }
            }).collect_view()}
            {extra}
        }
    });
    view! {
        <p class="agent-context muted">
            "Registered by " <span class="registrant">{a.created_by.clone()}</span>
            {active}
            <span class="holds">{holds}</span>
            {denied}
            " · " <a href=format!("/audit?agent_id={}", a.agent_id)>"history"</a>
        </p>
    }
    .into_any()
}

/// ", and 3 more" when `total` exceeds the `listed` ones.
fn more(total: i64, listed: usize) -> String {
    match total - listed as i64 {
        n if n > 0 => format!(" and {n} more"),
        _ => String::new(),
    }
}

/// The guide after accepting the suggestion as suggested, the added text marked; says so when
/// the guide moved on since the agent read it.
pub(super) fn guide_preview(g: &GuideSuggestionView) -> impl IntoView {
    let after = guide_after(&g.current_guide, &g.learned);
    let kept = after
        .strip_suffix(g.learned.as_str())
        .unwrap_or_default()
        .to_owned();
    let moved = (g.current_version != g.base_version).then(|| {
        view! {
            <p class="muted">{format!(
                "The guide changed since the agent read version {}: this adds to version {}.",
                g.base_version, g.current_version
            )}</p>
        }
    });
    view! {
        <details class="guide-preview">
            <summary>{format!("Preview {}'s guide after this change (version {})", shown(&g.tool_name), g.current_version + 1)}</summary>
            {moved}
            <pre class="guide-text" tabindex="0">{shown(&kept)}<ins>{shown(&g.learned)}</ins></pre>
        </details>
    }
}
