//! A tool's quorum: how many distinct reviewers must approve each of its requests.

use leptos::prelude::*;

use super::mutation::mutation;
use crate::api::tools::set_tool_quorum;

/// How many distinct reviewers must approve each request for the tool.
#[component]
pub fn Quorum(id: String, current: i64) -> impl IntoView {
    let value = RwSignal::new(current.to_string());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n: i64 = value.get_untracked().parse().unwrap_or(1);
        mutation().run(set_tool_quorum(id.clone(), n), |t| {
            let warning = t
                .warning
                .map(|w| format!(" Warning: {w}"))
                .unwrap_or_default();
            format!(
                "{} now needs {} approval(s) per request.{warning}",
                t.name, t.approvals_required
            )
        });
    };
    view! {
        <form class="inline-form quorum" on:submit=save>
            <label>"Approvals required "
                <select name="approvals" bind:value=value>
                    <option value="1">"1"</option>
                    <option value="2">"2"</option>
                    <option value="3">"3"</option>
                </select>
            </label>
            <button type="submit">"Save"</button>
        </form>
    }
}
