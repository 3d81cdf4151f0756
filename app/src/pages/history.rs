//! `/teams/{team}/history` and `/teams/{team}/apps/{app}/history`: every operation, newest
//! first, filtered by a plain GET form and paged by keyset ("Older" carries `before=`), under
//! a chart of the last 30 days drawn on the server as SVG, with its numbers also as a table.

use crate::{
    components::{
        layout::{Console, Loaded, Section},
        markup::Markup,
        time::exact_utc,
    },
    pages::{
        apps::{AppTab, AppTabs},
        operations::{duration, OperationsTable},
    },
    serverfns::history::load_history,
};
use domain::{OperationKind, OperationStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use views::{DayRow, HistoryPage, CHART_DAYS};

/// The filters a history page was asked for.
#[derive(Clone, Debug, Default, PartialEq)]
struct Filters {
    kind: Option<String>,
    status: Option<String>,
    requested_by: Option<i64>,
}

impl Filters {
    fn any(&self) -> bool {
        self.kind.is_some() || self.status.is_some() || self.requested_by.is_some()
    }

    /// The query string for these filters (and a cursor): keyword values and numbers only,
    /// so nothing needs escaping.
    fn query(&self, before: Option<i64>) -> String {
        let mut parts = Vec::new();
        if let Some(kind) = &self.kind {
            parts.push(format!("kind={kind}"));
        }
        if let Some(status) = &self.status {
            parts.push(format!("status={status}"));
        }
        if let Some(user) = self.requested_by {
            parts.push(format!("requested_by={user}"));
        }
        if let Some(before) = before {
            parts.push(format!("before={before}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

#[component]
pub fn OperationsHistoryPage() -> AnyView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let app = move || params.read().get("app");
    // Unknown keywords are passed on, so that the server names the mistake; an empty value
    // (the form's "Any") is no filter.
    let text = move |name: &str| query.read().get(name).filter(|v| !v.is_empty());
    let number = move |name: &str| text(name).and_then(|v| v.parse::<i64>().ok());
    let filters = move || Filters {
        kind: text("kind"),
        status: text("status"),
        requested_by: number("requested_by"),
    };
    let page = Resource::new(
        move || (team(), app(), filters(), number("before")),
        |(team, app, f, before)| load_history(team, app, f.kind, f.status, f.requested_by, before),
    );
    view! {
        <Title text="History"/>
        <Loaded page loading="Loading history…" let(me, page)>
            {
                let filters = filters();
                // One app's history belongs with the app.
                let section = if page.app.is_some() { Section::Apps } else { Section::History };
                view! {
                    <Console me team=page.team.handle.clone() section>
                        <History page filters/>
                    </Console>
                }
            }
        </Loaded>
    }
    .into_any()
}

#[component]
fn History(page: HistoryPage, filters: Filters) -> impl IntoView {
    let now = crate::now_ms();
    let team = page.team.handle.clone();
    let base = match &page.app {
        Some(app) => format!("/teams/{team}/apps/{app}/history"),
        None => format!("/teams/{team}/history"),
    };
    let heading = match &page.app {
        Some(app) => format!("History of {app}"),
        None => "History".to_owned(),
    };
    let older = page
        .next
        .map(|id| format!("{base}{}", filters.query(Some(id))));
    let empty = page.operations.is_empty();
    view! {
        {page.app.clone().map(|app| view! {
            <p class="breadcrumb">
                <a href=format!("/teams/{team}/apps")>"Apps"</a> " / "
                <a href=format!("/teams/{team}/apps/{app}")>{app.clone()}</a> " /"
            </p>
        })}
        <header class="page-header"><h1>{heading}</h1></header>
        {page.app.clone().map(|app| view! {
            <AppTabs team=team.clone() app current=AppTab::History
                can_deploy=page.team.role.allows(domain::Role::Deployer)/>
        })}
        <p class="muted">"Every deploy, configuration change and restart: who asked for it, what exactly ran, and how it ended."</p>

        <section class="panel" aria-labelledby="chart-heading">
            <h2 id="chart-heading">{format!("The last {CHART_DAYS} days")}</h2>
            <div class="chart" inner_html=chart(&page.days)></div>
        </section>

        <form method="get" action=base.clone() class="filters" aria-label="Filter operations"
            inner_html=filter_fields(&filters, &page.members, &base)></form>

        {if empty {
            view! {
                <div class="empty-state"><p>{if filters.any() {
                    "No operations match these filters."
                } else if page.app.is_some() {
                    "No operations yet: deploy the app from its page."
                } else {
                    "No operations yet. Create an app under Apps and deploy an image to it."
                }}</p></div>
            }.into_any()
        } else {
            view! { <OperationsTable team=page.team.handle.clone() operations=page.operations now show_app=page.app.is_none() caption="Operations, newest first"/> }.into_any()
        }}
        {older.map(|href| view! { <p class="pager"><a href=href rel="next">"Older operations"</a></p> })}
    }
}

/// The filter form's fields, written as one string (nothing in it is hydrated): a choice of
/// kind, status and requester, each preset to the filter in force, and "Clear filters" while
/// any is.
fn filter_fields(filters: &Filters, members: &[(i64, String)], base: &str) -> String {
    let mut html = Markup::with_capacity(1_400 + members.len() * 80);
    let select = |html: &mut Markup,
                  id: &'static str,
                  label: &'static str,
                  name: &'static str,
                  any: &'static str| {
        html.raw(r#"<div class="field"><label for=""#)
            .raw(id)
            .raw(r#"">"#)
            .raw(label)
            .raw(r#"</label><select id=""#)
            .raw(id)
            .raw(r#"" name=""#)
            .raw(name)
            .raw(r#""><option value="">"#)
            .raw(any)
            .raw("</option>");
    };
    let option = |html: &mut Markup, value: &str, selected: bool, text: &str| {
        html.raw(r#"<option value=""#).attr(value);
        html.raw(if selected { r#"" selected>"# } else { r#"">"# })
            .text(text)
            .raw("</option>");
    };
    select(&mut html, "filter-kind", "Kind", "kind", "Any");
    for k in OperationKind::ALL {
        let selected = filters.kind.as_deref() == Some(k.as_str());
        option(&mut html, k.as_str(), selected, k.as_str());
    }
    html.raw("</select></div>");
    select(&mut html, "filter-status", "Status", "status", "Any");
    for s in OperationStatus::ALL {
        let selected = filters.status.as_deref() == Some(s.as_str());
        option(&mut html, s.as_str(), selected, s.as_str());
    }
    html.raw("</select></div>");
    select(
        &mut html,
        "filter-requested-by",
        "Requested by",
        "requested_by",
        "Anyone",
    );
    for (id, email) in members {
        option(
            &mut html,
            &id.to_string(),
            filters.requested_by == Some(*id),
            email,
        );
    }
    html.raw(r#"</select></div><div class="filter-actions"><button type="submit" class="button">Filter</button>"#);
    if filters.any() {
        html.raw(r#"<a href=""#)
            .attr(base)
            .raw(r#"">Clear filters</a>"#);
    }
    html.raw("</div>");
    html.into_string()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Nov 26` for a day counted from the Unix epoch.
fn day_label(day: i64) -> String {
    let date = exact_utc(day * 86_400_000);
    let month: usize = date[5..7].parse().unwrap_or(1);
    let day_of_month: u32 = date[8..10].parse().unwrap_or(1);
    format!("{} {day_of_month}", MONTHS[month - 1])
}

// The chart's drawing area, in SVG units (it scales to the panel's width).
const WIDTH: f64 = 600.0;
const BARS_HEIGHT: f64 = 120.0;
const LINE_HEIGHT: f64 = 60.0;
const LABELS: f64 = 16.0;

/// Stacked bars of operations per day by outcome, and a line of their mean duration. The
/// SVG carries a title and a summary for screen readers; the table below has every number.
/// Written as one string (nothing in it is hydrated), like the operations table's rows.
fn chart(days: &[DayRow]) -> String {
    let total = |d: &DayRow| d.succeeded + d.failed + d.other;
    let max = days.iter().map(total).max().unwrap_or(0).max(1);
    let (succeeded, failed, other) = days.iter().fold((0, 0, 0), |(s, f, o), d| {
        (s + d.succeeded, f + d.failed, o + d.other)
    });
    let slot = WIDTH / days.len().max(1) as f64;

    let timed: Vec<(usize, i64)> = days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.avg_duration_ms.map(|ms| (i, ms)))
        .collect();
    let longest = timed.iter().map(|(_, ms)| *ms).max().unwrap_or(0).max(1);
    let point = |i: usize, ms: i64| {
        (
            i as f64 * slot + slot / 2.0,
            LINE_HEIGHT - ms as f64 / longest as f64 * (LINE_HEIGHT - 6.0) - 3.0,
        )
    };
    let count = succeeded + failed + other;
    let summary = if count == 0 {
        format!("No operations in the last {} days.", days.len())
    } else {
        format!(
            "{count} operation{} in the last {} days: {succeeded} succeeded, {failed} failed, {other} queued, running or cancelled. The busiest day had {max}.",
            if count == 1 { "" } else { "s" },
            days.len()
        )
    };
    let shortest = timed.iter().map(|(_, ms)| *ms).min().unwrap_or(0);
    let duration_summary = if timed.is_empty() {
        "No operation ran in these days.".to_owned()
    } else if duration(shortest) == duration(longest) {
        format!("Mean run time per day: {}.", duration(longest))
    } else {
        format!(
            "Mean run time per day, from {} to {}.",
            duration(shortest),
            duration(longest)
        )
    };

    let mut html = Markup::with_capacity(days.len() * 260 + timed.len() * 160 + 2_400);
    html.raw(r#"<svg class="chart-svg" viewBox="0 0 "#)
        .number(WIDTH as i64)
        .raw(" ")
        .number((BARS_HEIGHT + LABELS) as i64)
        .raw(r#"" role="img" aria-labelledby="chart-ops-title chart-ops-desc"><title id="chart-ops-title">Operations per day by outcome</title><desc id="chart-ops-desc">"#)
        .text(&summary)
        .raw(r#"</desc><line class="chart-axis" x1="0" x2=""#)
        .number(WIDTH as i64)
        .raw(r#"" y1=""#)
        .number(BARS_HEIGHT as i64)
        .raw(r#"" y2=""#)
        .number(BARS_HEIGHT as i64)
        .raw(r#""></line><g class="chart-bars">"#);
    bars(&mut html, days, max);
    html.raw(concat!(
        r#"</g></svg><ul class="legend" aria-hidden="true">"#,
        r#"<li><span class="swatch swatch-succeeded"></span>Succeeded</li>"#,
        r#"<li><span class="swatch swatch-failed"></span>Failed</li>"#,
        r#"<li><span class="swatch swatch-other"></span>Queued, running or cancelled</li>"#,
        r#"<li><span class="muted">Tallest bar: "#
    ))
    .number(max)
    .raw(r#"</span></li></ul><p class="muted">"#)
    .text(&summary)
    .raw(r#"</p><h3 id="duration-heading">Mean run time</h3><svg class="chart-svg chart-line" viewBox="0 0 "#)
    .number(WIDTH as i64)
    .raw(" ")
    .number(LINE_HEIGHT as i64)
    .raw(r#"" role="img" aria-labelledby="chart-duration-title chart-duration-desc"><title id="chart-duration-title">Mean run time per day</title><desc id="chart-duration-desc">"#)
    .text(&duration_summary)
    .raw(r#"</desc><g class="chart-duration"><polyline class="duration-line" points=""#);
    for (n, &(i, ms)) in timed.iter().enumerate() {
        let (x, y) = point(i, ms);
        if n > 0 {
            html.raw(" ");
        }
        html.fixed(x).raw(",").fixed(y);
    }
    html.raw(r#""></polyline>"#);
    for &(i, ms) in &timed {
        let (x, y) = point(i, ms);
        html.raw(r#"<circle class="duration-dot" cx=""#)
            .fixed(x)
            .raw(r#"" cy=""#)
            .fixed(y)
            .raw(r#"" r="3"><title>"#)
            .text(&day_label(days[i].day))
            .raw(": ")
            .text(&duration(ms))
            .raw(" on average</title></circle>");
    }
    html.raw(r#"</g></svg><p class="muted">"#)
        .text(&duration_summary)
        .raw(r#"</p><details class="chart-numbers"><summary>The numbers</summary>"#);
    let mut busy = days.iter().filter(|d| total(d) > 0).peekable();
    if busy.peek().is_none() {
        html.raw(r#"<p class="muted">No operations in these days.</p>"#);
    } else {
        html.raw(concat!(
            r#"<table class="table"><caption class="visually-hidden">Operations per day</caption>"#,
            r#"<thead><tr><th scope="col">Day</th><th scope="col">Succeeded</th><th scope="col">Failed</th>"#,
            r#"<th scope="col">Other</th><th scope="col">Mean run time</th></tr></thead><tbody>"#
        ));
        for d in busy {
            html.raw(r#"<tr><th scope="row"><time datetime=""#)
                .attr(&exact_utc(d.day * 86_400_000)[..10])
                .raw(r#"">"#)
                .text(&day_label(d.day))
                .raw("</time></th><td>")
                .number(d.succeeded)
                .raw("</td><td>")
                .number(d.failed)
                .raw("</td><td>")
                .number(d.other)
                .raw("</td><td>")
                .text(
                    &d.avg_duration_ms
                        .map(duration)
                        .unwrap_or_else(|| "—".into()),
                )
                .raw("</td></tr>");
        }
        html.raw("</tbody></table>");
    }
    html.raw("</details>");
    html.into_string()
}

/// The chart's bars of each day, stacked by outcome and scaled to the busiest day (`max`),
/// with a label a week apart, written into `bars`.
fn bars(bars: &mut Markup, days: &[DayRow], max: i64) {
    let slot = WIDTH / days.len().max(1) as f64;
    let bar = slot * 0.7;
    let scale = BARS_HEIGHT / max.max(1) as f64;
    for (i, d) in days.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let label = day_label(d.day);
        bars.raw("<g>");
        // Stacked from the bottom: succeeded, then failed, then the rest.
        let mut top = BARS_HEIGHT;
        for (class, n) in [
            ("succeeded", d.succeeded),
            ("failed", d.failed),
            ("other", d.other),
        ] {
            if n == 0 {
                continue;
            }
            let height = n as f64 * scale;
            top -= height;
            bars.raw(r#"<rect class="bar bar-"#)
                .raw(class)
                .raw(r#"" x=""#)
                .fixed(x)
                .raw(r#"" y=""#)
                .fixed(top)
                .raw(r#"" width=""#)
                .fixed(bar)
                .raw(r#"" height=""#)
                .fixed(height)
                .raw(r#""><title>"#)
                .text(&label)
                .raw(": ")
                .number(n)
                .raw(" ")
                .raw(class)
                .raw("</title></rect>");
        }
        // A label a week apart, ending with today's.
        if (days.len() - 1 - i).is_multiple_of(7) {
            // Today's label ends at the right edge rather than overflowing it.
            let (anchor, at) = if i + 1 == days.len() {
                ("end", x + bar)
            } else {
                ("middle", x + bar / 2.0)
            };
            bars.raw(r#"<text class="chart-label" x=""#)
                .fixed(at)
                .raw(r#"" y=""#)
                .fixed(BARS_HEIGHT + LABELS - 3.0)
                .raw(r#"" text-anchor=""#)
                .raw(anchor)
                .raw(r#"">"#)
                .text(&label)
                .raw("</text>");
        }
        bars.raw("</g>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_survive_paging() {
        let filters = Filters {
            kind: Some("deploy".into()),
            status: None,
            requested_by: Some(7),
        };
        assert_eq!(
            filters.query(Some(120)),
            "?kind=deploy&requested_by=7&before=120"
        );
        assert_eq!(Filters::default().query(None), "");
    }

    #[test]
    fn filter_fields_preset_the_filters_in_force_and_escape_addresses() {
        let members = vec![
            (1, "ann@example.com".to_owned()),
            (2, r#""><script>x</script>@example.com"#.to_owned()),
        ];
        let filters = Filters {
            kind: Some("restart".into()),
            status: Some("failed".into()),
            requested_by: Some(2),
        };
        let html = filter_fields(&filters, &members, "/teams/acme/history");
        assert_eq!(html.matches(" selected>").count(), 3, "{html}");
        assert!(
            html.contains(r#"<option value="restart" selected>restart</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="failed" selected>failed</option>"#),
            "{html}"
        );
        assert!(html.contains(r#"<option value="2" selected>"&gt;&lt;script&gt;x&lt;/script&gt;@example.com</option>"#), "{html}");
        assert!(
            html.contains(r#"<option value="1">ann@example.com</option>"#),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains(r#"<a href="/teams/acme/history">Clear filters</a>"#),
            "{html}"
        );
        // Every kind and status is offered, after "Any".
        assert_eq!(
            html.matches("<option").count(),
            2 + OperationKind::ALL.len() + OperationStatus::ALL.len() + 1 + members.len()
        );

        let none = filter_fields(&Filters::default(), &members, "/teams/acme/history");
        assert!(!none.contains("selected"), "{none}");
        assert!(!none.contains("Clear filters"), "{none}");
    }

    #[test]
    fn days_read_as_dates() {
        // 2026-11-26 is day 20_783 since the epoch.
        assert_eq!(day_label(20_783), "Nov 26");
        assert_eq!(day_label(0), "Jan 1");
    }

    #[test]
    fn the_chart_says_in_words_and_numbers_what_it_draws() {
        let quiet: Vec<DayRow> = (20_754..=20_783)
            .map(|day| DayRow {
                day,
                succeeded: 0,
                failed: 0,
                other: 0,
                avg_duration_ms: None,
            })
            .collect();
        let html = chart(&quiet);
        assert!(
            html.contains(r#"<svg class="chart-svg" viewBox="0 0 600 136" role="img""#),
            "{html}"
        );
        assert_eq!(
            html.matches("No operations in the last 30 days.").count(),
            2,
            "{html}"
        );
        assert_eq!(
            html.matches("No operation ran in these days.").count(),
            2,
            "{html}"
        );
        assert!(
            html.contains(r#"<p class="muted">No operations in these days.</p>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<polyline class="duration-line" points=""></polyline>"#),
            "{html}"
        );
        assert!(!html.contains("<table"), "{html}");

        let mut busy = quiet.clone();
        busy[28] = DayRow {
            day: 20_782,
            succeeded: 1,
            failed: 0,
            other: 0,
            avg_duration_ms: Some(2_000),
        };
        busy[29] = DayRow {
            day: 20_783,
            succeeded: 2,
            failed: 1,
            other: 1,
            avg_duration_ms: Some(500),
        };
        let html = chart(&busy);
        let said = "5 operations in the last 30 days: 3 succeeded, 1 failed, 1 queued, running or cancelled. The busiest day had 4.";
        assert!(
            html.contains(&format!(r#"<desc id="chart-ops-desc">{said}</desc>"#)),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"<p class="muted">{said}</p>"#)),
            "{html}"
        );
        assert!(html.contains("Tallest bar: 4</span>"), "{html}");
        assert_eq!(
            html.matches("Mean run time per day, from 500 ms to 2 s.")
                .count(),
            2,
            "{html}"
        );
        // The longest mean is at the top of the line, the shortest near the bottom.
        assert!(html.contains(r#"points="570.0,3.0 590.0,43.5""#), "{html}");
        assert!(
            html.contains("<title>Nov 26: 500 ms on average</title>"),
            "{html}"
        );
        // The table lists the busy days only.
        assert_eq!(html.matches("<tr>").count(), 1 + 2, "{html}");
        assert!(html.contains(r#"<tr><th scope="row"><time datetime="2026-11-26">Nov 26</time></th><td>2</td><td>1</td><td>1</td><td>500 ms</td></tr>"#), "{html}");
        assert_eq!(html.matches("<g>").count(), 30, "{html}");
    }

    #[test]
    fn bars_stack_each_day_by_outcome_with_a_label_a_week_apart() {
        // 2026-11-26 is day 20_783; the chart's last day.
        let days: Vec<DayRow> = (20_754..=20_783)
            .map(|day| DayRow {
                day,
                succeeded: if day == 20_783 { 3 } else { 0 },
                failed: if day == 20_783 { 1 } else { 0 },
                other: if day == 20_782 { 2 } else { 0 },
                avg_duration_ms: None,
            })
            .collect();
        let mut svg = Markup::with_capacity(0);
        bars(&mut svg, &days, 4);
        let svg = svg.into_string();
        assert_eq!(svg.matches("<g>").count(), 30);
        // The busiest day fills the height: 3 succeeded from the bottom, 1 failed on top.
        assert!(svg.contains(r#"<rect class="bar bar-succeeded" x="583.0" y="30.0" width="14.0" height="90.0"><title>Nov 26: 3 succeeded</title></rect>"#), "{svg}");
        assert!(svg.contains(r#"<rect class="bar bar-failed" x="583.0" y="0.0" width="14.0" height="30.0"><title>Nov 26: 1 failed</title></rect>"#), "{svg}");
        assert!(svg.contains(r#"<title>Nov 25: 2 other</title>"#), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3);
        // Labels a week apart, the last (today's) ending at the right edge.
        assert_eq!(svg.matches("<text").count(), 5);
        assert!(svg.contains(r#"text-anchor="end">Nov 26</text>"#), "{svg}");
        assert!(
            svg.contains(r#"text-anchor="middle">Nov 19</text>"#),
            "{svg}"
        );
    }
}
