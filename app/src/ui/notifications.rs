//! Settings → Notifications: Slack and Discord webhooks (write-only URL, masked hint), the
//! events each channel receives, personal alert mail, "send test" with its result at once,
//! last delivery status, and dead letters with retry.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{dialogs, error_box, short_time, toasts};
use crate::api::notifications::{
    notification_settings, remove_channel, retry_notification, save_webhook, send_test,
    set_channel_events, set_email_alerts,
};
use crate::model::{
    AlertEvent, ChannelKind, ChannelView, DeadLetterView, NotificationSettingsView,
};

/// What is typed into a webhook form and what the server refused of it; owned by the section
/// so that a refetch, which renders the channels anew, keeps both.
#[derive(Clone, Copy)]
struct WebhookDraft {
    url: RwSignal<String>,
    errors: super::fields::FieldErrors,
}

impl WebhookDraft {
    fn new() -> Self {
        WebhookDraft {
            url: RwSignal::new(String::new()),
            errors: super::fields::FieldErrors::new(&["url"]),
        }
    }
}

#[component]
pub fn NotificationsSection() -> impl IntoView {
    let refresh = RwSignal::new(0_u64);
    let drafts = [WebhookDraft::new(), WebhookDraft::new()];
    let settings = super::widgets::rpc_resource(move || refresh.get(), |_| notification_settings());
    view! {
        <section class="card" id="notifications">
            <h2>"Notifications"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || settings.get().map(|r| match r {
                    Ok(s) => settings_view(s, refresh, drafts).into_any(),
                    Err(err) => error_box(&err),
                })}
            </Transition>
        </section>
    }
}

fn settings_view(
    s: NotificationSettingsView,
    refresh: RwSignal<u64>,
    drafts: [WebhookDraft; 2],
) -> impl IntoView {
    let can_manage = s.can_manage;
    let summary = format!(
        "{} waiting · {} delivered · {} failed for good",
        s.pending,
        s.delivered,
        s.dead.len()
    );
    let recipients = s.email_recipients;
    let opted_in = s.email_opt_in;
    let dead = s.dead;
    view! {
        <p class="muted" id="outbox-summary">{summary}</p>
        {s.channels.into_iter().map(|c| {
            let draft = drafts[usize::from(c.kind == ChannelKind::Discord)];
            view! { <Channel channel=c can_manage=can_manage refresh=refresh recipients=recipients opted_in=opted_in draft=draft/> }
        }).collect_view()}
        <h3>"Failed notifications"</h3>
        {if dead.is_empty() {
            view! { <p class="muted">"None: every notification was delivered or is still being tried."</p> }.into_any()
        } else {
            view! { <ul class="rows" id="dead-letters">{dead.into_iter().map(|d| dead_row(d, can_manage, refresh)).collect_view()}</ul> }.into_any()
        }}
    }
}

