//! The one path of every dashboard change: call the server, report, refetch, undo on failure.

use leptos::prelude::*;

use super::widgets::{Live, Toasts, go_to};
use crate::model::RpcError;

/// How the dashboard runs a change: call the server, then on success say what happened and
/// refetch what the page shows; on failure say why (a gone session goes to sign-in) and undo
/// what the page did in advance. Every button and form that changes something goes through it.
#[derive(Clone)]
pub struct Mutation {
    toasts: Option<Toasts>,
    refetch: Option<RwSignal<u64>>,
    busy: Option<RwSignal<bool>>,
    inline_error: Option<RwSignal<Option<String>>>,
    fields: Option<super::fields::FieldErrors>,
    /// Not a `Callback`: those live in the reactive owner of the row or dialog that created
    /// them, which is often gone (the row hidden, the dialog closed) when the answer arrives.
    undo: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    /// Runs once the call has answered, whatever it answered.
    finally: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

/// A mutation reporting through the page's toasts and refetching its live resources. Create
/// it where the page's context is at hand (an event handler), then move it into dialogs.
pub fn mutation() -> Mutation {
    Mutation {
        toasts: use_context::<Toasts>(),
        refetch: use_context::<Live>().map(|live| live.0),
        busy: None,
        inline_error: None,
        fields: None,
        undo: None,
        finally: None,
    }
}

impl Mutation {
    /// `busy` is true while the call runs (a submit button reads it to disable itself).
    pub fn busy(mut self, busy: RwSignal<bool>) -> Self {
        self.busy = Some(busy);
        self
    }

    /// Refetch what reads `counter` instead of the live resources.
    pub fn refetch(mut self, counter: RwSignal<u64>) -> Self {
        self.refetch = Some(counter);
        self
    }

    /// Show a failure in `error` (beside the form) instead of a toast.
    pub fn inline_error(mut self, error: RwSignal<Option<String>>) -> Self {
        self.inline_error = Some(error);
        self
    }

    /// Show refused fields beside themselves (the form's [`FieldErrors`]); a failure naming
    /// no field of the form is still reported as usual.
    pub fn fields(mut self, errors: super::fields::FieldErrors) -> Self {
        self.fields = Some(errors);
        self
    }

    /// Run `undo` when the call fails (e.g. show a row hidden in advance again).
    pub fn undo(mut self, undo: impl Fn() + Send + Sync + 'static) -> Self {
        self.undo = Some(std::sync::Arc::new(undo));
        self
    }

    /// Run `finally` once the call has answered (success or failure).
    pub fn finally(mut self, finally: impl Fn() + Send + Sync + 'static) -> Self {
        self.finally = Some(std::sync::Arc::new(finally));
        self
    }

    /// Runs `call`; on success toasts what `done` returns and refetches.
    pub fn run<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, RpcError>> + 'static,
        done: impl FnOnce(T) -> String + 'static,
    ) {
        self.spawn(call, move |value| Some(done(value)), true);
    }

    /// Runs `call`; on success hands its value to `then` (no toast, no refetch): loads for
    /// the page, navigations, a key to show once.
    pub fn then<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, RpcError>> + 'static,
        then: impl FnOnce(T) + 'static,
    ) {
        self.spawn(
            call,
            move |value| {
                then(value);
                None
            },
            false,
        );
    }

    /// Runs `call`; `done` says what to toast, if anything; then refetches.
    pub fn run_quietly<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, RpcError>> + 'static,
        done: impl FnOnce(T) -> Option<String> + 'static,
    ) {
        self.spawn(call, done, true);
    }

    fn spawn<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, RpcError>> + 'static,
        done: impl FnOnce(T) -> Option<String> + 'static,
        refetch: bool,
    ) {
        if let Some(busy) = self.busy {
            busy.try_set(true);
        }
        if let Some(error) = self.inline_error {
            error.try_set(None);
        }
        let this = self.clone();
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(value) => {
                    if let Some(fields) = this.fields {
                        fields.clear();
                    }
                    if let (Some(text), Some(toasts)) = (done(value), this.toasts) {
                        toasts.ok(text);
                    }
                    if let (true, Some(counter)) = (refetch, this.refetch) {
                        counter.try_update(|n| *n += 1);
                    }
                }
                Err(err) if err.is_signed_out() => go_to("/login"),
                Err(err) => {
                    if let Some(undo) = &this.undo {
                        undo();
                    }
                    // Part of it may have happened, or someone else changed the same thing.
                    if let (true, Some(counter)) = (refetch, this.refetch) {
                        counter.try_update(|n| *n += 1);
                    }
                    let beside_fields = this.fields.is_some_and(|f| f.take(&err));
                    if !beside_fields {
                        match (this.inline_error, this.toasts) {
                            (Some(error), _) => {
                                error.try_set(Some(err.text()));
                            }
                            (None, Some(toasts)) => toasts.err(&err),
                            (None, None) => {}
                        }
                    }
                }
            }
            // The page may have been left meanwhile: its signals are then gone.
            if let Some(busy) = this.busy {
                busy.try_set(false);
            }
            if let Some(finally) = &this.finally {
                finally();
            }
        });
    }
}
