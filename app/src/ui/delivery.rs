//! How approved agents use a tool's credential, in the tool forms: fetch (they receive the
//! secret), proxy (AgentKey calls the tool's API for them and they never see it, the default
//! for new tools) or both, with the proxy's upstream, injection rule, allow-list and budget.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::shown;
use crate::api::tools::set_tool_proxy;
use crate::model::{Delivery, ProxySettings, ToolView};

/// The fields of the delivery form, as typed.
#[derive(Clone, Copy)]
pub struct DeliveryForm {
    delivery: RwSignal<String>,
    upstream: RwSignal<String>,
    inject: RwSignal<String>,
    allow: RwSignal<String>,
    calls: RwSignal<String>,
}

impl DeliveryForm {
    /// Empty, proxy selected: the safer default for a new tool.
    pub fn new() -> Self {
        Self::from_parts(Delivery::Proxy, &ProxySettings::default())
    }

    /// Filled from a tool's current settings.
    pub fn of(tool: &ToolView) -> Self {
        Self::from_parts(tool.delivery, &tool.proxy)
    }

    fn from_parts(delivery: Delivery, p: &ProxySettings) -> Self {
        DeliveryForm {
            delivery: RwSignal::new(delivery.as_str().to_owned()),
            upstream: RwSignal::new(p.upstream_url.clone().unwrap_or_default()),
            inject: RwSignal::new(p.inject.clone().unwrap_or_default()),
            allow: RwSignal::new(p.allow.join("\n")),
            calls: RwSignal::new(p.calls_per_day.map(|n| n.to_string()).unwrap_or_default()),
        }
    }

    /// What the form says; a budget that is not a number is sent as none and the field keeps
    /// its text (the browser's number input refuses letters anyway).
    pub fn value(&self) -> (Delivery, ProxySettings) {
        let text = |s: RwSignal<String>| Some(s.get_untracked()).filter(|v| !v.trim().is_empty());
        let delivery = Delivery::parse(&self.delivery.get_untracked()).unwrap_or(Delivery::Proxy);
        let settings = ProxySettings {
            upstream_url: text(self.upstream),
            inject: text(self.inject),
            allow: self
                .allow
                .get_untracked()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            calls_per_day: self.calls.get_untracked().trim().parse().ok(),
        };
        (delivery, settings)
    }

    pub fn clear(&self) {
        self.delivery.set(Delivery::Proxy.as_str().to_owned());
        for s in [self.upstream, self.inject, self.allow, self.calls] {
            s.set(String::new());
        }
    }
}

/// The delivery fields, inside a form of the caller.
#[component]
pub fn DeliveryFields(form: DeliveryForm) -> impl IntoView {
    let proxied = move || form.delivery.get() != Delivery::Fetch.as_str();
    view! {
        <label>"Agents use the credential"
            <select class="tool-delivery" bind:value=form.delivery>
                <option value="proxy">"Through AgentKey (proxy): they never see the secret"</option>
                <option value="both">"Either: through the proxy or by fetching it"</option>
                <option value="fetch">"By fetching it: they receive the secret"</option>
            </select>
        </label>
        <Show when=proxied>
            <label>"Upstream API base URL"
                <input type="text" inputmode="url" class="tool-upstream" maxlength="500" placeholder="https://api.github.com" bind:value=form.upstream/>
            </label>
            <label>"Where the secret goes"
                <input class="tool-inject" maxlength="200" placeholder="Authorization: Bearer {secret}" bind:value=form.inject/>
            </label>
            <label class="wide">"Allowed calls, one per line (empty: every call under the base URL)"
                <textarea class="tool-allow" rows="2" placeholder="GET /repos/**\nPOST /repos/*/issues" bind:value=form.allow></textarea>
            </label>
            <label>"Calls per day per grant (empty: no limit)"
                <input type="number" min="1" class="tool-calls" bind:value=form.calls/>
            </label>
        </Show>
    }
}

/// Changes how agents use an existing tool.
#[component]
pub fn ToolDelivery(tool: ToolView) -> impl IntoView {
    let form = DeliveryForm::of(&tool);
    let id = tool.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (delivery, settings) = form.value();
        mutation().run(set_tool_proxy(id.clone(), delivery, settings), |t| {
            format!("{}: {}", t.name, summary(&t))
        });
    };
    view! {
        <form class="inline-form tool-delivery-form" on:submit=save>
            <DeliveryFields form=form/>
            <button type="submit">"Save delivery"</button>
        </form>
    }
}

/// One line on how agents use the tool.
pub fn summary(t: &ToolView) -> String {
    match t.delivery {
        Delivery::Fetch => "agents fetch the secret".to_owned(),
        d => {
            let to = t
                .proxy
                .upstream_url
                .as_deref()
                .map(shown)
                .unwrap_or_default();
            let rules = if t.proxy.allow.is_empty() {
                "every call".to_owned()
            } else {
                t.proxy.allow.join(", ")
            };
            let budget = t
                .proxy
                .calls_per_day
                .map(|n| format!(", {n} calls/day per grant"))
                .unwrap_or_default();
            let how = if d == Delivery::Both {
                "proxy or fetch"
            } else {
                "proxy only"
            };
            format!("{how} → {to} ({rules}{budget})")
        }
    }
}
