//! "Draft with AI" in the guide editor: the server's model writes a guide from the tool, an
//! optional docs page and the agents' reasons, and the text streams into the editor as it
//! arrives. Cancel stops it (the stream is dropped, which aborts the request); Discard puts
//! back the text from before. Nothing is saved until the admin presses Save guide.

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use leptos::prelude::*;

use super::widgets::{RpcJson, go_to};
use crate::api::tools::draft_guide;
use crate::model::{AiStatus, DraftFrame, RpcError};

/// Which model drafts guides here (`None`: the button is not shown); read once per page.
#[derive(Clone, Copy)]
pub struct AiModel(pub Resource<Result<AiStatus, RpcError>, RpcJson>);

/// What the draft's status line says; `true` for a problem.
type Note = Option<(bool, String)>;

#[component]
pub fn AiDraft(id: StoredValue<String>, guide: RwSignal<String>) -> impl IntoView {
    let model = move || {
        use_context::<AiModel>()
            .and_then(|m| m.0.get())
            .and_then(Result::ok)
            .and_then(|s| s.model)
    };
    move || model().map(|model| view! { <DraftControls id guide model/> })
}

#[component]
fn DraftControls(id: StoredValue<String>, guide: RwSignal<String>, model: String) -> impl IntoView {
    let docs = RwSignal::new(String::new());
    let running = RwSignal::new(false);
    let note = RwSignal::new(None::<(bool, String)>);
    let docs_error = RwSignal::new(None::<String>);
    let abort = StoredValue::new(None::<AbortHandle>);
    // The editor's text before the draft replaced it, for Discard.
    let before = RwSignal::new(None::<String>);
    let model = StoredValue::new(model);
    let start = move |_| {
        if running.get_untracked() {
            return;
        }
        // A second draft keeps the text from before the first, for Discard.
        if before.with_untracked(Option::is_none) {
            before.set(Some(guide.get_untracked()));
        }
        running.set(true);
        docs_error.set(None);
        note.set(Some((
            false,
            format!("Drafting with {}…", model.get_value()),
        )));
        let (handle, registration) = AbortHandle::new_pair();
        abort.set_value(Some(handle));
        let work = run(
            id.get_value(),
            docs.get_untracked(),
            guide,
            note,
            docs_error,
        );
        leptos::task::spawn_local(async move {
            let _ = Abortable::new(work, registration).await;
            running.try_set(false);
        });
    };
    let cancel = move |_| {
        if let Some(handle) = abort.get_value() {
            handle.abort();
        }
        running.set(false);
        note.set(Some((
            false,
            "Draft cancelled. What arrived is in the editor; Discard puts back the text from before.".into(),
        )));
    };
    let discard = move |_| {
        if let Some(text) = before.get_untracked() {
            guide.set(text);
        }
        before.set(None);
        note.set(None);
    };
    view! {
        <div class="ai-draft">
            <label>"Docs page for the draft (optional) "
                <input type="text" inputmode="url" class="ai-docs-url" placeholder="docs.example.com/api"
                    aria-describedby="ai-docs-error" bind:value=docs/>
            </label>
            {move || docs_error.get().map(|e| view! { <p class="error" id="ai-docs-error" role="alert">{e}</p> })}
            <div class="actions">
                <button type="button" class="ai-draft-start" on:click=start disabled=move || running.get()>
                    {move || format!("Draft with AI ({})", model.get_value())}
                </button>
                <Show when=move || running.get()>
                    <button type="button" class="ai-draft-cancel" on:click=cancel>"Cancel"</button>
                </Show>
                <Show when=move || !running.get() && before.with(Option::is_some)>
                    <button type="button" class="link ai-draft-discard" on:click=discard>"Discard draft"</button>
                </Show>
            </div>
            {move || note.get().map(|(problem, text)| {
                let class = if problem { "error ai-note" } else { "hint ai-note" };
                view! { <p class=class role="status">{text}</p> }
            })}
        </div>
    }
}

/// Calls the server and writes the frames into the editor as they come.
async fn run(
    id: String,
    docs_url: String,
    guide: RwSignal<String>,
    note: RwSignal<Note>,
    docs_error: RwSignal<Option<String>>,
) {
    let stream = match draft_guide(id, docs_url).await {
        Ok(stream) => stream,
        Err(err) if err.is_signed_out() => return go_to("/login"),
        Err(err) => {
            match err.field("docs_url") {
                Some(why) => {
                    docs_error.try_set(Some(why.to_owned()));
                    note.try_set(None);
                }
                None => {
                    note.try_set(Some((true, err.text())));
                }
            }
            return;
        }
    };
    guide.try_set(String::new());
    let mut stream = stream.into_inner();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        let text = match chunk {
            Ok(text) => text,
            Err(err) => {
                note.try_set(Some((true, format!("The draft broke off: {}", err.text()))));
                return;
            }
        };
        buf.push_str(&text);
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            match serde_json::from_str::<DraftFrame>(line.trim_end()) {
                Ok(DraftFrame::Text(t)) => {
                    guide.try_update(|g| g.push_str(&t));
                }
                Ok(DraftFrame::Error(why)) => {
                    note.try_set(Some((
                        true,
                        format!("The draft stopped: {why}. What arrived is in the editor; nothing is saved."),
                    )));
                    return;
                }
                Ok(DraftFrame::Done) => {
                    note.try_set(Some((
                        false,
                        "Draft ready. Review and edit it, then Save guide: nothing is saved until you do.".into(),
                    )));
                    return;
                }
                Err(_) => {
                    note.try_set(Some((true, "The server's answer was unreadable.".into())));
                    return;
                }
            }
        }
    }
    note.try_set(Some((
        true,
        "The connection ended before the draft was finished; what arrived is in the editor.".into(),
    )));
}
