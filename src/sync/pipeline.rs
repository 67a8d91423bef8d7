//! The machinery the kinds share: where product codes come from (streamed from the database in
//! keyset pages, or the codes given), how many calls go out at once, the batch call that isolates
//! a refused code, and [`drive`], the loop that writes results a page at a time and stops on
//! cancel.

use super::{AppContext, Ending, RunOverrides, RunTracker};
use crate::config::SyncJob;
use crate::db::{products, Db};
use crate::haier::HaierError;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use serde::Serialize;
use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;

/// Rows written per transaction: short enough never to hold a lock for long.
pub(crate) const PAGE_ROWS: usize = 200;
/// Product codes read from the database per keyset page.
pub(crate) const CODES_PER_PAGE: i64 = 1_000;
/// Calls in flight at once, at least, when the job does not say.
const MIN_CONCURRENCY: usize = 8;

/// Requests in flight at once for `job`: its `concurrency`, else half the openplat quota per
/// second (at least twice the burst and [`MIN_CONCURRENCY`]), which keeps the quota busy while
/// Haier takes up to half a second to answer. The client's shared limiter does the pacing; this
/// only keeps enough calls waiting for it.
pub(crate) fn concurrency(ctx: &AppContext, job: &SyncJob) -> usize {
    job.concurrency
        .unwrap_or_else(|| default_concurrency(ctx.config.haier.rate_limit))
        .max(1)
}

/// The calls in flight of a job that does not set `concurrency`, for an openplat quota.
pub fn default_concurrency(rate: crate::config::RateLimit) -> usize {
    (rate.per_second as usize / 2)
        .max(2 * rate.burst as usize)
        .max(MIN_CONCURRENCY)
}

/// A stable hash of Haier's fields, to tell a changed row from an unchanged one: MD5 (hex) of
/// their JSON. Stable across Rust versions and platforms, unlike std's `DefaultHasher`.
pub(crate) fn content_hash(fields: &impl Serialize) -> String {
    // The JSON is written straight into the hash: no buffer per row.
    let mut hasher = Md5::new();
    if serde_json::to_writer(&mut hasher, fields).is_err() {
        // Serialising these plain structs cannot fail; an empty input is what it hashed before.
        return hex::encode(Md5::digest(b""));
    }
    hex::encode(hasher.finalize())
}

/// The product codes a run covers.
#[derive(Debug, Clone)]
pub(crate) enum CodeSource {
    /// These codes (from `--product-codes` or the job's `product_codes`), without repeats.
    Given(Vec<String>),
    /// Every listed product in `haier_products`; only those for sale when `for_sale_only`.
    Listed { for_sale_only: bool },
}

impl CodeSource {
    /// The override's codes, else the job's, else every listed product.
    pub(crate) fn of(job: &SyncJob, overrides: &RunOverrides, for_sale_only: bool) -> CodeSource {
        match given_codes(job, overrides) {
            Some(codes) => CodeSource::Given(codes),
            None => CodeSource::Listed { for_sale_only },
        }
    }

    /// How many codes the source yields.
    pub(crate) async fn count(&self, db: &Db) -> anyhow::Result<u64> {
        match self {
            CodeSource::Given(codes) => Ok(codes.len() as u64),
            CodeSource::Listed { for_sale_only } => {
                let for_sale_only = *for_sale_only;
                let n = db
                    .run(move |c| Ok(products::count_listed(c, for_sale_only)?))
                    .await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }
        }
    }

    /// The codes, a page at a time. Listed codes are read in keyset pages of
    /// [`CODES_PER_PAGE`], so memory stays flat however large the catalog.
    pub(crate) fn pages(self, db: Db) -> impl Stream<Item = anyhow::Result<Vec<String>>> + Send {
        enum Cursor {
            Given(Option<Vec<String>>),
            Listed {
                for_sale_only: bool,
                after: Option<String>,
                done: bool,
            },
        }
        let start = match self {
            CodeSource::Given(codes) => Cursor::Given(Some(codes)),
            CodeSource::Listed { for_sale_only } => Cursor::Listed {
                for_sale_only,
                after: None,
                done: false,
            },
        };
        futures::stream::unfold(start, move |cursor| {
            let db = db.clone();
            async move {
                match cursor {
                    Cursor::Given(codes) => {
                        let codes = codes.filter(|c| !c.is_empty())?;
                        Some((Ok(codes), Cursor::Given(None)))
                    }
                    Cursor::Listed { done: true, .. } => None,
                    Cursor::Listed {
                        for_sale_only,
                        after,
                        done: false,
                    } => {
                        let from = after.clone();
                        let page = db
                            .run(move |c| {
                                Ok(products::listed_codes_after(
                                    c,
                                    from.as_deref(),
                                    CODES_PER_PAGE,
                                    for_sale_only,
                                )?)
                            })
                            .await;
                        match page {
                            Err(e) => Some((
                                Err(e),
                                Cursor::Listed {
                                    for_sale_only,
                                    after,
                                    done: true,
                                },
                            )),
                            Ok(codes) if codes.is_empty() => None,
                            Ok(codes) => {
                                let done = (codes.len() as i64) < CODES_PER_PAGE;
                                let after = codes.last().cloned();
                                Some((
                                    Ok(codes),
                                    Cursor::Listed {
                                        for_sale_only,
                                        after,
                                        done,
                                    },
                                ))
                            }
                        }
                    }
                }
            }
        })
    }
}

