//! Charts drawn as inline SVG on the server. The timeline of a job's runs: one bar per pixel-wide
//! time bucket that holds a run, as tall as its longest run, coloured by its worst outcome, a
//! `<title>` per bar saying what it was. The step chart of a product's prices over time: one line per price.

use crate::runs::{RunSpan, RunStatus};
use chrono::{NaiveDateTime, TimeZone as _};
use chrono_tz::Tz;
use maud::{html, Markup};
use rust_decimal::prelude::ToPrimitive as _;
use rust_decimal::Decimal;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
/// Room on the left for the duration axis and at the bottom for the day labels.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;

/// The colour of a run's bar (and of its status badge).
pub(crate) fn status_colour(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "#2e7d32",
        RunStatus::Partial => "#f9a825",
        RunStatus::Failed => "#c62828",
        RunStatus::Interrupted => "#6a1b9a",
        RunStatus::Skipped => "#9e9e9e",
        RunStatus::Running => "#1565c0",
    }
}

/// How bad an outcome is, for the colour of a bucket: the worst run in it decides.
fn severity(status: RunStatus) -> u8 {
    match status {
        RunStatus::Success => 0,
        RunStatus::Running => 1,
        RunStatus::Skipped => 2,
        RunStatus::Partial => 3,
        RunStatus::Interrupted => 4,
        RunStatus::Failed => 5,
    }
}

/// The runs that started in one pixel-wide slice of the timeline.
struct Bucket {
    index: usize,
    runs: usize,
    worst: RunStatus,
    /// Of the worst status, how many.
    worst_runs: usize,
    longest_ms: f64,
    finished: usize,
    finished_ms: f64,
    /// The single run's counts when the bucket holds one run.
    single: Option<RunSpan>,
}

/// Draws `runs` (any order) between `from` and `to` (UTC), the day lines in `zone`. The time axis
/// is cut into one bucket per pixel of the plot; each bucket that holds a run is one bar, as tall as
/// its longest run and coloured by its worst outcome (a failed run colours its bucket failed), so
/// the chart stays a few hundred bars however often the job runs. A job that runs less often than
/// once per bucket (every 12 minutes or less often) gets one bar per run.
pub(crate) fn timeline(runs: &[RunSpan], from: NaiveDateTime, to: NaiveDateTime, zone: Tz) -> Markup {
    let span_ms = (to - from).num_milliseconds().max(1) as f64;
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of =
        |t: NaiveDateTime| LEFT + ((t - from).num_milliseconds() as f64 / span_ms).clamp(0.0, 1.0) * plot_w;
    let duration_ms = |run: &RunSpan| {
        run.completed_at
            .unwrap_or(to)
            .signed_duration_since(run.started_at)
            .num_milliseconds()
            .max(0) as f64
    };
    let bucket_count = plot_w as usize;
    let bucket_ms = span_ms / bucket_count as f64;
    let mut buckets: Vec<Option<Bucket>> = (0..bucket_count).map(|_| None).collect();
    for run in runs {
        let offset = (run.started_at - from).num_milliseconds() as f64 / bucket_ms;
        let index = (offset.max(0.0) as usize).min(bucket_count - 1);
        let took = duration_ms(run);
        let finished = usize::from(run.completed_at.is_some());
        let finished_ms = if run.completed_at.is_some() { took } else { 0.0 };
        match &mut buckets[index] {
            Some(bucket) => {
                bucket.runs += 1;
                bucket.single = None;
                bucket.longest_ms = bucket.longest_ms.max(took);
                bucket.finished += finished;
                bucket.finished_ms += finished_ms;
                if severity(run.status) > severity(bucket.worst) {
                    bucket.worst = run.status;
                    bucket.worst_runs = 1;
                } else if run.status == bucket.worst {
                    bucket.worst_runs += 1;
                }
            }
            slot @ None => {
                *slot = Some(Bucket {
                    index,
                    runs: 1,
                    worst: run.status,
                    worst_runs: 1,
                    longest_ms: took,
                    finished,
                    finished_ms,
                    single: Some(*run),
                });
            }
        }
    }
    let mut drawn: Vec<Bucket> = buckets.into_iter().flatten().collect();
    // The worst drawn last, on top of a neighbour's overlapping bar.
    drawn.sort_by_key(|b| (severity(b.worst), b.index));
    let max_ms = drawn.iter().map(|b| b.longest_ms).fold(1.0_f64, f64::max);
    let bar_w = (plot_w / 7.0 / 48.0).clamp(2.0, 8.0);
    let bucket_start =
        |index: usize| from + chrono::Duration::milliseconds((index as f64 * bucket_ms) as i64);
    let short = |ms: f64| crate::cli::format_duration(chrono::Duration::milliseconds(ms as i64));
    // Midnights in the configured zone, for the day lines.
    let mut days = Vec::new();
    let local_from = zone.from_utc_datetime(&from).date_naive();
    for offset in 0..=8 {
        let Some(day) = local_from.checked_add_days(chrono::Days::new(offset)) else {
            continue;
        };
        let Some(midnight) = day.and_hms_opt(0, 0, 0) else {
            continue;
        };
        let Some(local) = zone.from_local_datetime(&midnight).earliest() else {
            continue;
        };
        let utc = local.naive_utc();
        if utc > from && utc < to {
            days.push((x_of(utc), day.format("%m-%d").to_string()));
        }
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) {
            title { "Runs of the last 7 days: bar height is the longest duration, colour the worst status" }
            rect x=(LEFT) y=(TOP) width=(plot_w) height=(plot_h) fill="#fafafa" stroke="#ddd" {}
            @for (x, label) in &days {
                line x1=(fmt(*x)) x2=(fmt(*x)) y1=(TOP) y2=(TOP + plot_h) stroke="#e0e0e0" {}
                text x=(fmt(*x + 3.0)) y=(HEIGHT - 6.0) font-size="11" fill="#555" { (label) }
            }
            text x="4" y=(TOP + 10.0) font-size="11" fill="#555" { (short(max_ms)) }
            text x="4" y=(TOP + plot_h) font-size="11" fill="#555" { "0" }
            @for bucket in &drawn {
                @let h = (bucket.longest_ms / max_ms * plot_h).max(1.5);
                @let x = match &bucket.single {
                    Some(run) => x_of(run.started_at),
                    None => x_of(bucket_start(bucket.index)) + 0.5,
                };
                rect class=(format!("run {}", bucket.worst)) x=(fmt(x - bar_w / 2.0)) y=(fmt(TOP + plot_h - h))
                    width=(fmt(bar_w)) height=(fmt(h)) fill=(status_colour(bucket.worst)) {
                    title {
                        @if let Some(run) = &bucket.single {
                            (crate::cli::format_time(run.started_at, zone)) " " (zone.name()) ": " (run.status)
                            @if let Some(d) = run.duration() { ", " (crate::cli::format_duration(d)) }
                            ", " (run.success_count) "/" (run.total_count) " ok"
                        } @else {
                            (crate::cli::format_time(bucket_start(bucket.index), zone)) " " (zone.name())
                            " and the next " (short(bucket_ms)) ": " (bucket.runs) " runs, "
                            (bucket.worst_runs) " " (bucket.worst) ", longest " (short(bucket.longest_ms))
                            @if bucket.finished > 0 { ", mean " (short(bucket.finished_ms / bucket.finished as f64)) }
                        }
                    }
                }
            }
        }
    }
}

