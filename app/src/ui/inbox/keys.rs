//! The inbox's keyboard: j/k move the highlight over the rows as shown, a approves, d denies.

use leptos::prelude::*;

use super::{Ui, approve, deny, visible};
use crate::model::{AccessRequestView, CredentialMode};
use crate::ui::widgets::{dialogs, toasts};

/// j/k move the selection, a approves it, d denies it; ignored while typing in a field.
pub(super) fn keyboard(ui: Ui) {
    // Window listeners run outside the component tree: re-enter it so the actions find the
    // page's toasts and live counter.
    let Some(owner) = Owner::current() else {
        return;
    };
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        owner.with(|| on_key(&ev, ui))
    });
    on_cleanup(move || handle.remove());
}

fn on_key(ev: &leptos::ev::KeyboardEvent, ui: Ui) {
    if dialogs().is_open() {
        return;
    }
    {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let typing = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|el| {
                    matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                });
            if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
        }
        if ev.key() == "z" {
            // Takes back the newest decision still waiting to be sent (rows may be empty now);
            // a held-down key undoes one, not one per repeat.
            ev.prevent_default();
            if ev.repeat() {
                return;
            }
            if !toasts().undo_last() {
                toasts().show(
                    "Nothing to undo: decisions are sent 5 s after they are made.",
                    true,
                );
            }
            return;
        }
        // The rows as shown: filtered and grouped, so j/k follow the screen.
        let rows: Vec<AccessRequestView> = untrack(|| visible(ui))
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        if rows.is_empty() {
            return;
        }
        let current = ui
            .selected
            .with_untracked(|s| rows.iter().position(|r| Some(&r.id) == s.as_ref()))
            .unwrap_or(0);
        if matches!(ev.key().as_str(), "j" | "k" | "a" | "d") {
            // The key is a command: it must not also type itself into the dialog it opens.
            ev.prevent_default();
        }
        match ev.key().as_str() {
            "j" => ui
                .selected
                .set(Some(rows[(current + 1).min(rows.len() - 1)].id.clone())),
            "k" => ui
                .selected
                .set(Some(rows[current.saturating_sub(1)].id.clone())),
            "a" if rows[current].cannot_approve.is_some() => toasts().show(
                rows[current].cannot_approve.clone().unwrap_or_default(),
                true,
            ),
            "a" if rows[current].credential_mode == CredentialMode::Shared => {
                approve(rows[current].id.clone(), None, ui)
            }
            "a" => toasts().show(
                "This tool needs the agent's own secret: enter it in the row, then Approve.",
                true,
            ),
            "d" => deny(rows[current].id.clone(), ui),
            _ => {}
        }
    }
}
