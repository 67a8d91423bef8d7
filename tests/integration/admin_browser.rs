//! The status page in a real browser: Debian's headless Chromium loads the overview and a job
//! page of a database seeded with a week of runs, the DOM it built is read back and checked for
//! every job's name and a drawn chart, and PNG screenshots are saved under
//! `target/admin-screenshots/` for a person to look at. Without the token the browser gets no
//! page. Without Chromium the tests are skipped with a printed line, or fail under `CI=true`.

use crate::support::{insert_many_by_sql, instance_row, serve_status_page, spawn_app_with, Options, TestApp};
use chrono::Duration;
use diesel::Connection as _;
use haier_sync::control::pauses;
use haier_sync::db;
use haier_sync::runs::log as sync_logs;
use haier_sync::runs::{RunStatus, SyncType, Trigger};
use scraper::{Html, Selector};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Debian's `chromium` package (`.ci/run` installs it).
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one browser run may take before the test fails (a hung Chromium fails, not hangs).
const BROWSER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);
/// The screenshots' viewport, as the README's picture has it.
const VIEWPORT: (u32, u32) = (1280, 900);
const TOKEN: &str = "admin-s3cret";

/// Headless Chromium with a profile of its own, or `None` (with the reason printed) when it is
/// not installed and the run is not CI's.
fn chromium() -> Option<Chromium> {
    if Path::new(CHROMIUM).exists() {
        let profile = tempfile::tempdir().expect("a temporary profile folder");
        return Some(Chromium { profile });
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{CHROMIUM} is missing: CI installs the `chromium` package (.ci/run) for the browser tests"
    );
    println!("skipped: {CHROMIUM} is not installed (apt-get install chromium); the browser test did not run");
    None
}

/// One headless Chromium profile; each [`Chromium::open`] is one browser process.
struct Chromium {
    profile: tempfile::TempDir,
}

/// What one browser run left: the DOM it serialised (`--dump-dom`) and its log.
struct Visit {
    dom: String,
    log: String,
}

impl Chromium {
    /// Loads `url` and returns the DOM after the load event; with `screenshot`, saves a PNG of the
    /// viewport there instead (a separate run: Chromium does one of the two per run).
    async fn open(&self, url: &str, screenshot: Option<&Path>) -> Visit {
        let mut command = tokio::process::Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                // Root cannot use Chromium's sandbox; the page is our own, on 127.0.0.1.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--no-proxy-server",
                "--hide-scrollbars",
                "--disable-extensions",
                "--disable-background-networking",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1));
        match screenshot {
            Some(path) => command.arg(format!("--screenshot={}", path.display())),
            None => command.arg("--dump-dom"),
        };
        command
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a hung browser is ended with every child it started.
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().expect("Chromium starts");
        let pid = child.id().expect("a running child has a pid");
        match tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output()).await {
            Ok(output) => {
                let output = output.expect("Chromium's output is read");
                let visit = Visit {
                    dom: String::from_utf8_lossy(&output.stdout).into_owned(),
                    log: String::from_utf8_lossy(&output.stderr).into_owned(),
                };
                assert!(
                    output.status.success(),
                    "Chromium ended {} on {url}:\n{}",
                    output.status,
                    visit.log
                );
                visit
            }
            Err(_) => {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
                panic!("Chromium did not finish loading {url} within {BROWSER_TIMEOUT:?}");
            }
        }
    }
}

/// `target/admin-screenshots/`, made if missing (beside the test binary's `target/tmp`, so
/// `CARGO_TARGET_DIR` is honoured).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target folder")
        .join("admin-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The width and height in a PNG's header, or a failure naming the file.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let word = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// A served status page, stopped when dropped.
struct Page {
    /// `host:port`.
    addr: String,
    _stop: tokio_util::sync::DropGuard,
}

impl Page {
    /// The page's URL with the token as the basic-auth password, as a person logs in.
    fn url(&self, path: &str) -> String {
        format!("http://admin:{TOKEN}@{}{path}", self.addr)
    }
}

async fn serve(app: &TestApp) -> Page {
    let (addr, stop) = serve_status_page(app).await;
    let addr = addr.to_string();
    Page { addr, _stop: stop }
}

/// The shipped jobs, with a token on the page.
async fn app_with_token() -> TestApp {
    let mut options = Options::default().extra_toml(format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ));
    options.shipped_jobs = true;
    spawn_app_with(options).await
}

