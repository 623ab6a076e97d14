//! The tool catalog: health badges, create (also from a suggestion), write-only credentials,
//! the usage guide editor (in [`super::guide`]), delete with its impact spelled out.

use std::collections::HashSet;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::delivery::{DeliveryFields, DeliveryForm, ToolDelivery};
use super::fields::{FieldErrors, FieldMessage};
use super::mutation::mutation;
use super::widgets::{dialogs, error_box, live, short_time, shown};
use crate::api::inbox::get_inbox;
use crate::api::tools::{
    create_tool, delete_tool, list_tools, set_tool_credential, tool_delete_impact, update_tool,
};
use crate::model::{AuthType, CredentialMode, ToolView};

#[component]
pub fn ToolsPage() -> impl IntoView {
    let live = live();
    let tools = super::widgets::rpc_resource(move || live.0.get(), |_| list_tools());
    provide_context(super::lifecycle::Holders(super::widgets::rpc_resource(
        move || live.0.get(),
        |_| crate::api::inbox::list_requests(),
    )));
    super::usage::provide_usage(live.0);
    provide_context(super::draft::AiModel(super::widgets::rpc_resource(
        || (),
        |_| crate::api::tools::guide_ai(),
    )));
    let search = RwSignal::new(String::new());
    // Tools whose editors are open: kept across refetches and re-renders of a row.
    let open = RwSignal::new(HashSet::<String>::new());
    let shown = move || {
        let needle = search.get().to_lowercase();
        let list = tools.get().and_then(Result::ok).unwrap_or_default();
        list.into_iter()
            .filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle))
            .collect::<Vec<ToolView>>()
    };
    view! {
        {super::widgets::page_title("Tools")}
        <h1>"Tools"</h1>
        {expect_context::<crate::model::MemberView>().role.can_administer().then(|| view! {
            <CreateTool/>
            <super::catalog::CatalogTransfer/>
        })}
        <div class="filters">
            <input type="search" placeholder="Search tools" aria-label="Search tools" bind:value=search/>
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || tools.get().map(|r| match r {
                Ok(list) if list.is_empty() => {
                    view! { <p class="empty card" id="tools-empty">"No tools yet. A tool is a service your agents use (GitHub, Linear, Stripe…); AgentKey keeps its secret and hands it out, or calls it for them, once a human approves. Add the first one above."</p> }.into_any()
                }
                Ok(_) => ().into_any(),
                Err(err) => error_box(&err),
            })}
            // Keyed by the whole view: a refetch re-renders only the tools that changed, so an
            // editor open on another tool keeps what is being typed into it.
            <ul class="rows" id="tools">
                <For each=shown key=|t| t.clone() let:tool>{tool_row(tool, open)}</For>
            </ul>
        </Transition>
        <super::lifecycle::AutoRules/>
    }
}

