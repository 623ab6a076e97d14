//! Narrowing a proxied grant in its inbox row before approving: read-only, a daily budget,
//! a subset of the tool's rules. Kept per request id across refetches.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::model::{AccessRequestView, GrantDuration};

/// The narrowing typed into each row, by request id.
pub type Narrowing = RwSignal<HashMap<String, Narrow>>;

/// A proxied grant's narrowing as typed into its row.
#[derive(Clone, Default)]
pub struct Narrow {
    pub read_only: bool,
    pub calls_per_day: String,
    /// The tool's rules kept for this grant (none checked: all of them).
    pub rules: Vec<String>,
    /// The grant's length picked by the reviewer (`8h`…; empty: what the agent asked for, else
    /// the tool's default).
    pub duration: String,
}

impl Narrow {
    pub fn is_set(&self) -> bool {
        self.read_only || !self.calls_per_day.trim().is_empty() || !self.rules.is_empty()
    }
}

/// Read-only and a daily budget for a proxied tool's grant, set before approving.
pub fn inputs(r: &AccessRequestView, narrow: Narrowing) -> impl IntoView {
    let (id, id2, id3, id4) = (r.id.clone(), r.id.clone(), r.id.clone(), r.id.clone());
    let default = match r.calls_per_day {
        Some(n) => format!("tool default {n}"),
        None => "no limit".to_owned(),
    };
    view! {
        <div class="narrow">
            <span class="muted">"Through the proxy:"</span>
            <label><input type="checkbox" class="read-only"
                prop:checked=move || narrow.with(|n| n.get(&id).is_some_and(|s| s.read_only))
                on:change=move |ev| { let on = event_target_checked(&ev); narrow.update(|n| n.entry(id2.clone()).or_default().read_only = on); }/>
                " Read-only (GET/HEAD)"</label>
            " "
            <label>"Calls per day "
                <input type="number" min="1" class="calls-per-day" placeholder=default
                    prop:value=move || narrow.with(|n| n.get(&id3).map(|s| s.calls_per_day.clone()).unwrap_or_default())
                    on:input=move |ev| { let v = event_target_value(&ev); narrow.update(|n| n.entry(id4.clone()).or_default().calls_per_day = v); }/>
            </label>
            {rule_choices(r, narrow)}
        </div>
    }
}

/// The tool's rules as checkboxes: the checked ones are all the grant keeps.
fn rule_choices(r: &AccessRequestView, narrow: Narrowing) -> impl IntoView {
    (!r.tool_rules.is_empty()).then(|| {
        let boxes = r
            .tool_rules
            .iter()
            .map(|rule| {
                let (id, id2, text) = (r.id.clone(), r.id.clone(), rule.clone());
                let (rule, rule2) = (rule.clone(), rule.clone());
                view! {
                    <label><input type="checkbox" class="rule"
                        prop:checked=move || narrow.with(|n| n.get(&id).is_some_and(|s| s.rules.contains(&rule)))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            narrow.update(|n| {
                                let rules = &mut n.entry(id2.clone()).or_default().rules;
                                rules.retain(|x| *x != rule2);
                                if on { rules.push(rule2.clone()); }
                            });
                        }/>
                        " " <code>{text}</code></label>
                }
            })
            .collect_view();
        view! { <span class="muted">"Only:"</span> {boxes} }
    })
}

/// Lengths a reviewer picks from (those within the tool's maximum are offered).
const CHOICES: &[&str] = &[
    "30m", "1h", "4h", "8h", "1d", "7d", "30d", "90d", "standing",
];

/// The grant's length, picked before approving: what the agent asked for (else the tool's
/// default) unless the reviewer picks another within the tool's maximum.
pub fn duration_choice(r: &AccessRequestView, narrow: Narrowing) -> impl IntoView {
    let asked = r
        .renewal
        .as_ref()
        .and_then(|n| n.duration)
        .or(r.requested_duration);
    // What the server gives without a pick: the ask within the tool's maximum, else the
    // tool's default (a renewal: the length the grant had).
    let fallback = r.offered_duration.unwrap_or(GrantDuration::Standing);
    let first = match asked {
        Some(d) if d == fallback => format!("as asked: {}", d.label()),
        Some(d) => format!("{} (asked {}, over the limit)", fallback.label(), d.label()),
        None if r.renewal.is_some() => format!("as before: {}", fallback.label()),
        None => format!("tool default: {}", fallback.label()),
    };
    let max = r.max_duration;
    let options = CHOICES
        .iter()
        .filter_map(|c| GrantDuration::parse(c).ok())
        .filter(|d| d.within(max) && *d != fallback)
        .map(|d| view! { <option value=d.to_string()>{d.label()}</option> })
        .collect_view();
    let (id, id2) = (r.id.clone(), r.id.clone());
    view! {
        <label class="duration">"For "
            <select class="duration-choice"
                prop:value=move || narrow.with(|n| n.get(&id).map(|s| s.duration.clone()).unwrap_or_default())
                on:change=move |ev| { let v = event_target_value(&ev); narrow.update(|n| n.entry(id2.clone()).or_default().duration = v); }>
                <option value="">{first}</option>
                {options}
            </select>
            {max.map(|m| view! { <span class="muted">{format!(" (at most {})", m.label())}</span> })}
        </label>
    }
}
