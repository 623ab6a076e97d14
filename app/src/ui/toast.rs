//! Toasts: what a change did, and decisions held back for a few seconds so that the reviewer
//! can undo them before anything reaches the server (and, through it, the agent).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leptos::prelude::*;

use super::mutation::Mutation;
use super::widgets::{go_to, leaving};
use crate::model::RpcError;

/// How long a decision waits for Undo before it is sent.
pub const UNDO_WINDOW: Duration = Duration::from_secs(5);

/// Decisions sent from an Undo toast and not answered yet.
static SENDING: AtomicU32 = AtomicU32::new(0);

type Step = Box<dyn FnOnce() + Send>;

/// A decision waiting to be sent: `send` runs when the window ends, `undo` if the reviewer
/// takes it back first. Whichever comes first takes both, so exactly one of them ever runs.
#[derive(Clone)]
pub struct Held(Arc<Mutex<Option<(Step, Step)>>>);

impl Held {
    fn take(&self) -> Option<(Step, Step)> {
        self.0.lock().ok()?.take()
    }

    /// Sends the decision now, unless it was sent or undone already.
    fn send(&self) -> bool {
        self.take().map(|(send, _)| send()).is_some()
    }

    fn undo(&self) -> bool {
        self.take().map(|(_, undo)| undo()).is_some()
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

/// One toast message; `held` when it offers Undo for a decision not sent yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub text: String,
    pub error: bool,
    pub held: Option<Held>,
}

/// Toasts of the page, provided by the dashboard layout.
#[derive(Clone, Copy)]
pub struct Toasts(pub RwSignal<Vec<Toast>>);

impl Toasts {
    pub fn show(&self, text: impl Into<String>, error: bool) {
        let id = self.push(text.into(), error, None);
        let list = self.0;
        set_timeout(move || remove(list, id), Duration::from_millis(5000));
    }

    pub fn ok(&self, text: impl Into<String>) {
        self.show(text, false);
    }

    pub fn err(&self, err: &RpcError) {
        if err.is_signed_out() {
            go_to("/login");
        }
        self.show(err.text(), true);
    }

    /// Says `text` with an Undo button for [`UNDO_WINDOW`], then runs `send` with `m` (through
    /// which the decision goes, so that its answer is awaited by [`after_sent`]); Undo (the
    /// button, or [`Toasts::undo_last`]) runs `undo` instead and nothing is sent.
    pub fn hold(
        &self,
        text: impl Into<String>,
        m: Mutation,
        send: impl FnOnce(Mutation) + Send + 'static,
        undo: impl FnOnce() + Send + 'static,
    ) {
        let send = move || {
            SENDING.fetch_add(1, Ordering::Relaxed);
            send(m.finally(|| {
                SENDING.fetch_sub(1, Ordering::Relaxed);
            }));
        };
        let held = Held(Arc::new(Mutex::new(Some((Box::new(send), Box::new(undo))))));
        let id = self.push(text.into(), false, Some(held.clone()));
        let list = self.0;
        set_timeout(
            move || {
                remove(list, id);
                held.send();
            },
            UNDO_WINDOW,
        );
    }

    /// Undoes the newest decision still waiting; false when none waits.
    pub fn undo_last(&self) -> bool {
        let newest = self.0.with_untracked(|l| {
            l.iter()
                .rev()
                .find_map(|t| t.held.clone().map(|h| (t.id, h)))
        });
        newest.is_some_and(|(id, held)| self.undone(id, &held))
    }

    /// Sends every waiting decision at once (the page is being left); true if there were any.
    pub fn send_held(&self) -> bool {
        let held: Vec<(u64, Held)> = self.0.with_untracked(|l| {
            l.iter()
                .filter_map(|t| t.held.clone().map(|h| (t.id, h)))
                .collect()
        });
        let mut any = false;
        for (id, h) in held {
            remove(self.0, id);
            any |= h.send();
        }
        any
    }

    fn undone(&self, id: u64, held: &Held) -> bool {
        remove(self.0, id);
        let undone = held.undo();
        if undone {
            self.ok("Undone: nothing was sent.");
        }
        undone
    }

    fn push(&self, text: String, error: bool, held: Option<Held>) -> u64 {
        // Never reused: the list is keyed by id, and a new toast taking the id of one just
        // removed would be taken for it and keep the old one's text and buttons.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let list = self.0;
        list.update(|l| {
            l.push(Toast {
                id,
                text,
                error,
                held,
            })
        });
        id
    }
}

fn remove(list: RwSignal<Vec<Toast>>, id: u64) {
    list.try_update(|l| l.retain(|t| t.id != id));
}

pub fn toasts() -> Toasts {
    expect_context::<Toasts>()
}

/// Runs `then` once every decision sent from an Undo toast has been answered, waiting at most
/// five seconds (signing out must not cut a decision off from its session).
pub fn after_sent(then: impl FnOnce() + 'static) {
    fn wait(then: Box<dyn FnOnce()>, tries: u32) {
        if SENDING.load(Ordering::Relaxed) == 0 || tries == 0 {
            then();
        } else {
            set_timeout(move || wait(then, tries - 1), Duration::from_millis(100));
        }
    }
    wait(Box::new(then), 50);
}

#[component]
pub fn ToastList() -> impl IntoView {
    let toasts = toasts();
    // Leaving the page (reload, closed tab, another site) sends what waits rather than drop
    // it, and asks the browser to confirm so the requests have time to leave; a navigation
    // the page itself started (sign-in again) just sends.
    let guard = window_event_listener(leptos::ev::beforeunload, move |ev| {
        if toasts.send_held() && !leaving() {
            ev.prevent_default();
        }
    });
    on_cleanup(move || guard.remove());
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || toasts.0.get() key=|t| t.id let:toast>
                {match toast.held.clone() {
                    None => view! { <div class=if toast.error { "toast error" } else { "toast" }>{toast.text}</div> }.into_any(),
                    Some(held) => {
                        let id = toast.id;
                        view! {
                            <div class="toast held">
                                <span>{toast.text}</span>
                                <button type="button" class="undo" on:click=move |_| { toasts.undone(id, &held); }>"Undo"</button>
                                <span class="window" aria-hidden="true"></span>
                            </div>
                        }.into_any()
                    }
                }}
            </For>
        </div>
    }
}
