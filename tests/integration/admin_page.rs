//! The status page (`[admin]`): every page rendered against a seeded database (runs of several
//! statuses, a paused job, orders), the token check, and the `[admin]` config.

use crate::support::{
    insert_many_by_sql, serve_status_page, spawn_app_with, wait_for, Options, TestApp, DEADLINE,
};
use base64::Engine as _;
use chrono::Duration;
use diesel::Connection as _;
use haier_sync::control::pauses;
use haier_sync::db;
use haier_sync::runs::log as sync_logs;
use haier_sync::runs::{RunStatus, SyncType, Trigger};

const TOKEN: &str = "admin-s3cret";

/// A served status page: its base URL, and the token that stops it when dropped.
struct Page {
    url: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn serve(app: &TestApp) -> Page {
    let (addr, stop) = serve_status_page(app).await;
    let url = format!("http://{addr}");
    Page { url, _stop: stop }
}

/// The shipped jobs, with the page on a free port behind [`TOKEN`].
async fn app_with_token() -> TestApp {
    app_with_admin(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .await
}

async fn app_with_admin(admin_toml: &str) -> TestApp {
    let mut options = Options::default().extra_toml(admin_toml);
    options.shipped_jobs = true;
    spawn_app_with(options).await
}

/// A run of `job` that started `hours_ago` and took `took_ms`.
async fn plant_run(
    app: &TestApp,
    job: &str,
    hours_ago: i64,
    took_ms: i64,
    status: RunStatus,
    message: Option<&str>,
) {
    let (job, message) = (job.to_owned(), message.map(str::to_owned));
    app.db()
        .run(move |c| {
            let started = db::now_utc() - Duration::hours(hours_ago);
            sync_logs::insert(
                c,
                &sync_logs::NewSyncLog {
                    job_name: &job,
                    sync_type: SyncType::Prices,
                    status,
                    message: message.as_deref(),
                    total_count: 10,
                    success_count: if status == RunStatus::Success { 10 } else { 4 },
                    failed_count: if status == RunStatus::Success { 0 } else { 6 },
                    started_at: started,
                    completed_at: Some(started + Duration::milliseconds(took_ms)),
                    created_at: started,
                    scheduled_for: Some(started),
                    trigger: Trigger::Schedule,
                    instance: "host-a:42",
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn seed(app: &TestApp) {
    plant_run(app, "prices", 30, 12_000, RunStatus::Success, None).await;
    plant_run(
        app,
        "prices",
        20,
        45_000,
        RunStatus::Partial,
        Some("6 prices refused: HA001 gone"),
    )
    .await;
    plant_run(
        app,
        "prices",
        10,
        3_000,
        RunStatus::Failed,
        Some("auth refused by openplat"),
    )
    .await;
    plant_run(app, "stock", 5, 90_000, RunStatus::Interrupted, Some("shutdown")).await;
    plant_run(app, "stock", 2, 60_000, RunStatus::Success, None).await;
    app.db()
        .run(|c| {
            pauses::pause_job(c, "logistics", "ops@host", db::now_utc(), "carrier API down")?;
            Ok(())
        })
        .await
        .unwrap();
    insert_many_by_sql(app.db(), "SO-ADMIN", 3, &["HA001"]).await;
}

async fn get(url: &str, auth: Option<&str>) -> (u16, String, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), challenge)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test]
async fn overview_shows_every_job_the_pause_the_outbox_and_times_in_the_zone() {
    let app = app_with_token().await;
    seed(&app).await;
    let page = serve(&app).await;
    let (status, html, _) = get(&format!("{}/", page.url), Some(&bearer())).await;
    assert_eq!(status, 200, "{html}");
    for job in app.config().jobs.keys() {
        assert!(
            html.contains(&format!("href=\"/jobs/{job}\"")),
            "job {job} missing:\n{html}"
        );
    }
    for text in [
        "Times in Asia/Shanghai",
        "Asia/Shanghai",
        ">failed<",
        ">success<",
        "paused",
        "carrier API down",
        "ops@host",
        "pending",
        "No daemon is running",
        "Alerts",
    ] {
        assert!(html.contains(text), "{text:?} missing from the overview:\n{html}");
    }
    assert!(!html.contains("<script"), "the page has no JavaScript");
}

#[tokio::test]
async fn job_page_draws_the_runs_of_the_week_and_lists_the_failures() {
    let app = app_with_token().await;
    seed(&app).await;
    let page = serve(&app).await;
    let (status, html, _) = get(&format!("{}/jobs/prices", page.url), Some(&bearer())).await;
    assert_eq!(status, 200, "{html}");
    for text in [
        "Job prices",
        "<svg",
        "class=\"run success\"",
        "class=\"run partial\"",
        "class=\"run failed\"",
        "auth refused by openplat",
        "6 prices refused: HA001 gone",
        "Asia/Shanghai",
        "Failures",
    ] {
        assert!(html.contains(text), "{text:?} missing from the job page:\n{html}");
    }
    assert_eq!(
        html.matches("<rect class=\"run ").count(),
        3,
        "one bar per run:\n{html}"
    );

    let (status, html, _) = get(&format!("{}/jobs/logistics", page.url), Some(&bearer())).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg")
            && html.contains("carrier API down")
            && html.contains("No runs in the last 7 days")
    );

    let (status, html, _) = get(&format!("{}/jobs/nope", page.url), Some(&bearer())).await;
    assert_eq!(status, 404);
    assert!(html.contains("no job named `nope`"), "{html}");
}

#[tokio::test]
async fn a_job_running_every_minute_is_drawn_one_bar_per_time_bucket_its_worst_run_colouring_it() {
    let app = app_with_token().await;
    // 600 runs a minute apart, the 300th failed: far more runs than the chart has pixels for them.
    app.db()
        .run(|c| {
            let now = db::now_utc();
            c.transaction(|c| {
                for i in 0..600_i64 {
                    let started = now - Duration::minutes(i + 1);
                    let status = if i == 300 {
                        RunStatus::Failed
                    } else {
                        RunStatus::Success
                    };
                    sync_logs::insert(
                        c,
                        &sync_logs::NewSyncLog {
                            job_name: "stock",
                            sync_type: SyncType::Stock,
                            status,
                            message: (i == 300).then_some("stock API down"),
                            total_count: 10,
                            success_count: 10,
                            failed_count: 0,
                            started_at: started,
                            completed_at: Some(started + Duration::seconds(20 + i % 7)),
                            created_at: started,
                            scheduled_for: Some(started),
                            trigger: Trigger::Schedule,
                            instance: "host-a:42",
                        },
                    )?;
                }
                diesel::QueryResult::Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap();
    let page = serve(&app).await;
    let (status, html, _) = get(&format!("{}/jobs/stock", page.url), Some(&bearer())).await;
    assert_eq!(status, 200, "{html}");
    // 10 hours of a 7-day chart 896 pixels wide: about 53 buckets of 11¼ minutes.
    let bars = html.matches("<rect class=\"run ").count();
    assert!(
        (50..=56).contains(&bars),
        "one bar per bucket, not per run: {bars} bars"
    );
    assert_eq!(
        html.matches("<rect class=\"run failed\"").count(),
        1,
        "the bucket of the failed run is coloured failed"
    );
    assert!(
        html.contains(": 11 runs, 1 failed, longest") || html.contains(": 12 runs, 1 failed, longest"),
        "{html}"
    );
    // Counts still cover every run of the week; the tables list the newest only, and link on.
    assert!(html.contains("success</span> 599</span>"), "{html}");
    assert!(html.contains("600 finished runs"), "{html}");
    assert!(html.contains("stock API down"), "{html}");
    assert!(html.contains("href=\"/logs?job=stock\""), "{html}");
    let latest = html.split("Latest runs").nth(1).unwrap_or_default();
    assert_eq!(
        latest.matches("<tr>").count(),
        51,
        "a header and the 50 newest runs"
    );
}

#[tokio::test]
async fn with_a_token_the_page_answers_401_unless_it_comes_as_bearer_or_basic_password() {
    let app = app_with_token().await;
    let page = serve(&app).await;
    for path in ["/", "/jobs/prices", "/jobs/nope"] {
        let url = format!("{}{path}", page.url);
        let (status, body, challenge) = get(&url, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(challenge.as_deref(), Some(r#"Basic realm="haier-sync""#));
        assert!(!body.contains(TOKEN));
        assert_eq!(get(&url, Some("Bearer wrong")).await.0, 401);
    }
    let url = format!("{}/", page.url);
    assert_eq!(get(&url, Some(&bearer())).await.0, 200);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{TOKEN}"));
    assert_eq!(get(&url, Some(&format!("Basic {basic}"))).await.0, 200);
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:nope"));
    assert_eq!(get(&url, Some(&format!("Basic {wrong}"))).await.0, 401);
}

#[tokio::test]
async fn without_a_token_the_page_is_open_and_the_token_file_is_read_and_never_printed() {
    let app = app_with_admin("[admin]\nlisten = \"127.0.0.1:0\"\n").await;
    let page = serve(&app).await;
    assert_eq!(get(&format!("{}/", page.url), None).await.0, 200);
    let admin = app.config().admin.clone().expect("[admin] is set");
    assert!(admin.token.is_none() && !admin.allow_actions);

    std::fs::write(app.dir().join("admin-token"), format!("{TOKEN}\n")).unwrap();
    let config = app.load_config_with(|o| {
        o.extra_toml =
            "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin-token\"\nallow_actions = true\n".into();
    });
    let admin = config.admin.clone().expect("[admin] is set");
    assert_eq!(admin.token.as_ref().map(|t| t.expose()), Some(TOKEN));
    assert!(admin.allow_actions);
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "the token is never Debug-printed"
    );

    let config = app.load_config_with(|o| o.extra_toml = String::new());
    assert!(config.admin.is_none(), "no [admin] section, no page");
}

#[tokio::test]
async fn orders_pages_list_by_state_find_by_so_id_and_show_one_order() {
    let app = app_with_token().await;
    seed(&app).await;
    let page = serve(&app).await;
    let auth = bearer();

    let (status, html, _) = get(&format!("{}/orders", page.url), Some(&auth)).await;
    assert_eq!(status, 200, "{html}");
    for so_id in ["SO-ADMIN-00001", "SO-ADMIN-00002", "SO-ADMIN-00003"] {
        assert!(
            html.contains(&format!("href=\"/orders/{so_id}\"")),
            "{so_id} missing:\n{html}"
        );
    }
    assert!(html.contains("href=\"/orders?state=pending\"") && html.contains("Asia/Shanghai"));

    let (status, html, _) = get(&format!("{}/orders?state=pending", page.url), Some(&auth)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Orders pending") && html.contains("SO-ADMIN-00002"),
        "{html}"
    );
    let (status, html, _) = get(&format!("{}/orders?state=lost", page.url), Some(&auth)).await;
    assert_eq!(status, 400);
    assert!(html.contains("`lost` is not an outbox state"), "{html}");

    // A search that finds its order lands on the order's page (reqwest follows the redirect).
    let (status, html, _) = get(&format!("{}/orders?so_id=SO-ADMIN-00002", page.url), Some(&auth)).await;
    assert_eq!(status, 200);
    for text in [
        "Order SO-ADMIN-00002",
        "ON-SO-ADMIN-00002",
        "No lines recorded yet",
        "Lines",
        "Shipments",
        "Callbacks",
        "pending",
    ] {
        assert!(
            html.contains(text),
            "{text:?} missing from the order page:\n{html}"
        );
    }
    let (status, html, _) = get(&format!("{}/orders?so_id=SO-NONE", page.url), Some(&auth)).await;
    assert_eq!(status, 200);
    assert!(html.contains("No order with so_id"), "{html}");
    let (status, _, _) = get(&format!("{}/orders/SO-NONE", page.url), Some(&auth)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sync_log_page_filters_as_haier_sync_logs_does() {
    let app = app_with_token().await;
    seed(&app).await;
    let page = serve(&app).await;
    let auth = bearer();

    let (status, html, _) = get(&format!("{}/logs", page.url), Some(&auth)).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        html.matches("<tr><td class=\"num\">").count(),
        5,
        "every run:\n{html}"
    );
    assert!(html.contains("Asia/Shanghai") && html.contains("host-a:42"));

    let (_, html, _) = get(
        &format!("{}/logs?job=prices&status=failed", page.url),
        Some(&auth),
    )
    .await;
    assert_eq!(html.matches("<tr><td class=\"num\">").count(), 1, "{html}");
    assert!(html.contains("auth refused by openplat"));

    let (_, html, _) = get(
        &format!("{}/logs?job=stock&since=3h&type=prices", page.url),
        Some(&auth),
    )
    .await;
    assert_eq!(html.matches("<tr><td class=\"num\">").count(), 1, "{html}");

    let (_, html, _) = get(&format!("{}/logs?limit=2", page.url), Some(&auth)).await;
    assert_eq!(html.matches("<tr><td class=\"num\">").count(), 2, "{html}");

    for bad in ["status=gone", "type=socks", "since=yesterday-ish", "limit=0"] {
        let (status, html, _) = get(&format!("{}/logs?{bad}", page.url), Some(&auth)).await;
        assert_eq!(status, 400, "{bad}: {html}");
    }
}

#[tokio::test]
async fn the_daemon_serves_the_page_on_admin_listen_with_its_token_and_follows_a_reload() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin_toml = format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n");
    let app = app_with_admin(&admin_toml).await;
    let mut daemon = app.daemon_process();
    daemon.start_with(&["run", "--no-callbacks"]);
    let url = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::new();
    let status = wait_for(
        "the daemon's status page",
        DEADLINE,
        || async {
            match client.get(&url).bearer_auth(TOKEN).send().await {
                Ok(response) => Some(response.status().as_u16()),
                Err(_) => None,
            }
        },
        |status| status.is_some(),
    )
    .await;
    assert_eq!(status, Some(200), "{}", daemon.current_output());
    assert_eq!(get(&url, None).await.0, 401);
    let (_, html, _) = get(&url, Some(&bearer())).await;
    assert!(html.contains("href=\"/jobs/prices\""), "{html}");
    assert!(!html.contains("stock_nightly"), "{html}");
    assert_eq!(
        get(&format!("{url}jobs/stock_nightly"), Some(&bearer())).await.0,
        404
    );

    // A job added to jobs.toml shows on the page once the daemon has reloaded, without a restart.
    app.write_config(&app.config_text_with(|options| {
        options.extra_toml = format!(
            "{admin_toml}\n[jobs.stock_nightly]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\ncounty_codes = [\"110101\"]\n"
        )
    }));
    daemon.signal("HUP");
    let html = wait_for(
        "the page to show the reloaded job",
        DEADLINE,
        || async { Some(get(&url, Some(&bearer())).await.1) },
        |html| {
            html.as_deref()
                .is_some_and(|html| html.contains("href=\"/jobs/stock_nightly\""))
        },
    )
    .await
    .unwrap();
    assert!(html.contains("every day at 03:00"), "{html}");
    let (status, job_page, _) = get(&format!("{url}jobs/stock_nightly"), Some(&bearer())).await;
    assert_eq!(status, 200, "{job_page}");
    assert!(
        !daemon.current_output().contains("[admin] changed"),
        "{}",
        daemon.current_output()
    );

    // A new token is a change of [admin]: the daemon says it needs a restart, and the page keeps
    // answering to the token it started with.
    app.write_config(&app.config_text_with(|options| {
        options.extra_toml =
            format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"another-token-0123456789\"\n")
    }));
    daemon.signal("HUP");
    wait_for(
        "the reload's warning",
        DEADLINE,
        || async { daemon.current_output() },
        |output| output.contains("Reload: [admin] changed; it takes effect after a restart"),
    )
    .await;
    assert_eq!(get(&url, Some(&bearer())).await.0, 200);
    assert_eq!(get(&url, Some("Bearer another-token-0123456789")).await.0, 401);
    daemon.signal("TERM");
    assert!(daemon.wait_exit(DEADLINE).await.success(), "{}", daemon.output());
}
