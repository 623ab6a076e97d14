//! A tool's usage guide: the editor (saved as a new version, drafted by a model when one is
//! configured), its history with a line diff of each version against the text being edited,
//! and restore.

use leptos::prelude::*;

use super::fields::{FieldErrors, FieldMessage};
use super::mutation::mutation;
use super::widgets::short_time;
use crate::api::tools::{guide_history, restore_guide, update_guide};
use crate::model::GuideVersion;

/// The usage guide agents receive, saved as a new version; its history opens below.
#[component]
pub fn GuideEditor(id: String, current: String) -> impl IntoView {
    let guide = RwSignal::new(current);
    let history = RwSignal::new(None::<Vec<GuideVersion>>);
    let error_id = format!("guide-error-{id}");
    let id = StoredValue::new(id);
    let errors = FieldErrors::new(&["instructions"]);
    let save = move |_| {
        mutation()
            .fields(errors)
            .run(update_guide(id.get_value(), guide.get_untracked()), |t| {
                format!("Usage guide saved as version {}.", t.instructions_version)
            });
    };
    let show_history = move |_| {
        mutation().then(guide_history(id.get_value()), move |list| {
            history.set(Some(list))
        });
    };
    view! {
        <label class="wide">"Usage guide" <textarea rows="4" class="guide-input" aria-describedby=error_id.clone() bind:value=guide></textarea>
            <FieldMessage errors field="instructions" id=error_id/></label>
        <div class="actions">
            <button type="button" on:click=save>"Save guide"</button>
            <button type="button" on:click=show_history>"History"</button>
        </div>
        <super::draft::AiDraft id guide/>
        {move || history.get().map(|versions| view! {
            <GuideHistory id=id.get_value() versions current=guide/>
        })}
    }
}

/// Earlier versions of a guide, each with its changes up to the text being edited and a
/// restore button.
#[component]
fn GuideHistory(
    id: String,
    versions: Vec<GuideVersion>,
    current: RwSignal<String>,
) -> impl IntoView {
    let id = StoredValue::new(id);
    view! {
        <ul class="history">
            {versions.into_iter().map(|v| {
                let version = v.version;
                let restore = move |_| {
                    mutation().run(restore_guide(id.get_value(), version), |t| {
                        format!("Restored as version {}.", t.instructions_version)
                    });
                };
                view! {
                    <li>
                        {format!("v{} · {} · {} ", v.version, short_time(&v.created_at), v.source)}
                        <button type="button" class="link" on:click=restore>"Restore"</button>
                        <pre class="diff" aria-label="Changes from this version to the current guide">
                            {line_diff(&v.instructions, &current.get_untracked()).into_iter().map(|(mark, line)| {
                                let class = match mark { '+' => "add", '-' => "del", _ => "same" };
                                view! { <span class=class>{format!("{mark} {line}\n")}</span> }
                            }).collect_view()}
                        </pre>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// Line diff from `old` to `new` (longest common subsequence): `' '` kept, `'-'` removed,
/// `'+'` added. Guides are at most 16 000 characters, so the quadratic table stays small.
pub fn line_diff(old: &str, new: &str) -> Vec<(char, String)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0_u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push((' ', a[i].to_owned()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(('-', a[i].to_owned()));
            i += 1;
        } else {
            out.push(('+', b[j].to_owned()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| ('-', (*l).to_owned())));
    out.extend(b[j..].iter().map(|l| ('+', (*l).to_owned())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_marks_removed_added_and_kept_lines() {
        let d = line_diff("a\nb\nc", "a\nc\nd");
        assert_eq!(
            d,
            vec![
                (' ', "a".into()),
                ('-', "b".into()),
                (' ', "c".into()),
                ('+', "d".into())
            ]
        );
        assert!(line_diff("same", "same").iter().all(|(m, _)| *m == ' '));
    }
}