/// The codes of `--product-codes`, else of the job's `product_codes`: trimmed, blanks and
/// repeats left out, in the order given. `None` when neither names any.
pub(crate) fn given_codes(job: &SyncJob, overrides: &RunOverrides) -> Option<Vec<String>> {
    let codes = match &overrides.product_codes {
        Some(codes) => codes,
        None if !job.product_codes.is_empty() => &job.product_codes,
        None => return None,
    };
    let mut seen = HashSet::new();
    Some(
        codes
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty() && seen.insert(c.clone()))
            .collect(),
    )
}

/// What one fetch gave.
pub(crate) enum Fetched<T> {
    /// Rows to write, and items that failed with their reasons.
    Items {
        rows: Vec<T>,
        failures: Vec<(String, String)>,
    },
    /// The run cannot go on: credentials refused, breaker open.
    Fatal(HaierError),
    /// Reading what to fetch failed (the database).
    Broken(anyhow::Error),
}

impl<T> Fetched<T> {
    pub(crate) fn rows(rows: Vec<T>) -> Self {
        Fetched::Items {
            rows,
            failures: Vec::new(),
        }
    }

    pub(crate) fn failed(item: String, reason: String) -> Self {
        Fetched::Items {
            rows: Vec::new(),
            failures: vec![(item, reason)],
        }
    }
}

/// What the page writes did, summed over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Rows that were new.
    pub inserted: u64,
    /// Rows that existed and changed (or were re-listed).
    pub updated: u64,
    /// Rows left as they were.
    pub unchanged: u64,
    /// Kind-specific: price moves recorded, orders marked delivered.
    pub noted: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Written) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.noted += other.noted;
    }
}

/// Takes fetch results as they come, writes their rows a page ([`PAGE_ROWS`]) at a time with
/// `write_page` (one short transaction each, after the page's calls have answered), counts
/// successes and failures in `run`, and stops when `run` is cancelled (writing what had already
/// arrived) or on a fatal error. Dropping `results` on the way out ends the calls in flight.
pub(crate) async fn drive<T, S, W, Fut>(
    run: &RunTracker<'_>,
    results: S,
    mut write_page: W,
) -> (Ending, Written)
where
    S: Stream<Item = Fetched<T>>,
    W: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = anyhow::Result<Written>>,
{
    let mut written = Written::default();
    let mut page: Vec<T> = Vec::with_capacity(PAGE_ROWS);
    let ending = {
        let mut results = pin!(results);
        loop {
            let next = tokio::select! {
                biased;
                () = run.cancelled() => break Ending::Stopped,
                next = results.next() => next,
            };
            match next {
                None => break Ending::Completed,
                Some(Fetched::Items { rows, failures }) => {
                    run.answered((rows.len() + failures.len()) as u64);
                    for (item, reason) in failures {
                        run.fail(item, reason);
                    }
                    page.extend(rows);
                    if page.len() >= PAGE_ROWS {
                        let full = std::mem::replace(&mut page, Vec::with_capacity(PAGE_ROWS));
                        let n = full.len() as u64;
                        match write_page(full).await {
                            Ok(w) => written += w,
                            Err(e) => return (Ending::Failed(e), written),
                        }
                        run.succeed(n);
                        run.checkpoint().await;
                    }
                }
                Some(Fetched::Fatal(e)) => break Ending::Failed(e.into()),
                Some(Fetched::Broken(e)) => break Ending::Failed(e),
            }
        }
    };
    if !page.is_empty() {
        let n = page.len() as u64;
        match write_page(page).await {
            Ok(w) => written += w,
            Err(e) => return (Ending::Failed(e), written),
        }
        run.succeed(n);
    }
    (ending, written)
}

/// Makes one Haier call of a job. When the breaker is open (an outage opened it), waits out the
/// cool-down once and calls again: as the probe, or after the probe of another call. So a run
/// that meets a breaker opened by an earlier outage goes on as soon as Haier answers again,
/// rather than failing until the next tick; a run during an outage fails after at most one
/// cool-down, having sent one probe. The wait ends with the run (cancel, timeout).
pub(crate) async fn call_haier<T, F, Fut>(call: F) -> Result<T, HaierError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, HaierError>>,
{
    match call().await {
        Err(HaierError::BreakerOpen { retry_in, .. }) => {
            tracing::debug!(
                retry_in_ms = retry_in.as_millis() as u64,
                "circuit breaker open; waiting for its probe"
            );
            tokio::time::sleep(retry_in).await;
            call().await
        }
        other => other,
    }
}