/// How a seeded job runs: every `every_minutes`, taking about `took_s`, with its statuses.
struct Cadence {
    job: &'static str,
    sync_type: SyncType,
    every_minutes: i64,
    took_s: i64,
    total: i64,
}

const CADENCES: [Cadence; 4] = [
    Cadence {
        job: "products",
        sync_type: SyncType::Products,
        every_minutes: 24 * 60,
        took_s: 240,
        total: 4_200,
    },
    Cadence {
        job: "prices",
        sync_type: SyncType::Prices,
        every_minutes: 4 * 60,
        took_s: 75,
        total: 4_200,
    },
    Cadence {
        job: "stock",
        sync_type: SyncType::Stock,
        every_minutes: 15,
        took_s: 30,
        total: 1_800,
    },
    Cadence {
        job: "logistics",
        sync_type: SyncType::Logistics,
        every_minutes: 10,
        took_s: 8,
        total: 40,
    },
];

/// The status of the `i`-th newest run of a job: mostly successes, some partial, a few failed;
/// the newest prices run failed and the newest logistics run was partial, so the overview shows
/// all three.
fn status_of(job: &str, i: i64) -> RunStatus {
    match (job, i) {
        ("prices", 0) => RunStatus::Failed,
        ("logistics", 0) => RunStatus::Partial,
        (_, 0) => RunStatus::Success,
        _ if i % 37 == 5 => RunStatus::Failed,
        _ if i % 11 == 3 => RunStatus::Partial,
        _ => RunStatus::Success,
    }
}