#[component]
fn CreateTool() -> impl IntoView {
    let query = use_query_map();
    let from = move || {
        query
            .with(|q| q.get("from_suggestion"))
            .filter(|s| !s.is_empty())
    };
    let inbox = super::widgets::rpc_resource(from, |from| async move {
        match from {
            Some(_) => get_inbox().await.map(Some),
            None => Ok(None),
        }
    });
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let mode = RwSignal::new(String::from("shared"));
    let secret = RwSignal::new(String::new());
    let instructions = RwSignal::new(String::new());
    let delivery = DeliveryForm::new();
    let busy = RwSignal::new(false);
    let errors = FieldErrors::new(&["name", "url", "description", "credential", "instructions"]);
    // Prefill from the suggestion being answered.
    Effect::new(move |_| {
        if let (Some(id), Some(Ok(Some(inbox)))) = (from(), inbox.get())
            && let Some(s) = inbox.tool_suggestions.iter().find(|s| s.id == id)
        {
            name.set(s.name.clone());
            url.set(s.url.clone().unwrap_or_default());
        }
    });
    let backers = move || {
        let id = from()?;
        let inbox = inbox.get()?.ok()??;
        inbox
            .tool_suggestions
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.supporters.len())
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mode = CredentialMode::parse(&mode.get_untracked()).unwrap_or(CredentialMode::Shared);
        let (how, proxy) = delivery.value();
        let call = create_tool(
            name.get_untracked(),
            description.get_untracked(),
            url.get_untracked(),
            AuthType::ApiKey,
            mode,
            secret.get_untracked(),
            instructions.get_untracked(),
            from(),
            Some(how),
            proxy,
        );
        mutation()
            .busy(busy)
            .fields(errors)
            .run(call, move |created| {
                for field in [name, url, description, secret, instructions] {
                    field.set(String::new());
                }
                delivery.clear();
                match created.opened_requests.len() {
                    0 => format!("{} added.", created.tool.name),
                    opened => format!(
                        "{} added; {opened} pending request(s) opened for its backers.",
                        created.tool.name
                    ),
                }
            });
    };
    view! {
        <form class="card grid-form" on:submit=submit aria-label="Add a tool" novalidate>
            <h2>"Add a tool"</h2>
            {move || backers().map(|n| view! { <p class="hint" id="backers-note">{format!("Answers a suggestion: its {n} backing agent(s) will get pending requests.")}</p> })}
            <label>"Name" <input id="tool-name" required maxlength="120" aria-describedby="tool-name-error" bind:value=name/>
                <FieldMessage errors field="name" id="tool-name-error"/></label>
            <label>"URL" <input id="tool-url" type="text" inputmode="url" placeholder="github.com" maxlength="500" aria-describedby="tool-url-error" bind:value=url/>
                <FieldMessage errors field="url" id="tool-url-error"/></label>
            <label>"Description" <input id="tool-description" maxlength="500" aria-describedby="tool-description-error" bind:value=description/>
                <FieldMessage errors field="description" id="tool-description-error"/></label>
            <label>"Credential"
                <select id="tool-mode" bind:value=mode>
                    <option value="shared">"One shared secret"</option>
                    <option value="per_agent">"A secret per agent (entered at approval)"</option>
                </select>
            </label>
            <label>"Secret (write-only)" <input id="tool-secret" type="password" autocomplete="off" aria-describedby="tool-secret-error" bind:value=secret/>
                <FieldMessage errors field="credential" id="tool-secret-error"/></label>
            <label class="wide">"Usage guide for agents" <textarea id="tool-instructions" rows="3" aria-describedby="tool-instructions-error" bind:value=instructions></textarea>
                <FieldMessage errors field="instructions" id="tool-instructions-error"/></label>
            <DeliveryFields form=delivery/>
            <button type="submit" class="primary" id="create-tool" disabled=move || busy.get()>"Add tool"</button>
        </form>
    }
}

