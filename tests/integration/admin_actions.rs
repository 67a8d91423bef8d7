//! The status page's actions (pause, resume, trigger, retry of dead orders) through real HTTP
//! POSTs: each changes the database as its command does and is audited under the token's name;
//! a missing or foreign CSRF token, a cross-site request or `allow_actions = false` gets 403 and
//! changes nothing. Also the Prices pages, the schedules in words, and `[admin.tokens]`.

use crate::support::{insert_many_by_sql, instance_row, serve_status_page, spawn_app_with, Options, TestApp};
use haier_sync::audit::{store as audit_store, AuditOutcome, AuditRow};
use haier_sync::control::{pauses, triggers};
use haier_sync::db::{self, prices};
use haier_sync::orders::OutboxStatus;
use std::path::PathBuf;

const ADMIN_TOKEN: &str = "admin-s3cret-token";
const ALICE_TOKEN: &str = "alice-s3cret-token";

/// A served status page: its base URL, and the token that stops it when dropped.
struct Page {
    url: String,
    client: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

/// An answer: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    async fn get(&self, path: &str, token: &str) -> Answer {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    async fn post(&self, path: &str, token: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// The CSRF token of the forms `token` is shown on `path`.
    async fn csrf(&self, path: &str, token: &str) -> String {
        let page = self.get(path, token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let marker = "name=\"csrf\" value=\"";
        let start = page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field on {path}:\n{}", page.body))
            + marker.len();
        let end = start + page.body[start..].find('"').unwrap();
        page.body[start..end].to_owned()
    }

    /// Follows a 303 of an action to the page it names.
    async fn follow(&self, answer: &Answer, token: &str) -> String {
        assert_eq!(answer.status, 303, "{}", answer.body);
        let location = answer.location.as_deref().expect("a 303 names where to go");
        let page = self.get(location, token).await;
        assert_eq!(page.status, 200, "{location}: {}", page.body);
        page.body
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status,
        location,
        body: response.text().await.unwrap(),
    }
}

async fn serve(app: &TestApp) -> Page {
    let (addr, stop) = serve_status_page(app).await;
    let url = format!("http://{addr}");
    Page {
        url,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _stop: stop,
    }
}

/// Token files in a directory of their own (the config names them by absolute path).
struct TokenFiles {
    dir: tempfile::TempDir,
}

impl TokenFiles {
    fn new() -> TokenFiles {
        TokenFiles {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// An app whose page has the token `admin`, the named token `alice`, and `allow_actions`.
async fn app_with_actions(files: &TokenFiles, allow_actions: bool) -> TestApp {
    let alice = files.write("alice.token", &format!("{ALICE_TOKEN}\n"));
    let mut options = Options::default().extra_toml(format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\nallow_actions = {allow_actions}\n\
         [admin.tokens]\nalice = \"{}\"\n",
        alice.display()
    ));
    options.shipped_jobs = true;
    spawn_app_with(options).await
}

async fn audit_rows(app: &TestApp) -> Vec<AuditRow> {
    app.db()
        .run(|c| Ok(audit_store::latest_audit_rows(c, 100)?))
        .await
        .unwrap()
}

/// Asserts the audit trail, oldest first, as (command, who, outcome); returns its rows, newest
/// first.
async fn assert_audit(app: &TestApp, expected: &[(&str, &str, AuditOutcome)]) -> Vec<AuditRow> {
    let rows = audit_rows(app).await;
    let summary: Vec<(&str, &str, AuditOutcome)> = rows
        .iter()
        .rev()
        .map(|r| (r.command.as_str(), r.os_user.as_str(), r.outcome))
        .collect();
    assert_eq!(summary, expected);
    rows
}

async fn pause_of(app: &TestApp, job: &str) -> Option<pauses::JobPause> {
    let job = job.to_owned();
    app.db()
        .run(move |c| Ok(pauses::find_pause(c, &job)?))
        .await
        .unwrap()
}

async fn order_status(app: &TestApp, so_id: &str) -> OutboxStatus {
    crate::support::row(app.db(), so_id).await.status
}

/// Sets an order `dead`, as the poller leaves it after its last attempt.
async fn make_dead(app: &TestApp, so_id: &str) {
    let so_id = so_id.to_owned();
    app.db()
        .run(move |conn| {
            use diesel::prelude::*;
            use haier_sync::db::schema::haier_order_outbox::dsl;
            diesel::update(dsl::haier_order_outbox.filter(dsl::so_id.eq(so_id)))
                .set((
                    dsl::status.eq("dead"),
                    dsl::attempts.eq(10_i64),
                    dsl::last_error.eq("YLH order_push: timeout after 15 s"),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn pause_and_resume_posted_with_the_csrf_token_change_the_job_and_are_audited_by_token_name() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let page = serve(&app).await;
    let csrf = page.csrf("/jobs/prices", ALICE_TOKEN).await;

    let answer = page
        .post(
            "/jobs/prices/pause",
            ALICE_TOKEN,
            &[("csrf", &csrf), ("reason", "supplier price list late")],
            &[],
        )
        .await;
    assert_eq!(
        answer.location.as_deref().map(|l| l.starts_with("/jobs/prices?")),
        Some(true)
    );
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("job prices paused"), "{html}");
    assert!(
        html.contains("supplier price list late") && html.contains(">Resume<"),
        "{html}"
    );
    let pause = pause_of(&app, "prices").await.expect("a pause row");
    assert!(pause.is_in_force());
    assert_eq!(pause.reason, "supplier price list late");
    assert!(pause.paused_by.starts_with("admin:alice@"), "{}", pause.paused_by);

    let answer = page
        .post("/jobs/prices/resume", ALICE_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("job prices resumed"), "{html}");
    let pause = pause_of(&app, "prices").await.expect("the row stays");
    assert!(!pause.is_in_force());
    assert!(pause
        .resumed_by
        .as_deref()
        .unwrap_or("")
        .starts_with("admin:alice@"));

    // An empty reason is refused, as `haier-sync pause` refuses it; and audited as refused.
    let answer = page
        .post(
            "/jobs/stock/pause",
            ALICE_TOKEN,
            &[("csrf", &csrf), ("reason", "  ")],
            &[],
        )
        .await;
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("the reason is empty"), "{html}");
    assert!(pause_of(&app, "stock").await.is_none());

    let rows = assert_audit(
        &app,
        &[
            ("pause", "admin:alice", AuditOutcome::Ok),
            ("resume", "admin:alice", AuditOutcome::Ok),
            ("pause", "admin:alice", AuditOutcome::Refused),
        ],
    )
    .await;
    assert!(
        rows[2].arguments.contains("supplier price list late"),
        "{}",
        rows[2].arguments
    );
    for row in &rows {
        assert!(!row.arguments.contains(ALICE_TOKEN) && !row.arguments.contains(&csrf));
    }
}

#[tokio::test]
async fn trigger_files_a_run_now_request_when_a_daemon_is_live_and_the_job_page_shows_it() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let page = serve(&app).await;
    let csrf = page.csrf("/jobs/stock", ADMIN_TOKEN).await;

    // No daemon: refused as `haier-sync trigger` refuses, and nothing is filed.
    let answer = page
        .post("/jobs/stock/trigger", ADMIN_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ADMIN_TOKEN).await;
    assert!(html.contains("no haier-sync daemon is running"), "{html}");
    let requests = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(|c| Ok(triggers::latest_requests_of_job(c, "stock", 10)?))
                .await
                .unwrap()
        }
    };
    assert!(requests(&app).await.is_empty());

    instance_row(app.db(), "daemon-host:4242", chrono::Duration::zero()).await;
    let answer = page
        .post("/jobs/stock/trigger", ADMIN_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ADMIN_TOKEN).await;
    let filed = requests(&app).await;
    assert_eq!(filed.len(), 1);
    let request = &filed[0];
    assert_eq!(request.state, triggers::TriggerState::Pending);
    assert!(
        request.requested_by.starts_with("admin:admin@"),
        "{}",
        request.requested_by
    );
    assert!(!request.run_if_paused);
    assert!(html.contains(&format!("request #{}", request.id)), "{html}");
    assert!(
        html.contains("Run-now requests") && html.contains(">pending<"),
        "{html}"
    );

    // A paused job runs only when the form says so, as with `trigger --force`.
    app.db()
        .run(|c| {
            Ok(pauses::pause_job(
                c,
                "stock",
                "ops@host",
                db::now_utc(),
                "carrier down",
            )?)
        })
        .await
        .unwrap();
    let answer = page
        .post("/jobs/stock/trigger", ADMIN_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ADMIN_TOKEN).await;
    assert!(html.contains("job stock is paused (by ops@host"), "{html}");
    assert_eq!(requests(&app).await.len(), 1);
    let answer = page
        .post(
            "/jobs/stock/trigger",
            ADMIN_TOKEN,
            &[("csrf", &csrf), ("force", "1")],
            &[],
        )
        .await;
    page.follow(&answer, ADMIN_TOKEN).await;
    let filed = requests(&app).await;
    assert_eq!(filed.len(), 2);
    assert!(filed[0].run_if_paused);

    // The order poller has no run to trigger.
    let answer = page
        .post("/jobs/orders/trigger", ADMIN_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ADMIN_TOKEN).await;
    assert!(html.contains("is an order_outbox job"), "{html}");

    assert_audit(
        &app,
        &[
            ("trigger", "admin:admin", AuditOutcome::Refused),
            ("trigger", "admin:admin", AuditOutcome::Ok),
            ("trigger", "admin:admin", AuditOutcome::Refused),
            ("trigger", "admin:admin", AuditOutcome::Ok),
            ("trigger", "admin:admin", AuditOutcome::Refused),
        ],
    )
    .await;
}

#[tokio::test]
async fn retry_puts_one_dead_order_or_every_dead_order_back_to_pending() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let so_ids = insert_many_by_sql(app.db(), "SO-DEAD", 3, &["HA001"]).await;
    for so_id in &so_ids {
        make_dead(&app, so_id).await;
    }
    let page = serve(&app).await;
    let html = page
        .get(&format!("/orders/{}", so_ids[0]), ALICE_TOKEN)
        .await
        .body;
    assert!(html.contains("Retry this order"), "{html}");
    let csrf = page.csrf("/orders", ALICE_TOKEN).await;