/// Seven days of runs of the shipped jobs, a live daemon, a paused job and some orders.
async fn seed_week(app: &TestApp) {
    app.db()
        .run(|c| {
            let now = db::now_utc();
            c.transaction(|c| {
                for cadence in &CADENCES {
                    let runs = 7 * 24 * 60 / cadence.every_minutes;
                    for i in 0..runs {
                        let status = status_of(cadence.job, i);
                        // Durations vary by up to ±40 % around the cadence's, the same every time.
                        let spread = (i * 7919 % 81) - 40;
                        let took_ms = cadence.took_s * 1000 * (100 + spread) / 100;
                        let started = now - Duration::minutes(cadence.every_minutes * i + 2);
                        let (ok, failed, message) = match status {
                            RunStatus::Failed => (0, cadence.total, Some("auth refused by openplat: 401")),
                            RunStatus::Partial => (
                                cadence.total - 3,
                                3,
                                Some("3 items refused: GD0000017 not for sale"),
                            ),
                            _ => (cadence.total, 0, None),
                        };
                        sync_logs::insert(
                            c,
                            &sync_logs::NewSyncLog {
                                job_name: cadence.job,
                                sync_type: cadence.sync_type,
                                status,
                                message,
                                total_count: cadence.total,
                                success_count: ok,
                                failed_count: failed,
                                started_at: started,
                                completed_at: Some(started + Duration::milliseconds(took_ms)),
                                created_at: started,
                                scheduled_for: Some(started),
                                trigger: Trigger::Schedule,
                                instance: "shop-host:4242",
                            },
                        )?;
                    }
                }
                pauses::pause_job(c, "logistics", "ops@shop-host", now, "carrier API down")?;
                diesel::QueryResult::Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap();
    instance_row(app.db(), "shop-host:4242", Duration::seconds(5)).await;
    insert_many_by_sql(app.db(), "SO-2026", 12, &["GD0000001"]).await;
}

fn select(selector: &str) -> Selector {
    Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e:?}"))
}

/// The drawn bars of the page's timeline chart: `(status class, height)` of each.
fn chart_bars(dom: &Html) -> Vec<(String, f64)> {
    let charts = dom.select(&select("svg.timeline")).count();
    assert_eq!(charts, 1, "one timeline chart on the job page");
    dom.select(&select("svg.timeline rect.run"))
        .map(|bar| {
            let class = bar.value().attr("class").unwrap_or_default();
            let height: f64 = bar
                .value()
                .attr("height")
                .and_then(|h| h.parse().ok())
                .unwrap_or_else(|| panic!("a bar without a height: {}", bar.html()));
            let status = class.trim_start_matches("run").trim().to_owned();
            (status, height)
        })
        .collect()
}

#[tokio::test]
async fn chromium_shows_every_job_and_draws_the_week_of_runs() {
    let Some(browser) = chromium() else {
        return;
    };
    let app = app_with_token().await;
    seed_week(&app).await;
    let page = serve(&app).await;
    let shots = screenshot_dir();

    let visit = browser.open(&page.url("/"), None).await;
    assert!(
        !visit.log.contains("Page load failed"),
        "the overview did not load:\n{}",
        visit.log
    );
    let dom = Html::parse_document(&visit.dom);
    let title: String = dom.select(&select("h1")).flat_map(|h| h.text()).collect();
    assert_eq!(title, "Overview", "{}", visit.dom);
    let linked: Vec<(String, String)> = dom
        .select(&select("table a[href^='/jobs/']"))
        .map(|a| {
            (
                a.text().collect::<String>(),
                a.value().attr("href").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for job in app.config().jobs.keys() {
        assert!(
            linked.contains(&(job.clone(), format!("/jobs/{job}"))),
            "job {job} is not on the overview; its links: {linked:?}"
        );
    }
    let badges: Vec<String> = dom
        .select(&select("span.status"))
        .map(|s| s.text().collect())
        .collect();
    for status in ["success", "failed", "partial"] {
        assert!(
            badges.iter().any(|b| b == status),
            "no {status} badge on the overview: {badges:?}"
        );
    }
    let text: String = dom.root_element().text().collect();
    for expected in [
        "carrier API down",
        "shop-host:4242",
        "pending",
        "Times in Asia/Shanghai",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} is not on the overview:\n{text}"
        );
    }

    let visit = browser.open(&page.url("/jobs/stock"), None).await;
    let dom = Html::parse_document(&visit.dom);
    let bars = chart_bars(&dom);
    let week = (7 * 24 * 60 / 15) as usize;
    assert!(
        bars.len() >= week - 1 && bars.len() <= week,
        "one bar per run of the week: {} bars",
        bars.len()
    );
    for status in ["success", "failed", "partial"] {
        assert!(
            bars.iter().any(|(s, h)| s == status && *h > 0.0),
            "no drawn {status} bar on the stock page"
        );
    }
    assert!(bars.iter().all(|(_, h)| *h > 0.0 && *h <= 220.0), "{bars:?}");
    let days = dom.select(&select("svg.timeline line")).count();
    assert!((6..=8).contains(&days), "a line per day of the week: {days}");

    for (path, file) in [("/", "overview.png"), ("/jobs/stock", "job-stock.png")] {
        let file = shots.join(file);
        let _ = std::fs::remove_file(&file);
        browser.open(&page.url(path), Some(&file)).await;
        assert_eq!(png_size(&file), VIEWPORT, "{}", file.display());
        println!("screenshot of {path}: {}", file.display());
    }
}

#[tokio::test]
async fn chromium_gets_no_page_without_the_token() {
    let Some(browser) = chromium() else {
        return;
    };
    let app = app_with_token().await;
    seed_week(&app).await;
    let page = serve(&app).await;
    let without = format!("http://{}/", page.addr);
    let wrong = format!("http://admin:wrong-{TOKEN}@{}/jobs/stock", page.addr);
    for url in [&without, &wrong] {
        let visit = browser.open(url, None).await;
        // The 401's challenge goes unanswered (headless Chromium shows no login prompt): the
        // browser reports the refused credentials and has no page to show.
        assert!(
            visit.log.contains("ERR_INVALID_AUTH_CREDENTIALS"),
            "{url}: Chromium did not report the 401:\n{}",
            visit.log
        );
        assert!(
            !visit.dom.contains("Overview") && !visit.dom.contains("/jobs/"),
            "{url}: the page was shown without the token:\n{}",
            visit.dom
        );
    }
    let visit = browser.open(&page.url("/jobs/stock"), None).await;
    assert!(
        visit.dom.contains("Job stock"),
        "with the token the same browser sees the page:\n{}",
        visit.log
    );
}