/// One tool: what it is and how healthy its secret is; admins open its editors and delete it.
fn tool_row(t: ToolView, open: RwSignal<HashSet<String>>) -> impl IntoView {
    let tool_id = t.id.clone();
    let editing = Memo::new(move |_| open.with(|o| o.contains(&tool_id)));
    let toggle_id = t.id.clone();
    let toggle = move |_| {
        open.update(|o| {
            if !o.remove(&toggle_id) {
                o.insert(toggle_id.clone());
            }
        })
    };
    let id = t.id.clone();
    let name = t.name.clone();
    let delete = move |_| {
        let (id, name, dialogs, m) = (id.clone(), name.clone(), dialogs(), mutation());
        let confirmed = m.clone();
        m.then(tool_delete_impact(id.clone()), move |(grants, pending)| {
            dialogs.confirm(
                format!("Delete {name}?"),
                format!(
                    "{grants} active grant(s) end and {pending} pending request(s) close. Agents lose access at once."
                ),
                "Delete tool",
                move || confirmed.run(delete_tool(id.clone()), |()| "Tool deleted.".to_owned()),
            );
        });
    };
    let shared = t.credential_mode == CredentialMode::Shared;
    let editors = t.clone();
    view! {
        <li class="row tool" data-id=t.id.clone()>
            <div class="main">
                <strong>{shown(&t.name)}</strong>
                " " <span class="badge">{t.credential_mode.as_str()}</span>
                " " <span class="badge delivery">{t.delivery.as_str()}</span>
                {t.health.iter().map(|h| view! { " " <span class=format!("badge {}", h.severity())>{h.label()}</span> }).collect_view()}
                <p class="muted">{shown(&t.description)} {t.url.as_deref().map(|u| format!(" · {}", shown(u)))}</p>
                <span class="muted">
                    {if t.credential_configured { format!("secret v{}", t.credential_version) } else { "no shared secret".into() }}
                    {t.credential_rotated_at.as_deref().map(|r| format!(" · rotated {}", short_time(r)))}
                    {format!(" · guide v{}", t.instructions_version)}
                    {(t.approvals_required > 1).then(|| format!(" · {} approvals per request", t.approvals_required))}
                    {t.max_duration.map(|d| format!(" · grants at most {}", d.label()))}
                    {t.always_human.then_some(" · always needs a human")}
                </span>
                <p class="muted delivery-summary">{super::delivery::summary(&t)}</p>
                <super::usage::RowActivity id=t.id.clone() tool=true/>
                <super::lifecycle::ToolHolders tool_id=t.id.clone()/>
                <Show when=move || editing.get()>
                    <super::quorum::Quorum id=editors.id.clone() current=editors.approvals_required/>
                    <super::lifecycle::ToolDurations tool=editors.clone()/>
                    <super::lifecycle::AlwaysHuman tool=editors.clone()/>
                    <ToolDetails tool=editors.clone()/>
                    <ToolDelivery tool=editors.clone()/>
                    {shared.then(|| view! { <ToolSecret id=editors.id.clone()/> })}
                    <super::guide::GuideEditor id=editors.id.clone() current=editors.instructions.clone()/>
                </Show>
            </div>
            {expect_context::<crate::model::MemberView>().role.can_administer().then(|| view! {
                <div class="actions">
                    <button type="button" on:click=toggle>{move || if editing.get() { "Close" } else { "Edit" }}</button>
                    <button type="button" class="danger" on:click=delete>"Delete"</button>
                </div>
            })}
        </li>
    }
}

/// Name, description and URL of a tool.
#[component]
fn ToolDetails(tool: ToolView) -> impl IntoView {
    let name = RwSignal::new(tool.name.clone());
    let description = RwSignal::new(tool.description.clone());
    let url = RwSignal::new(tool.url.clone().unwrap_or_default());
    let errors = FieldErrors::new(&["name", "description", "url"]);
    let err_id = |field: &str| format!("tool-{field}-error-{}", tool.id);
    let (name_err, description_err, url_err) =
        (err_id("name"), err_id("description"), err_id("url"));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation().fields(errors).run(
            update_tool(
                tool.id.clone(),
                name.get_untracked(),
                description.get_untracked(),
                url.get_untracked(),
            ),
            |t| format!("{} saved.", t.name),
        );
    };
    view! {
        <form class="inline-form tool-details" on:submit=save novalidate>
            <label>"Name " <input required maxlength="120" aria-describedby=name_err.clone() bind:value=name/>
                <FieldMessage errors field="name" id=name_err/></label>
            <label>"Description " <input maxlength="500" aria-describedby=description_err.clone() bind:value=description/>
                <FieldMessage errors field="description" id=description_err/></label>
            <label>"URL " <input type="text" inputmode="url" placeholder="github.com" maxlength="500" aria-describedby=url_err.clone() bind:value=url/>
                <FieldMessage errors field="url" id=url_err/></label>
            <button type="submit">"Save details"</button>
        </form>
    }
}

/// A new shared secret, write-only: the field empties once it is saved.
#[component]
fn ToolSecret(id: String) -> impl IntoView {
    let secret = RwSignal::new(String::new());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation().run(
            set_tool_credential(id.clone(), secret.get_untracked()),
            move |t| {
                secret.set(String::new());
                format!(
                    "Secret of {} saved (version {}). Agents get it on their next fetch.",
                    t.name, t.credential_version
                )
            },
        );
    };
    view! {
        <form class="inline-form" on:submit=save>
            <label>"New secret (write-only) " <input type="password" autocomplete="off" class="tool-secret-input" bind:value=secret/></label>
            <button type="submit">"Save secret"</button>
        </form>
    }
}
