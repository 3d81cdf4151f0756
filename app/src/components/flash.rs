//! One-time messages after a form post: a new token, an invitation link, a verification.

use leptos::prelude::*;
use views::{BaseCheckReport, Flash, VerifyReport};

#[component]
pub fn FlashView(flash: Flash) -> impl IntoView {
    match flash {
        Flash::InviteLink { email, url } => view! {
            <div class="alert alert-success" role="status">
                <p><strong>{email}</strong> " is invited. Send them this invitation link (they join when they choose a password with it); it works once, for 7 days, and is shown only now:"</p>
                <p class="copy-row"><input id="invitation-link" class="copy-field" type="text" readonly value=url aria-label="Invitation link"/>
                    " " <super::copy::CopyButton from="invitation-link".to_owned() label="Copy the invitation link".into()/></p>
            </div>
        }
        .into_any(),
        Flash::NewToken { name, token } => view! {
            <div class="alert alert-success" role="status">
                <p>"Token " <strong>{name}</strong> " created. Copy it now: Berth keeps only a hash and cannot show it again."</p>
                <p class="copy-row"><input id="new-token" class="copy-field" type="text" readonly value=token aria-label="New API token"/>
                    " " <super::copy::CopyButton from="new-token".to_owned() label="Copy the token".into()/></p>
            </div>
        }
        .into_any(),
        Flash::Verification(report) => view! { <VerifyReportView report/> }.into_any(),
        Flash::BaseCheck(report) => view! { <BaseCheckReportView report/> }.into_any(),
        Flash::Notice(text) => view! { <div class="alert alert-success" role="status"><p>{text}</p></div> }.into_any(),
    }
}

/// What a verification found, in words and, when it worked, the exact image.
#[component]
pub fn VerifyReportView(report: VerifyReport) -> impl IntoView {
    let class = if report.ok {
        "alert alert-success"
    } else {
        "alert alert-error"
    };
    let heading = match (&report.step, report.ok) {
        (_, true) => "Verified".to_owned(),
        (Some(step), false) => format!("Verification failed at the {step} step"),
        (None, false) => "Verification failed".to_owned(),
    };
    view! {
        <div class=class role="status" aria-live="polite">
            <p><strong>{heading}</strong>
                {report.kind.as_deref().map(|k| view! { " " <span class="badge">{super::form::reason_words(k)}</span> })}
            </p>
            <p>{report.message.clone()}</p>
            {report.digest.clone().map(|digest| view! {
                <dl class="facts">
                    <dt>"Image"</dt><dd><code>{report.image.clone().unwrap_or_default()}</code></dd>
                    <dt>"Digest"</dt><dd><code class="digest">{digest}</code></dd>
                    <dt>"Platforms"</dt><dd>{report.platforms.join(", ")}</dd>
                    <dt>"Size"</dt><dd>{report.size.map(human_size).unwrap_or_else(|| "unknown".into())}</dd>
                </dl>
            })}
        </div>
    }
}

/// Each base image of a ref's Dockerfile, the credential that pulls it and whether its
/// registry lets it; and which registry gets the private-registry credentials.
#[component]
pub fn BaseCheckReportView(report: BaseCheckReport) -> impl IntoView {
    let rows = report
        .bases
        .into_iter()
        .map(|b| {
            view! {
                <tr>
                    <td><code>{b.image}</code></td>
                    <td>{b.line}</td>
                    <td>{b.credential.label()}</td>
                    <td>{match b.problem {
                        None => view! { <span class="check check-ok">"✓ can be pulled"</span> }.into_any(),
                        Some((kind, message)) => view! {
                            <span class="check check-failed">"✗ " {super::form::reason_words(&kind)}</span> " " <span class="muted">{message}</span>
                        }.into_any(),
                    }}</td>
                </tr>
            }
        })
        .collect_view();
    let commit: String = report.commit.chars().take(12).collect();
    view! {
        <div role="status" aria-live="polite">
            <table class="table">
                <caption>{format!("Base images of {} ({commit})", report.git_ref)}</caption>
                <thead><tr>
                    <th scope="col">"Image"</th><th scope="col">"Line"</th>
                    <th scope="col">"Pulled with"</th><th scope="col">"Result"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="muted">"APTIBLE_PRIVATE_REGISTRY_USERNAME / _PASSWORD go to: "
                {match report.private_registry_host {
                    Some(host) => view! { <code>{host}</code> " only" }.into_any(),
                    None => view! { "no registry (none is confirmed, or they are not set)" }.into_any(),
                }}
                {(!report.registries.is_empty()).then(|| view! {
                    " · registries of this Dockerfile: " {report.registries.join(", ")}
                })}
            </p>
        </div>
    }
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