/// Calls `call` (through [`call_haier`]) for a batch of codes. When Haier refuses the whole batch (a business error), each
/// code is asked alone, so that one refused code fails alone. A fatal error ends the run; any
/// other error fails the batch's codes.
pub(crate) async fn fetch_batch<T, F, Fut>(
    codes: &[String],
    call: F,
) -> Result<(Vec<T>, Vec<(String, String)>), HaierError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, HaierError>>,
{
    match call_haier(|| call(codes.to_vec())).await {
        Ok(rows) => Ok((rows, Vec::new())),
        Err(e) if e.is_fatal_for_run() => Err(e),
        Err(HaierError::Business { .. }) if codes.len() > 1 => {
            let mut rows = Vec::new();
            let mut failures = Vec::new();
            for code in codes {
                match call_haier(|| call(vec![code.clone()])).await {
                    Ok(found) => rows.extend(found),
                    Err(e) if e.is_fatal_for_run() => return Err(e),
                    Err(e) => failures.push((code.clone(), e.to_string())),
                }
            }
            Ok((rows, failures))
        }
        Err(e) => {
            let reason = e.to_string();
            Ok((
                Vec::new(),
                codes.iter().map(|c| (c.clone(), reason.clone())).collect(),
            ))
        }
    }
}

/// Splits pages of codes into batches of `size`, passing a read error on as it is.
pub(crate) fn batches(
    pages: impl Stream<Item = anyhow::Result<Vec<String>>> + Send,
    size: usize,
) -> impl Stream<Item = anyhow::Result<Vec<String>>> + Send {
    pages.flat_map(move |page| {
        let items: Vec<anyhow::Result<Vec<String>>> = match page {
            Ok(codes) => codes.chunks(size.max(1)).map(|c| Ok(c.to_vec())).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{CatchUp, Overlap, SyncKind};

    /// A job of `kind` with plain defaults, for unit tests.
    pub(crate) fn job(kind: SyncKind) -> SyncJob {
        SyncJob {
            name: kind.as_str().into(),
            kind,
            schedule: None,
            timezone: chrono_tz::Asia::Shanghai,
            enabled: true,
            timeout_ms: None,
            overlap: Overlap::Skip,
            jitter_ms: 0,
            catch_up: CatchUp::Skip,
            catch_up_within_ms: None,
            product_codes: Vec::new(),
            county_codes: vec!["110101".into()],
            concurrency: None,
        }
    }

    #[test]
    fn the_content_hash_is_stable_across_builds() {
        // A fixed value: if this changes, every stored row would be rewritten once.
        #[derive(Serialize)]
        struct Fields<'a> {
            code: &'a str,
            price: Option<&'a str>,
        }
        let hash = content_hash(&Fields {
            code: "GD0A3K9Z1",
            price: Some("2399.00"),
        });
        assert_eq!(
            hash, "78d30b52001ad71c9fabe9827e5400f7",
            "MD5 of the JSON `{{\"code\":…,\"price\":…}}`"
        );
        assert_eq!(
            hash,
            content_hash(&Fields {
                code: "GD0A3K9Z1",
                price: Some("2399.00"),
            })
        );
        assert_ne!(
            hash,
            content_hash(&Fields {
                code: "GD0A3K9Z1",
                price: Some("2399.0"),
            })
        );
    }

    #[test]
    fn given_codes_come_from_the_override_then_the_job_without_blanks_or_repeats() {
        let mut job = job(SyncKind::Prices);
        assert_eq!(given_codes(&job, &RunOverrides::default()), None);
        job.product_codes = vec!["B".into(), "A".into()];
        assert_eq!(
            given_codes(&job, &RunOverrides::default()),
            Some(vec!["B".to_owned(), "A".to_owned()])
        );
        let overrides = RunOverrides {
            product_codes: Some(vec![" C ".into(), "".into(), "D".into(), "C".into()]),
            ..RunOverrides::default()
        };
        assert_eq!(
            given_codes(&job, &overrides),
            Some(vec!["C".to_owned(), "D".to_owned()])
        );
    }

    #[tokio::test]
    async fn pages_of_codes_are_split_into_batches() {
        let pages = futures::stream::iter(vec![
            Ok((0..45).map(|i| format!("P{i}")).collect::<Vec<_>>()),
            Err(anyhow::anyhow!("database gone")),
        ]);
        let batches: Vec<anyhow::Result<Vec<String>>> = batches(pages, 20).collect().await;
        let sizes: Vec<Option<usize>> = batches.iter().map(|b| b.as_ref().ok().map(Vec::len)).collect();
        assert_eq!(sizes, [Some(20), Some(20), Some(5), None]);
    }

    #[tokio::test]
    async fn a_refused_batch_is_asked_code_by_code() {
        let refused = |codes: Vec<String>| async move {
            if codes.iter().any(|c| c == "BAD") {
                Err(HaierError::Business {
                    system: crate::haier::System::Openplat,
                    operation: "prices",
                    code: "PARAM_MISSING".into(),
                    message: "bad code".into(),
                })
            } else {
                Ok(codes)
            }
        };
        let codes: Vec<String> = ["A", "BAD", "C"].iter().map(|s| s.to_string()).collect();
        let (rows, failures) = fetch_batch(&codes, refused).await.unwrap();
        assert_eq!(rows, ["A", "C"]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "BAD");

        let fatal = |_codes: Vec<String>| async move {
            Err::<Vec<String>, _>(HaierError::BreakerOpen {
                system: crate::haier::System::Openplat,
                retry_in: std::time::Duration::from_millis(1),
            })
        };
        assert!(fetch_batch(&codes, fatal).await.is_err());
    }

    /// How a generated run goes: what each item yields, and where it is cut short.
    #[derive(Debug)]
    struct Script {
        planned: u64,
        /// Per item: `Some(true)` a row, `Some(false)` a failed item, `None` a fatal error.
        items: Vec<Option<bool>>,
        cancel_after: Option<usize>,
        failing_write: Option<usize>,
    }

    fn script(rng: &mut impl rand::Rng) -> Script {
        let planned = rng.random_range(0..700u64);
        // The source may yield fewer or more items than counted at the start.
        let yielded = match rng.random_range(0..10) {
            0 => rng.random_range(0..=planned as usize + 20),
            _ => planned as usize,
        };
        let fatal_at = (rng.random_range(0..4) == 0).then(|| rng.random_range(0..=yielded));
        let items = (0..yielded)
            .map(|i| (Some(i) != fatal_at).then(|| rng.random_range(0..10) > 0))
            .collect();
        Script {
            planned,
            items,
            cancel_after: (rng.random_range(0..4) == 0).then(|| rng.random_range(0..=yielded)),
            failing_write: (rng.random_range(0..5) == 0).then(|| rng.random_range(0..4)),
        }
    }

    #[tokio::test]
    async fn every_way_a_run_ends_closes_with_counts_that_add_up() {
        use crate::db::testing::TestDb;
        use crate::runs::{RunRecorder, RunSpec, SyncType, Trigger};
        use crate::sync::NoProgress;
        use rand::SeedableRng;
        use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio_util::sync::CancellationToken;

        let test = TestDb::new().await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        for case in 0..150 {
            let script = script(&mut rng);
            let spec = RunSpec {
                job_name: format!("case-{case}"),
                sync_type: SyncType::Stock,
                trigger: Trigger::Manual,
                scheduled_for: None,
            };
            let recorder = RunRecorder::start(&test.db, spec).await.unwrap().unwrap();
            let cancel = CancellationToken::new();
            let run = RunTracker::new(&recorder, cancel.clone(), Arc::new(NoProgress));
            run.set_total(script.planned);
            let cancel_after = script.cancel_after;
            let results =
                futures::stream::iter(script.items.clone().into_iter().enumerate()).map(move |(i, item)| {
                    if Some(i) == cancel_after {
                        cancel.cancel();
                    }
                    match item {
                        Some(true) => Fetched::rows(vec![i]),
                        Some(false) => Fetched::failed(format!("P{i}"), "refused".into()),
                        None => Fetched::Fatal(HaierError::Unauthorized {
                            system: crate::haier::System::Openplat,
                            operation: "stock",
                        }),
                    }
                });
            let written = AtomicI64::new(0);
            let writes = AtomicUsize::new(0);
            let (ending, _) = drive(&run, results, |page: Vec<usize>| {
                let n = writes.fetch_add(1, Ordering::SeqCst);
                let ok = Some(n) != script.failing_write;
                if ok {
                    written.fetch_add(page.len() as i64, Ordering::SeqCst);
                }
                async move {
                    anyhow::ensure!(ok, "database gone");
                    Ok(Written::default())
                }
            })
            .await;
            let went_through = matches!(ending, Ending::Completed);
            let (counts, unreached) = run.counts().closed(went_through);
            assert_eq!(
                counts.total,
                counts.success + counts.failed,
                "{script:?} ended {ending:?}"
            );
            assert_eq!(counts.success, written.load(Ordering::SeqCst), "{script:?}");
            if went_through {
                assert_eq!(counts.total as usize, script.items.len(), "{script:?}");
            } else {
                assert!(counts.total >= script.planned as i64, "{script:?}");
            }
            assert!(unreached >= 0);
        }
    }
}
