//! Small shared pieces: toasts, the live-update counter, formatting.

use leptos::prelude::*;

/// One toast message.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub text: String,
    pub error: bool,
}

/// Toasts of the page, provided by the dashboard layout.
#[derive(Clone, Copy)]
pub struct Toasts(pub RwSignal<Vec<Toast>>);

impl Toasts {
    pub fn show(&self, text: impl Into<String>, error: bool) {
        let list = self.0;
        let id = list.with_untracked(|l| l.iter().map(|t| t.id).max().unwrap_or(0) + 1);
        list.update(|l| l.push(Toast { id, text: text.into(), error }));
        set_timeout(move || list.update(|l| l.retain(|t| t.id != id)), std::time::Duration::from_millis(5000));
    }
    pub fn ok(&self, text: impl Into<String>) {
        self.show(text, false);
    }
    pub fn err(&self, err: &ServerFnError) {
        self.show(crate::api::error_text(err), true);
    }
}

pub fn toasts() -> Toasts {
    expect_context::<Toasts>()
}

/// Bumped on every live change event of the organization; resources that read it refetch.
#[derive(Clone, Copy)]
pub struct Live(pub RwSignal<u64>);

pub fn live() -> Live {
    expect_context::<Live>()
}

impl Live {
    /// Refetch now (after a local mutation, without waiting for the event).
    pub fn bump(&self) {
        self.0.update(|v| *v += 1);
    }
}

#[component]
pub fn ToastList() -> impl IntoView {
    let toasts = toasts();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || toasts.0.get() key=|t| t.id let:toast>
                <div class=if toast.error { "toast error" } else { "toast" }>{toast.text}</div>
            </For>
        </div>
    }
}

/// `2026-11-28T10:00:00Z` → `2026-11-28 10:00`.
pub fn short_time(iso: &str) -> String {
    iso.get(0..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| iso.to_owned())
}

/// An error box for a failed resource.
pub fn error_box(err: &ServerFnError) -> AnyView {
    if crate::api::is_signed_out(err) {
        go_to("/login");
    }
    view! { <p class="error" role="alert">{crate::api::error_text(err)}</p> }.into_any()
}

/// Full navigation (used after sign-in/out so the server sees the new session).
pub fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(path);
    }
    let _ = path;
}

/// Copies text to the clipboard.
pub fn copy(text: String) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(&text);
    }
    let _ = &text;
}

/// Asks for a reason in the browser's prompt; `None` when cancelled.
pub fn ask_reason(what: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let window = web_sys::window()?;
        return window.prompt_with_message(&format!("Reason for {what} (the agent sees it):")).ok().flatten();
    }
    #[allow(unreachable_code)]
    {
        let _ = what;
        None
    }
}

/// Asks for confirmation of a destructive action.
pub fn confirm(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        return web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(false);
    }
    #[allow(unreachable_code)]
    {
        let _ = question;
        false
    }
}
