//! A form's field errors, shown beside the fields they name in plain words ("Name must be at
//! least 2 characters") instead of in a toast. A form creates one [`FieldErrors`], hands it
//! to its mutation (`.fields(errors)`) and puts a [`FieldMessage`] under each field.

use leptos::prelude::*;

use crate::model::{FieldError, RpcError};

/// The fields the server refused on the last submit, and which of them this form shows.
#[derive(Clone, Copy)]
pub struct FieldErrors {
    errors: RwSignal<Vec<FieldError>>,
    shown: StoredValue<&'static [&'static str]>,
}

impl FieldErrors {
    /// Errors of a form that shows the fields `shown`.
    pub fn new(shown: &'static [&'static str]) -> Self {
        FieldErrors {
            errors: RwSignal::new(Vec::new()),
            shown: StoredValue::new(shown),
        }
    }

    /// Takes the failure's field errors; true when every one of them has a place in the
    /// form (else the caller still reports the failure elsewhere).
    pub fn take(&self, err: &RpcError) -> bool {
        self.errors.try_set(err.fields.clone());
        // The form may be gone by the time the answer arrives.
        let shown = self.shown.try_get_value().unwrap_or(&[]);
        !err.fields.is_empty() && err.fields.iter().all(|f| shown.contains(&f.field.as_str()))
    }

    pub fn clear(&self) {
        self.errors.try_set(Vec::new());
    }

    /// The plain sentence for `field`, if it was refused.
    pub fn message(&self, field: &str) -> Option<String> {
        self.errors
            .with(|list| {
                list.iter()
                    .find(|f| f.field == field)
                    .map(FieldError::plain)
            })
            .map(|m| format!("{m}."))
    }
}

/// The error of one field, under it; its id is what the input's `aria-describedby` names.
#[component]
pub fn FieldMessage(
    errors: FieldErrors,
    field: &'static str,
    #[prop(into)] id: String,
) -> impl IntoView {
    move || {
        errors
            .message(field)
            .map(|m| view! { <p class="error field-error" id=id.clone() role="alert">{m}</p> })
    }
}
