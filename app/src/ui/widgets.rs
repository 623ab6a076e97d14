//! Small shared pieces: toasts, the live-update counter, formatting.

use leptos::prelude::*;

use crate::model::RpcError;

pub use super::toast::{ToastList, Toasts, toasts};

/// Bumped on every live change event of the organization; resources that read it refetch.
#[derive(Clone, Copy)]
pub struct Live(pub RwSignal<u64>);

pub fn live() -> Live {
    expect_context::<Live>()
}

/// How many decisions wait in the organization's inbox (requests and suggestions), kept
/// current by the signed-in frame; shown in the sidebar and in every tab title.
#[derive(Clone, Copy)]
pub struct Pending(pub RwSignal<i64>);

/// The page's own tab title, `(3) Inbox · AgentKey` while decisions wait.
pub fn page_title(name: &'static str) -> impl IntoView {
    let pending = use_context::<Pending>();
    let text = move || match pending.map_or(0, |p| p.0.get()) {
        0 => format!("{name} · AgentKey"),
        n => format!("({n}) {name} · AgentKey"),
    };
    view! { <leptos_meta::Title text=text/> }
}

/// Text an agent wrote (names, reasons, suggestions, guide facts), as a reviewer must read it:
/// characters that reorder text or take no room (bidirectional overrides and isolates,
/// direction marks, zero-width and invisible fillers, variation selectors, line separators,
/// the byte-order mark, and the tag characters that can smuggle invisible text to a model)
/// are shown as `⟨U+202E⟩`, so a reason cannot be made to read differently from what is
/// stored.
pub fn shown(text: &str) -> String {
    let hidden = |c: char| {
        matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&format!("⟨U+{:04X}⟩", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-11-28T10:00:00Z` → `2026-11-28 10:00`.
pub fn short_time(iso: &str) -> String {
    iso.get(0..16)
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|| iso.to_owned())
}

/// An error box for a failed resource.
pub fn error_box(err: &RpcError) -> AnyView {
    if err.is_signed_out() {
        go_to("/login");
    }
    view! { <p class="error" role="alert">{err.text()}</p> }.into_any()
}

/// Full navigation (used after sign-in/out so the server sees the new session). The server
/// functions behind these pages send no redirect of their own: the router would follow it
/// client-side while this navigation is under way, and the two race.
pub fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    {
        // The first navigation wins: a second one (several refetches all finding the session
        // gone) would abort it and start the same load again.
        if let Some(window) = web_sys::window()
            && !LEAVING.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let _ = window.location().set_href(path);
        }
    }
    let _ = path;
}

/// Set once [`go_to`] has started a navigation away.
static LEAVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the page itself is navigating away (see [`go_to`]).
pub fn leaving() -> bool {
    LEAVING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Copies text to the clipboard.
pub fn copy(text: String) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(&text);
    }
    let _ = &text;
}

/// A question waiting in the page's dialog: a confirmation, or a reason to type.
#[derive(Clone)]
pub struct Ask {
    pub title: String,
    pub message: String,
    /// Ask for a reason (sent to the agent) before confirming.
    pub reason: bool,
    /// The text asked for is a secret: typed masked, never echoed.
    pub secret: bool,
    pub confirm: &'static str,
    /// Held by the dialog, not by a reactive owner: the row that opened the dialog may be
    /// re-rendered (and its owner disposed) while the dialog is open.
    pub then: std::sync::Arc<dyn Fn(String) + Send + Sync>,
}

/// The page's one dialog, provided by the dashboard layout.
#[derive(Clone, Copy)]
pub struct Dialogs(pub RwSignal<Option<Ask>>);

pub fn dialogs() -> Dialogs {
    expect_context::<Dialogs>()
}

impl Dialogs {
    /// Asks for the reason of a decision; `then` gets it once confirmed.
    pub fn reason(&self, title: impl Into<String>, then: impl Fn(String) + Send + Sync + 'static) {
        self.text(
            title,
            "The agent reads this reason, so say what would change the answer.",
            "Confirm",
            then,
        );
    }

    /// Asks for a line of text (a reason, or a name typed to confirm); `then` gets it.
    pub fn text(
        &self,
        title: impl Into<String>,
        message: impl Into<String>,
        label: &'static str,
        then: impl Fn(String) + Send + Sync + 'static,
    ) {
        self.open(
            title.into(),
            message.into(),
            label,
            (true, false),
            std::sync::Arc::new(then),
        );
    }

    /// Asks to confirm a destructive action; `then` runs once confirmed.
    pub fn confirm(
        &self,
        title: impl Into<String>,
        message: impl Into<String>,
        label: &'static str,
        then: impl Fn() + Send + Sync + 'static,
    ) {
        let then = std::sync::Arc::new(move |_: String| then());
        self.open(title.into(), message.into(), label, (false, false), then);
    }

    /// Asks for a new secret (masked); `then` gets it once confirmed.
    pub fn secret(
        &self,
        title: impl Into<String>,
        message: impl Into<String>,
        label: &'static str,
        then: impl Fn(String) + Send + Sync + 'static,
    ) {
        self.open(
            title.into(),
            message.into(),
            label,
            (true, true),
            std::sync::Arc::new(then),
        );
    }

    /// Opens the dialog; `(reason, secret)` says what it asks for.
    fn open(
        &self,
        title: String,
        message: String,
        confirm: &'static str,
        (reason, secret): (bool, bool),
        then: std::sync::Arc<dyn Fn(String) + Send + Sync>,
    ) {
        self.0.set(Some(Ask {
            title,
            message,
            reason,
            secret,
            confirm,
            then,
        }));
    }

    pub fn is_open(&self) -> bool {
        self.0.with_untracked(Option::is_some)
    }
}

/// Renders the open dialog: modal, labelled, Escape cancels, Ctrl/Cmd+Enter confirms, focus on
/// the reason field (or on Cancel for a plain confirmation, so Enter never destroys by accident).
#[component]
pub fn DialogHost() -> impl IntoView {
    let d = dialogs();
    let text = RwSignal::new(String::new());
    let reason_field = NodeRef::<leptos::html::Textarea>::new();
    let secret_field = NodeRef::<leptos::html::Input>::new();
    let cancel_button = NodeRef::<leptos::html::Button>::new();
    let close = move || {
        d.0.set(None);
        text.set(String::new());
    };
    let ok = move || {
        let Some(ask) = d.0.get_untracked() else {
            return;
        };
        let value = text.get_untracked();
        if ask.reason && value.trim().is_empty() {
            return;
        }
        close();
        (ask.then)(value);
    };
    Effect::new(move |_| {
        if d.0.with(Option::is_some) {
            if let Some(field) = reason_field.get() {
                let _ = field.focus();
            } else if let Some(field) = secret_field.get() {
                let _ = field.focus();
            } else if let Some(button) = cancel_button.get() {
                let _ = button.focus();
            }
        }
    });
    view! {
        {move || d.0.get().map(|ask| view! {
            <div class="overlay" on:click=move |_| close()></div>
            <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="dialog-title" id="dialog"
                on:keydown=move |ev| {
                    if ev.key() == "Escape" {
                        close();
                    } else if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                        // Ctrl/Cmd+Enter confirms, as in most editors.
                        ev.prevent_default();
                        ok();
                    }
                }>
                <h2 id="dialog-title">{ask.title.clone()}</h2>
                <p class="muted">{ask.message.clone()}</p>
                {(ask.reason && ask.secret).then(|| view! {
                    <label for="dialog-secret">"New secret"</label>
                    <input type="password" id="dialog-secret" autocomplete="off" node_ref=secret_field bind:value=text/>
                })}
                {(ask.reason && !ask.secret).then(|| view! {
                    <label for="dialog-reason">"Reason"</label>
                    <textarea id="dialog-reason" rows="3" maxlength="500" node_ref=reason_field bind:value=text></textarea>
                })}
                <div class="actions">
                    <button type="button" id="dialog-cancel" node_ref=cancel_button on:click=move |_| close()>"Cancel"</button>
                    <button type="button" id="dialog-confirm" class=if ask.reason { "primary" } else { "primary danger-fill" }
                        disabled=move || ask.reason && text.with(|t| t.trim().is_empty())
                        on:click=move |_| ok()>{ask.confirm}</button>
                </div>
            </div>
        })}
    }
}

/// Codec of the pages' resources: JSON, decoded with `serde_json::from_slice` like server
/// function responses. With the default codec (`from_str`) every response type's deserializer
/// was compiled into the WASM twice, once per reader.
pub struct RpcJson;

impl<T: serde::Serialize> leptos::server::codee::Encoder<T> for RpcJson {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: serde::de::DeserializeOwned> leptos::server::codee::Decoder<T> for RpcJson {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// A resource loaded by a server function: rendered on the server, taken over by the browser.
pub fn rpc_resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, RpcJson>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn reordering_and_invisible_characters_are_shown_marked() {
        assert_eq!(shown("Deploy the fix"), "Deploy the fix");
        assert_eq!(
            shown("approve\u{202E}lanoitpecxe"),
            "approve⟨U+202E⟩lanoitpecxe"
        );
        assert_eq!(
            shown("a\u{200B}b\u{2066}c\u{FEFF}"),
            "a⟨U+200B⟩b⟨U+2066⟩c⟨U+FEFF⟩"
        );
        assert_eq!(
            shown("Grüße, 日本"),
            "Grüße, 日本",
            "other text is untouched"
        );
    }
}