    let answer = page
        .post(
            "/outbox/retry",
            ALICE_TOKEN,
            &[("csrf", &csrf), ("so_id", &so_ids[0])],
            &[],
        )
        .await;
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("is pending again"), "{html}");
    assert_eq!(order_status(&app, &so_ids[0]).await, OutboxStatus::Pending);
    assert_eq!(order_status(&app, &so_ids[1]).await, OutboxStatus::Dead);

    let answer = page
        .post("/outbox/retry", ALICE_TOKEN, &[("csrf", &csrf)], &[])
        .await;
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("2 dead order(s) are pending again"), "{html}");
    for so_id in &so_ids {
        assert_eq!(order_status(&app, so_id).await, OutboxStatus::Pending);
    }

    let answer = page
        .post(
            "/outbox/retry",
            ALICE_TOKEN,
            &[("csrf", &csrf), ("so_id", &so_ids[0])],
            &[],
        )
        .await;
    let html = page.follow(&answer, ALICE_TOKEN).await;
    assert!(html.contains("not dead"), "{html}");

    assert_audit(
        &app,
        &[
            ("outbox retry", "admin:alice", AuditOutcome::Ok),
            ("outbox retry", "admin:alice", AuditOutcome::Ok),
            ("outbox retry", "admin:alice", AuditOutcome::Refused),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_or_from_another_site_gets_403_and_changes_nothing() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let page = serve(&app).await;
    let alices = page.csrf("/jobs/prices", ALICE_TOKEN).await;
    let admins = page.csrf("/jobs/prices", ADMIN_TOKEN).await;
    assert_ne!(alices, admins, "a CSRF token is bound to its credential");

    let host = page.url.trim_start_matches("http://").to_owned();
    let reason = ("reason", "should not happen");
    type Fields<'a> = Vec<(&'a str, &'a str)>;
    let refused: Vec<(Fields, Vec<(&str, String)>)> = vec![
        (vec![reason], vec![]),
        (vec![("csrf", ""), reason], vec![]),
        (vec![("csrf", "bm90LWEtdG9rZW4"), reason], vec![]),
        (vec![("csrf", &admins), reason], vec![]),
        (
            vec![("csrf", &alices), reason],
            vec![("origin", "https://evil.example".to_owned())],
        ),
        (
            vec![("csrf", &alices), reason],
            vec![("origin", "null".to_owned())],
        ),
        (
            vec![("csrf", &alices), reason],
            vec![("sec-fetch-site", "cross-site".to_owned())],
        ),
    ];
    for (form, headers) in &refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = page.post("/jobs/prices/pause", ALICE_TOKEN, form, &headers).await;
        assert_eq!(answer.status, 403, "{form:?} {headers:?}: {}", answer.body);
        assert!(answer.body.contains("Nothing was changed"), "{}", answer.body);
        let answer = page.post("/outbox/retry", ALICE_TOKEN, form, &headers).await;
        assert_eq!(answer.status, 403, "{form:?} {headers:?}: {}", answer.body);
    }
    assert!(pause_of(&app, "prices").await.is_none());
    assert!(audit_rows(&app).await.is_empty());

    // The same form from the page itself is taken.
    let answer = page
        .post(
            "/jobs/prices/pause",
            ALICE_TOKEN,
            &[("csrf", &alices), reason],
            &[
                ("origin", &format!("http://{host}")),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(pause_of(&app, "prices").await.is_some());
}

#[tokio::test]
async fn with_actions_off_no_form_is_drawn_and_every_post_gets_403() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, false).await;
    let so_ids = insert_many_by_sql(app.db(), "SO-OFF", 1, &["HA001"]).await;
    make_dead(&app, &so_ids[0]).await;
    let page = serve(&app).await;
    for path in ["/", "/jobs/prices", "/orders", &format!("/orders/{}", so_ids[0])] {
        let html = page.get(path, ALICE_TOKEN).await.body;
        assert!(!html.contains("method=\"post\""), "{path} draws a form:\n{html}");
        assert!(!html.contains("name=\"csrf\""), "{path}:\n{html}");
    }
    for path in ["/jobs/prices/pause", "/jobs/prices/trigger", "/outbox/retry"] {
        let answer = page
            .post(path, ALICE_TOKEN, &[("csrf", "anything"), ("reason", "x")], &[])
            .await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert!(answer.body.contains("Actions are off"), "{}", answer.body);
    }
    assert!(pause_of(&app, "prices").await.is_none());
    assert_eq!(order_status(&app, &so_ids[0]).await, OutboxStatus::Dead);
    assert!(audit_rows(&app).await.is_empty());

    // Without a token the page has no actions either, whatever is posted.
    let mut options = Options::default().extra_toml("[admin]\nlisten = \"127.0.0.1:0\"\n");
    options.shipped_jobs = true;
    let open = spawn_app_with(options).await;
    let page = serve(&open).await;
    let answer = page.post("/jobs/prices/pause", "", &[("reason", "x")], &[]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
}

#[tokio::test]
async fn overview_and_job_page_say_the_schedule_in_words_with_its_zone() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let page = serve(&app).await;
    let html = page.get("/", ADMIN_TOKEN).await.body;
    for words in [
        "every day at 02:00 (Asia/Shanghai)",
        "every 4 hours at :30 (Asia/Shanghai)",
        "every 15 minutes (Asia/Shanghai)",
        "every 10 minutes (Asia/Shanghai)",
        "all the time, polling every",
    ] {
        assert!(html.contains(words), "{words:?} missing:\n{html}");
    }
    assert!(html.contains("0 0 2 * * *"), "the expression is still shown");
    let html = page.get("/jobs/products", ADMIN_TOKEN).await.body;
    assert!(html.contains("every day at 02:00 (Asia/Shanghai)"), "{html}");
    let html = page.get("/jobs/orders", ADMIN_TOKEN).await.body;
    assert!(html.contains("all the time, polling every"), "{html}");
    assert!(
        !html.contains(">Run now<"),
        "the order poller has no run to trigger:\n{html}"
    );
}

