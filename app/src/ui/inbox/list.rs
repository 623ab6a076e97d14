//! The request list's view: which rows show in which order (filter, grouping), the toolbar
//! that sets them, and the bar of bulk decisions over the checked rows.

use std::collections::HashSet;

use leptos::prelude::*;

use super::{Ui, hide};
use crate::api::inbox::bulk_decide;
use crate::model::AccessRequestView;
use crate::ui::mutation::mutation;
use crate::ui::narrow::Narrow;
use crate::ui::widgets::{dialogs, toasts};

/// The rows shown, in order: not decided meanwhile, matching the filter, grouped when asked;
/// each with the heading of the group it opens.
pub(super) fn visible(ui: Ui) -> Vec<(Option<String>, AccessRequestView)> {
    let hidden = ui.hidden.get();
    let needle = ui.filter.get().trim().to_lowercase();
    let group = ui.group.get();
    let mut rows: Vec<AccessRequestView> = ui
        .order
        .get()
        .into_iter()
        .filter(|r| !hidden.contains(&r.id))
        .filter(|r| {
            needle.is_empty()
                || [&r.agent_name, &r.tool_name, &r.reason]
                    .iter()
                    .any(|t| t.to_lowercase().contains(&needle))
        })
        .collect();
    let key = |r: &AccessRequestView| match group.as_str() {
        "agent" => Some(r.agent_name.clone()),
        "tool" => Some(r.tool_name.clone()),
        _ => None,
    };
    // Stable: within a group the inbox's own order stays.
    rows.sort_by_key(|r| key(r).map(|k| k.to_lowercase()));
    let mut last = None;
    rows.into_iter()
        .map(|r| {
            let k = key(&r);
            let folded = k.as_ref().map(|k| k.to_lowercase());
            let head = (folded.is_some() && folded != last)
                .then(|| k.clone())
                .flatten();
            last = folded;
            (head, r)
        })
        .collect()
}

/// Filter, grouping, density and select-all of the request list.
pub(super) fn toolbar(ui: Ui) -> impl IntoView {
    let all_checked = move || {
        let shown: Vec<String> = visible(ui).into_iter().map(|(_, r)| r.id).collect();
        !shown.is_empty() && ui.checked.with(|c| shown.iter().all(|id| c.contains(id)))
    };
    let check_all = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        let shown: Vec<String> = untrack(|| visible(ui))
            .into_iter()
            .map(|(_, r)| r.id)
            .collect();
        ui.checked.update(|c| {
            for id in shown {
                if on {
                    c.insert(id);
                } else {
                    c.remove(&id);
                }
            }
        });
    };
    view! {
        <div class="filters inbox-tools" role="group" aria-label="Show requests">
            <label class="check"><input type="checkbox" id="select-all" prop:checked=all_checked on:change=check_all/> " Select all shown"</label>
            <input type="search" id="inbox-filter" placeholder="Filter by agent, tool or reason" aria-label="Filter requests"
                bind:value=ui.filter/>
            <label>"Group " <select id="inbox-group" bind:value=ui.group>
                <option value="">"None"</option>
                <option value="agent">"By agent"</option>
                <option value="tool">"By tool"</option>
            </select></label>
            <label class="check"><input type="checkbox" id="inbox-compact" bind:checked=ui.compact/> " Compact"</label>
        </div>
    }
}

pub(super) fn bulk_bar(ui: Ui) -> impl IntoView {
    let dialogs = dialogs();
    let toasts = toasts();
    let decide = move |approve: bool, reason: String| {
        let ids: Vec<String> = ui.checked.get_untracked().into_iter().collect();
        for id in &ids {
            hide(ui, id, true);
        }
        // Requests still short of their quorum stay pending: the refetch shows them again.
        let show_all = move |ids: &[String]| {
            for id in ids {
                hide(ui, id, false);
            }
            ui.checked.try_set(HashSet::new());
        };
        let undo_ids = ids.clone();
        let n = ids.len();
        let send = move |m: crate::ui::mutation::Mutation| {
            let shown_again = ids.clone();
            m.undo(move || show_all(&shown_again)).run(
                bulk_decide(ids.clone(), approve, reason),
                move |n| {
                    show_all(&ids);
                    if approve {
                        format!("{n} approvals recorded.")
                    } else {
                        format!("{n} requests denied.")
                    }
                },
            );
        };
        let verb = if approve { "Approving" } else { "Denying" };
        toasts.hold(
            format!("{verb} {n} requests…"),
            mutation(),
            send,
            move || show_all(&undo_ids),
        );
    };
    let run = move |approve: bool| {
        let narrowed = ui.narrow.with_untracked(|n| {
            ui.checked
                .get_untracked()
                .iter()
                .any(|id| n.get(id).is_some_and(Narrow::is_set))
        });
        if approve && narrowed {
            // Bulk approval grants full access: a narrowing typed into a row must not be lost.
            toasts.show(
                "Some checked rows are narrowed (read-only or a budget): approve those one by one.",
                true,
            );
        } else if approve {
            decide(true, String::new());
        } else {
            let n = ui.checked.with_untracked(HashSet::len);
            dialogs.reason(format!("Deny {n} requests?"), move |reason| {
                decide(false, reason)
            });
        }
    };
    view! {
        <div class="bulk" role="toolbar" aria-label="Bulk decision">
            {move || format!("{} selected", ui.checked.get().len())}
            <button type="button" class="primary" on:click=move |_| run(true)>"Approve selected"</button>
            <button type="button" on:click=move |_| run(false)>"Deny selected"</button>
        </div>
    }
}