/// A coordinate with one decimal, to keep the markup short.
fn fmt(value: f64) -> String {
    format!("{value:.1}")
}

/// One line of a step chart: its name (for the legend and the `class` of its path), its colour,
/// and its value from each time on (`None`: no value from then).
pub(crate) struct StepSeries {
    pub(crate) name: &'static str,
    pub(crate) colour: &'static str,
    pub(crate) steps: Vec<(NaiveDateTime, Option<Decimal>)>,
}

/// Draws `series` as step lines between `from` and `to` (UTC), the dates in `zone`. The scale is
/// worked out on the decimals; only the pixel positions are floating point.
pub(crate) fn steps(
    title: &str,
    series: &[StepSeries],
    from: NaiveDateTime,
    to: NaiveDateTime,
    zone: Tz,
) -> Markup {
    let span_ms = (to - from).num_milliseconds().max(1) as f64;
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of =
        |t: NaiveDateTime| LEFT + ((t - from).num_milliseconds() as f64 / span_ms).clamp(0.0, 1.0) * plot_w;
    let values = series.iter().flat_map(|s| s.steps.iter().filter_map(|(_, v)| *v));
    let (low, high) = values.fold((None::<Decimal>, None::<Decimal>), |(low, high), v| {
        (
            Some(low.map_or(v, |l| l.min(v))),
            Some(high.map_or(v, |h| h.max(v))),
        )
    });
    let (low, high) = match (low, high) {
        (Some(low), Some(high)) if high > low => (low, high),
        (Some(value), Some(_)) => (value - Decimal::ONE, value + Decimal::ONE),
        _ => (Decimal::ZERO, Decimal::ONE),
    };
    let range = high - low;
    let y_of = |v: Decimal| {
        let share = ((v - low) / range).to_f64().unwrap_or(0.0).clamp(0.0, 1.0);
        TOP + plot_h - share * plot_h
    };
    let path_of = |steps: &[(NaiveDateTime, Option<Decimal>)]| {
        let mut d = String::new();
        let mut drawing: Option<f64> = None;
        for (at, value) in steps {
            let x = x_of(*at);
            if drawing.is_some() {
                d.push_str(&format!(" H{}", fmt(x)));
            }
            drawing = match value {
                Some(v) => {
                    let y = y_of(*v);
                    if drawing.is_some() {
                        d.push_str(&format!(" V{}", fmt(y)));
                    } else {
                        d.push_str(&format!(
                            "{}M{} {}",
                            if d.is_empty() { "" } else { " " },
                            fmt(x),
                            fmt(y)
                        ));
                    }
                    Some(y)
                }
                None => None,
            };
        }
        if drawing.is_some() {
            d.push_str(&format!(" H{}", fmt(x_of(to))));
        }
        d
    };
    let date = |t: NaiveDateTime| zone.from_utc_datetime(&t).format("%Y-%m-%d").to_string();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="steps" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) {
            title { (title) }
            rect x=(LEFT) y=(TOP) width=(plot_w) height=(plot_h) fill="#fafafa" stroke="#ddd" {}
            text x="4" y=(TOP + 10.0) font-size="11" fill="#555" { (high) }
            text x="4" y=(TOP + plot_h) font-size="11" fill="#555" { (low) }
            text x=(LEFT) y=(HEIGHT - 6.0) font-size="11" fill="#555" { (date(from)) }
            text x=(WIDTH - 8.0) y=(HEIGHT - 6.0) font-size="11" fill="#555" text-anchor="end" { (date(to)) }
            @for line in series {
                path class=(format!("price {}", line.name)) d=(path_of(&line.steps)) fill="none"
                    stroke=(line.colour) stroke-width="2" {
                    title { (line.name) }
                }
            }
        }
    }
}