#[component]
fn Channel(
    channel: ChannelView,
    can_manage: bool,
    refresh: RwSignal<u64>,
    recipients: i64,
    opted_in: bool,
    draft: WebhookDraft,
) -> impl IntoView {
    let kind = channel.kind;
    let is_email = kind == ChannelKind::Email;
    let events = RwSignal::new(channel.events.clone());
    let WebhookDraft { url, errors } = draft;
    let busy = RwSignal::new(false);
    let configured = channel.configured;
    let joined = move || {
        events
            .get()
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let m = move || mutation().busy(busy).refetch(refresh);
    let toggle = move |event: AlertEvent, on: bool| {
        events.update(|list| {
            list.retain(|e| *e != event);
            if on {
                list.push(event);
            }
        });
        if configured {
            let list = joined();
            m().run(set_channel_events(kind.as_str().into(), list), |_| {
                "Events saved.".to_owned()
            });
        }
    };
    let error_id = format!("webhook-error-{}", kind.as_str());
    // A refused URL stays in the field to be corrected; a saved one leaves it (write-only).
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (value, list) = (url.get_untracked(), joined());
        m().fields(errors)
            .run(save_webhook(kind.as_str().into(), value, list), move |_| {
                url.set(String::new());
                "Webhook saved.".to_owned()
            });
    };
    let test = move |_| {
        let toasts = toasts();
        m().run_quietly(send_test(kind.as_str().into()), move |result| {
            toasts.show(result.message, !result.delivered);
            None
        });
    };
    let remove = move |_| {
        dialogs().confirm(
            format!("Remove the {} channel?", kind.label()),
            "Its webhook is deleted; notifications not yet delivered to it are marked failed.",
            "Remove",
            move || {
                m().run(remove_channel(kind.as_str().into()), |()| {
                    "Channel removed.".to_owned()
                })
            },
        );
    };
    let opt = move |on: bool| {
        m().run(set_email_alerts(on), move |()| {
            if on {
                "Alert mail on."
            } else {
                "Alert mail off."
            }
            .to_owned()
        })
    };
    let status = channel.last_status.clone().map(|s| {
        let text = match (&channel.last_at, &channel.last_error) {
            (Some(at), Some(err)) => format!("last delivery failed {}: {err}", short_time(at)),
            (Some(at), None) => format!("last delivered {}", short_time(at)),
            _ => s.clone(),
        };
        view! { <p class=if s == "failed" { "error" } else { "muted" } data-status=s>{text}</p> }
    });
    view! {
        <div class="channel" data-channel=kind.as_str()>
            <h3>{kind.label()} {configured.then(|| view! { " " <span class="badge active">{if is_email { "members who opt in" } else { "connected" }}</span> })}</h3>
            {channel.target_hint.clone().map(|hint| view! { <p class="muted">"Webhook: " <code class="target">{hint}</code></p> })}
            {status}
            {is_email.then(|| view! {
                <p class="muted">{format!("{recipients} member(s) receive alert mail.")}</p>
                <label><input type="checkbox" name="email-me" prop:checked=opted_in on:change=move |ev| opt(event_target_checked(&ev))/> " Email me alerts"</label>
            })}
            {(!is_email && can_manage).then(|| view! {
                <form class="inline" on:submit=save novalidate>
                    <label class="grow">{if configured { "Replace webhook URL" } else { "Webhook URL" }}
                        <input type="password" name="webhook" autocomplete="off" required bind:value=url aria-describedby=error_id.clone()
                            placeholder=if kind == ChannelKind::Slack { "https://hooks.slack.com/services/…" } else { "https://discord.com/api/webhooks/…" }/>
                        <super::fields::FieldMessage errors field="url" id=error_id.clone()/>
                    </label>
                    <button type="submit" disabled=move || busy.get()>"Save webhook"</button>
                </form>
                {how_to(kind)}
            })}
            <fieldset disabled=!can_manage>
                <legend>"Send alerts for"</legend>
                {AlertEvent::ALL.iter().map(|&event| {
                    let checked = move || events.with(|l| l.contains(&event));
                    view! { <label><input type="checkbox" name=event.as_str() prop:checked=checked on:change=move |ev| toggle(event, event_target_checked(&ev))/> " " {event.label()}</label> }
                }).collect_view()}
            </fieldset>
            <div class="actions">
                {(configured && (can_manage || is_email)).then(|| view! {
                    <button type="button" class="test" disabled=move || busy.get() on:click=test>{if is_email { "Send me a test" } else { "Send test" }}</button>
                })}
                {(configured && can_manage && !is_email).then(|| view! {
                    <button type="button" class="danger" disabled=move || busy.get() on:click=remove>"Remove"</button>
                })}
            </div>
        </div>
    }
}

fn dead_row(d: DeadLetterView, can_manage: bool, refresh: RwSignal<u64>) -> impl IntoView {
    let id = d.id.clone();
    let retry = move |_| {
        mutation()
            .refetch(refresh)
            .run(retry_notification(id.clone()), |()| {
                "Queued again.".to_owned()
            });
    };
    let to = d.recipient.map(|r| format!(" to {r}")).unwrap_or_default();
    view! {
        <li class="row" data-id=d.id.clone()>
            <div class="main">
                <strong>{d.summary}</strong>
                <p class="muted">{format!("{}{to} · {} attempt(s) · {}", d.channel.label(), d.attempts, short_time(&d.created_at))}</p>
                <p class="error">{d.last_error.unwrap_or_default()}</p>
            </div>
            <div class="actions">{can_manage.then(|| view! { <button type="button" on:click=retry>"Retry"</button> })}</div>
        </li>
    }
}

/// Where the provider explains how to make the webhook this form asks for.
fn how_to(kind: ChannelKind) -> impl IntoView {
    let (href, text) = match kind {
        ChannelKind::Slack => (
            "https://api.slack.com/messaging/webhooks",
            "How to create a Slack incoming webhook",
        ),
        _ => (
            "https://support.discord.com/hc/en-us/articles/228383668-Intro-to-Webhooks",
            "How to create a Discord webhook",
        ),
    };
    view! {
        <p class="hint how-to"><a href=href target="_blank" rel="noopener noreferrer">{text}</a>
            " (it opens in a new tab)."</p>
    }
}