/// Seeds prices and moves: HA001 moved twice, HA002 once, HA003 never.
async fn seed_prices(app: &TestApp) {
    app.db()
        .run(|c| {
            let now = db::now_utc();
            let row = |code: &str, supply: &str, invoice: &str| prices::PriceRow {
                product_code: code.to_owned(),
                supply_price: Some(supply.to_owned()),
                invoice_price: Some(invoice.to_owned()),
                rebate_rate: None,
                rebate_money: None,
                stock_rebate_policy: None,
                reason: None,
                is_sales: true,
                content_hash: format!("hash-{code}"),
                updated_at: now,
            };
            prices::upsert_prices(
                c,
                &[
                    row("HA001", "2199.00", "2499.00"),
                    row("HA002", "899.50", "999.00"),
                    row("HA003", "100.00", "120.00"),
                ],
            )?;
            let change =
                |code: &str, days_ago: i64, old: (&str, &str), new: (&str, &str)| prices::NewPriceChange {
                    product_code: code.to_owned(),
                    old_supply_price: Some(old.0.to_owned()),
                    new_supply_price: Some(new.0.to_owned()),
                    old_invoice_price: Some(old.1.to_owned()),
                    new_invoice_price: Some(new.1.to_owned()),
                    changed_at: now - chrono::Duration::days(days_ago),
                };
            prices::insert_price_changes(
                c,
                &[
                    change("HA001", 20, ("2399.00", "2599.00"), ("2299.00", "2599.00")),
                    change("HA001", 5, ("2299.00", "2599.00"), ("2199.00", "2499.00")),
                    change("HA002", 3, ("949.00", "999.00"), ("899.50", "999.00")),
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn prices_pages_list_the_moves_and_draw_one_product_over_time() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, false).await;
    seed_prices(&app).await;
    let page = serve(&app).await;

    let answer = page.get("/prices", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let html = answer.body;
    assert!(html.contains("href=\"/prices\""), "the nav links the page");
    assert_eq!(html.matches("href=\"/prices/HA001\"").count(), 2, "{html}");
    assert_eq!(html.matches("href=\"/prices/HA002\"").count(), 1, "{html}");
    assert!(html.contains("2399.00") && html.contains("899.50") && html.contains("Asia/Shanghai"));
    // Newest first.
    assert!(
        html.find("HA002").unwrap() < html.find("HA001").unwrap(),
        "{html}"
    );

    let html = page.get("/prices?product=HA002", ADMIN_TOKEN).await.body;
    assert!(html.contains("949.00") && !html.contains("2399.00"), "{html}");
    let html = page.get("/prices?limit=1", ADMIN_TOKEN).await.body;
    assert!(html.contains("HA002") && !html.contains("2399.00"), "{html}");
    for bad in ["limit=0", "limit=lots", "limit=100000"] {
        let answer = page.get(&format!("/prices?{bad}"), ADMIN_TOKEN).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }

    let answer = page.get("/prices/HA001", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let html = answer.body;
    for text in [
        "Prices of HA001",
        "<svg",
        "<path class=\"price supply\" d=\"M",
        "<path class=\"price invoice\" d=\"M",
        "2399.00",
        "2299.00",
        "2199.00",
        "2599.00",
        "2499.00",
    ] {
        assert!(html.contains(text), "{text:?} missing:\n{html}");
    }
    // Supply: its first price, then two moves, each a horizontal and a vertical stroke.
    let supply_start =
        html.find("class=\"price supply\" d=\"").unwrap() + "class=\"price supply\" d=\"".len();
    let supply_d = &html[supply_start..supply_start + html[supply_start..].find('"').unwrap()];
    assert_eq!(supply_d.matches('V').count(), 2, "{supply_d}");
    assert_eq!(supply_d.matches('H').count(), 3, "{supply_d}");

    let answer = page.get("/prices/HA003", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("has not moved") && answer.body.contains("100.00"));

    let answer = page.get("/prices/NOPE-1", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.body.contains("no product `NOPE-1`"), "{}", answer.body);
}

#[tokio::test]
async fn named_tokens_are_read_from_their_files_and_a_bad_one_is_an_error_naming_its_key() {
    let files = TokenFiles::new();
    let app = app_with_actions(&files, true).await;
    let admin = app.config().admin.clone().expect("[admin] is set");
    assert_eq!(admin.tokens.get("alice").map(|t| t.expose()), Some(ALICE_TOKEN));
    assert_eq!(admin.credentials().len(), 2);
    let debug = format!("{:?}", app.config());
    assert!(!debug.contains(ALICE_TOKEN) && !debug.contains(ADMIN_TOKEN));

    let load = |admin_toml: String| {
        let text = app.config_text_with(|o| o.extra_toml = admin_toml);
        let path = app.dir().join("tokens-variant.toml");
        std::fs::write(&path, &text).unwrap();
        haier_sync::config::load(&path)
    };
    let ok = files.write("ok.token", "bobs-token\n");
    let config = load(format!(
        "[admin]\nallow_actions = true\n[admin.tokens]\nbob = \"{}\"\n",
        ok.display()
    ))
    .expect("named tokens alone allow actions");
    assert!(config.admin.unwrap().allow_actions);

    let empty = files.write("empty.token", "\n");
    let missing = files.dir.path().join("missing.token");
    let cases = [
        (
            format!("[admin.tokens]\nalice = \"{}\"\n", missing.display()),
            "admin.tokens.alice",
            "missing.token",
        ),
        (
            format!("[admin.tokens]\nalice = \"{}\"\n", empty.display()),
            "admin.tokens.alice",
            "empty",
        ),
        (
            "[admin.tokens]\nalice = \"\"\n".to_owned(),
            "admin.tokens.alice",
            "must not be empty",
        ),
        (
            format!("[admin.tokens]\n\"al ice\" = \"{}\"\n", ok.display()),
            "admin.tokens",
            "not a token name",
        ),
        (
            format!(
                "token = \"bobs-token\"\n[admin.tokens]\nbob = \"{}\"\n",
                ok.display()
            ),
            "admin.tokens.bob",
            "same token as `admin`",
        ),
        (
            format!(
                "token = \"x-token\"\n[admin.tokens]\nadmin = \"{}\"\n",
                ok.display()
            ),
            "admin.tokens.admin",
            "already the name",
        ),
    ];
    for (table, key, words) in cases {
        let err = load(format!("[admin]\n{table}")).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(words), "{table}: {err}");
        assert!(
            !err.contains("bobs-token"),
            "the token is never in an error: {err}"
        );
    }
}
