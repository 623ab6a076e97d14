//! Catalog transfer on the tools page: export as JSON or YAML (never with secrets), import
//! either after a dry-run plan.

use leptos::prelude::*;

use super::mutation::mutation;
use crate::api::tools::{export_catalog, import_catalog};
use crate::model::CatalogFormat;

/// Export the catalog as JSON or YAML; import one with a dry-run plan before anything changes.
#[component]
pub fn CatalogTransfer() -> impl IntoView {
    let open = RwSignal::new(false);
    let text = RwSignal::new(String::new());
    let plan = RwSignal::new(None::<crate::model::CatalogPlan>);
    let run = move |apply: bool| {
        mutation().run_quietly(import_catalog(text.get_untracked(), apply), move |p| {
            let said = p.applied.then(|| {
                format!(
                    "Catalog imported: {} created, {} updated.",
                    p.create.len(),
                    p.update.len()
                )
            });
            plan.set(Some(p));
            said
        });
    };
    let export = move |format: CatalogFormat| {
        mutation().then(export_catalog(Some(format)), move |json| {
            text.set(json);
            open.set(true);
            plan.set(None);
        });
    };
    view! {
        <div class="actions">
            <button type="button" id="export-catalog" on:click=move |_| export(CatalogFormat::Json)>"Export catalog (JSON)"</button>
            <button type="button" id="export-catalog-yaml" on:click=move |_| export(CatalogFormat::Yaml)>"Export (YAML)"</button>
            <button type="button" id="import-catalog" on:click=move |_| open.update(|o| *o = !*o)>"Import catalog…"</button>
        </div>
        <Show when=move || open.get()>
            <section class="card" aria-label="Catalog JSON or YAML">
                <p class="hint">"Secrets are never exported. Importing matches tools by name: new ones are created without a secret, existing ones get the new description, URL and guide."</p>
                <textarea id="catalog-json" rows="10" aria-label="Catalog (JSON or YAML)" bind:value=text></textarea>
                <div class="actions">
                    <button type="button" id="preview-import" on:click=move |_| run(false)>"Preview changes"</button>
                    <button type="button" class="primary" id="apply-import"
                        disabled=move || plan.with(|p| p.as_ref().is_none_or(|p| p.applied || !p.refused.is_empty()))
                        on:click=move |_| run(true)>"Apply"</button>
                </div>
                {move || plan.get().map(|p| view! {
                    <ul class="plan" id="import-plan">
                        {p.create.iter().map(|n| view! { <li class="add">{format!("create {n}")}</li> }).collect_view()}
                        {p.update.iter().map(|(n, f)| view! { <li>{format!("update {n}: {}", f.join(", "))}</li> }).collect_view()}
                        {p.unchanged.iter().map(|n| view! { <li class="muted">{format!("unchanged {n}")}</li> }).collect_view()}
                        {p.refused.iter().map(|(n, why)| view! { <li class="error">{format!("refused {n}: {why}")}</li> }).collect_view()}
                    </ul>
                })}
            </section>
        </Show>
    }
}
