//! The outbox poller end to end, against the simulator with its callbacks going to the
//! receiver: every order reaches Haier exactly once, invalid ones never do, failures are retried
//! with backoff or end `dead`, a crashed poller's leases run out and are taken again.

use crate::support::*;
use chrono::NaiveDateTime;
use haier_sync::orders::outbox::OutboxRow;
use haier_sync::orders::poller::{self, PollOutcome};
use haier_sync::orders::{cancel_order, retry_order, CancelState, Cancelled, OutboxStatus, Retried};
use haier_sync::runs::RunStatus;
use haier_sync::simulator::{Faults, SimOptions};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

/// Order tests' app on `sim`, with the `orders` job as `job`.
async fn start_with_job(sim: SimOptions, job: OrdersJob) -> TestApp {
    spawn_app_with(Options::orders(sim).orders_job(job)).await
}

async fn start(sim: SimOptions) -> TestApp {
    start_with_job(sim, OrdersJob::default()).await
}

fn quick_callbacks() -> SimOptions {
    SimOptions {
        products: 100,
        callback_delay_ms: 20,
        callback_retry_base_ms: 100,
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn a_thousand_orders_inserted_by_sql_are_pushed_once_and_confirmed() {
    let env = start(quick_callbacks()).await;
    let codes = [env.code(0), env.code(1)];
    let ids = insert_many_by_sql(env.db(), "SO", 1000, &codes).await;

    let polls = env.push_all_due().await;
    assert_eq!(polls.iter().map(|c| c.total).sum::<i64>(), 1000);
    assert_eq!(polls.iter().map(|c| c.success).sum::<i64>(), 1000);
    let stats = env.sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, 1000);
    assert_eq!(stats.orders.duplicates_rejected, 0);

    env.wait_for_orders(Duration::from_secs(60), |rows| {
        rows.iter().all(|r| r.status == OutboxStatus::Confirmed)
    })
    .await;
    for row in all_rows(env.db()).await {
        let sim_order = env.sim.order(&row.so_id).expect("Haier has every order");
        assert_eq!(row.haier_order_no, sim_order.ext_order_no, "{}", row.so_id);
        assert!(row.haier_order_no.as_deref().unwrap().starts_with("SO."));
        assert!(row.pushed_at.is_some() && row.confirmed_at.is_some());
        assert_eq!(row.attempts, 1);
    }
    assert_eq!(all_rows(env.db()).await.len(), ids.len());

    // One sync-log row per poll that did work, with its counts; an idle poll writes nothing.
    let logs = env.order_logs().await;
    assert_eq!(logs.len(), polls.len());
    assert!(logs
        .iter()
        .all(|l| l.job_name == "orders" && l.status == RunStatus::Success && l.completed_at.is_some()));
    assert_eq!(logs.iter().map(|l| l.success_count).sum::<i64>(), 1000);
    assert_eq!(
        poller::try_push_next_batch(&env.ctx, &env.orders_job())
            .await
            .unwrap(),
        PollOutcome::Idle
    );
    assert_eq!(env.order_logs().await.len(), polls.len());
}

#[tokio::test]
async fn invalid_orders_end_dead_with_the_field_named_and_haier_never_sees_them() {
    let env = start(quick_callbacks()).await;
    let code = env.code(0).to_owned();
    let mut no_consignee = order_json("SO-NAME", &[&code]);
    no_consignee.as_object_mut().unwrap().remove("consigneeName");
    let mut bad_total = order_json("SO-TOTAL", &[&code, &code]);
    bad_total["totalQty"] = json!(3);
    let unknown = order_json("SO-PRODUCT", &["GD0XXXX"]);
    let mut zero = order_json("SO-ZERO", &[&code, &code]);
    zero["itemList"][1]["itemQty"] = json!(0);
    zero["totalQty"] = json!(1);
    let mut mismatch = order_json("SO-OTHER", &[&code]);
    mismatch["soId"] = json!("SO-ELSEWHERE");
    for (so_id, payload) in [
        ("SO-NAME", &no_consignee),
        ("SO-TOTAL", &bad_total),
        ("SO-PRODUCT", &unknown),
        ("SO-ZERO", &zero),
        ("SO-OTHER", &mismatch),
        ("SO-GOOD", &order_json("SO-GOOD", &[&code])),
    ] {
        let online_no = payload["onlineNo"].as_str().unwrap().to_owned();
        insert_by_sql(env.db(), so_id, &online_no, payload).await;
    }

    let polls = env.push_all_due().await;
    assert_eq!(polls.len(), 1);
    assert_eq!((polls[0].total, polls[0].success, polls[0].failed), (6, 1, 5));
    let expected = [
        ("SO-NAME", "consigneeName is missing"),
        ("SO-TOTAL", "totalQty 3 does not equal the sum of itemQty 2"),
        (
            "SO-PRODUCT",
            "itemList[0].productCode GD0XXXX is not a Haier product for sale",
        ),
        ("SO-ZERO", "itemList[1].itemQty must be at least 1 (got 0)"),
        (
            "SO-OTHER",
            "so_id column SO-OTHER does not match payload soId SO-ELSEWHERE",
        ),
    ];
    for (so_id, field) in expected {
        let row = row(env.db(), so_id).await;
        assert_eq!(row.status, OutboxStatus::Dead, "{so_id}");
        let error = row.last_error.unwrap();
        assert!(error.contains(field), "{so_id}: {error}");
        assert_eq!(row.attempts, 0, "{so_id} was never sent");
        assert!(env.sim.order(so_id).is_none(), "Haier saw {so_id}");
    }
    assert!(env.sim.order("SO-ELSEWHERE").is_none());
    assert_eq!(env.sim.stats().orders.received, 1);
    // Its confirm callback may already have landed.
    let good = row(env.db(), "SO-GOOD").await.status;
    assert!(
        matches!(good, OutboxStatus::Pushed | OutboxStatus::Confirmed),
        "SO-GOOD is {good}"
    );
    let log = &env.order_logs().await[0];
    assert_eq!(log.status, RunStatus::Partial);
    assert!(
        log.message
            .as_deref()
            .unwrap()
            .contains("SO-NAME (dead: consigneeName is missing)"),
        "{:?}",
        log.message
    );
}

#[tokio::test]
async fn orders_wait_without_dying_until_the_product_catalog_is_synced() {
    let env = start(quick_callbacks()).await;
    env.db()
        .run(|conn| {
            use diesel::prelude::*;
            diesel::delete(haier_sync::db::schema::haier_products::table).execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    insert_by_sql(env.db(), "SO-1", "ON-SO-1", &order_json("SO-1", &[env.code(0)])).await;
    env.push_all_due().await;
    let waiting = row(env.db(), "SO-1").await;
    assert_eq!((waiting.status.as_str(), waiting.attempts), ("pending", 0));
    assert!(waiting.last_error.unwrap().contains("run the products job"));
    assert!(env.sim.order("SO-1").is_none());

    seed_products(env.db(), &[env.code(0)]).await;
    make_all_due(env.db()).await;
    env.push_all_due().await;
    // Pushed, and confirmed too if Haier's callback (20 ms later) has come in already.
    let pushed = row(env.db(), "SO-1").await;
    assert!(
        matches!(pushed.status, OutboxStatus::Pushed | OutboxStatus::Confirmed),
        "{pushed:?}"
    );
    assert_eq!(pushed.attempts, 1);
    assert!(env.sim.order("SO-1").is_some());
}

#[tokio::test]
async fn a_repeated_so_id_counts_as_delivered() {
    // The confirm comes late, so the poller meets the order still pending.
    let env = start(SimOptions {
        callback_delay_ms: 60_000,
        ..quick_callbacks()
    })
    .await;
    let payload = order_json("SO-1", &[env.code(0)]);
    // Haier has the order already (pushed by a poller that died before writing it down).
    let order: haier_sync::haier::Order = serde_json::from_value(payload.clone()).unwrap();
    env.ctx.client.push_order(&order).await.unwrap();
    insert_by_sql(env.db(), "SO-1", "ON-SO-1", &payload).await;

    let polls = env.push_all_due().await;
    assert_eq!(polls[0].success, 1);
    let row = row(env.db(), "SO-1").await;
    assert!(
        matches!(row.status.as_str(), "pushed" | "confirmed"),
        "{}",
        row.status
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("DUPLICATE_SOID"),
        "{:?}",
        row.last_error
    );
    let stats = env.sim.stats();
    assert_eq!(
        (stats.orders.distinct_so_ids, stats.orders.duplicates_rejected),
        (1, 1)
    );
}

#[tokio::test]
async fn retryable_failures_back_off_then_die_at_max_attempts_and_retry_revives_them() {
    let env = start_with_job(
        quick_callbacks(),
        OrdersJob {
            max_attempts: 3,
            ..OrdersJob::default()
        },
    )
    .await;
    env.sim
        .set_faults(Faults {
            fail_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    insert_by_sql(env.db(), "SO-1", "ON-SO-1", &order_json("SO-1", &[env.code(0)])).await;

    let before = haier_sync::db::now_utc();
    // One poll: the retry's delay is random and short, so polling until idle could take it too.
    let outcome = poller::try_push_next_batch(&env.ctx, &env.orders_job())
        .await
        .unwrap();
    assert!(matches!(outcome, PollOutcome::Worked { .. }), "{outcome:?}");
    let first = row(env.db(), "SO-1").await;
    assert_eq!((first.status.as_str(), first.attempts), ("pending", 1));
    assert!(
        first
            .last_error
            .as_deref()
            .unwrap()
            .contains("attempt 1 of 3 failed"),
        "{:?}",
        first.last_error
    );
    assert!(first.next_attempt_at >= before);
    assert!(first.next_attempt_at <= haier_sync::db::now_utc() + chrono::Duration::seconds(1));

    for _ in 0..2 {
        make_all_due(env.db()).await;
        env.push_all_due().await;
    }
    let dead = row(env.db(), "SO-1").await;
    assert_eq!((dead.status.as_str(), dead.attempts), ("dead", 3));
    assert!(
        dead.last_error
            .as_deref()
            .unwrap()
            .starts_with("gave up after 3 attempts"),
        "{:?}",
        dead.last_error
    );
    assert!(env.sim.order("SO-1").is_none());

    env.sim.set_faults(Faults::default()).unwrap();
    let retried = retry_order(env.db(), "SO-1").await.unwrap();
    assert_eq!(retried, Retried::Pending);
    env.push_all_due().await;
    env.wait_for_orders(Duration::from_secs(10), |rows| {
        rows[0].status == OutboxStatus::Confirmed
    })
    .await;
    assert_eq!(env.sim.stats().orders.distinct_so_ids, 1);
}

#[tokio::test]
async fn a_poller_that_crashed_after_pushing_is_covered_by_lease_expiry_and_duplicate_so_id() {
    // Confirms come late enough that every row is still `sending` when its lease ends.
    let sim = SimOptions {
        callback_delay_ms: 3_000,
        ..quick_callbacks()
    };
    let env = start_with_job(
        sim,
        OrdersJob {
            lease_ms: 200,
            ..OrdersJob::default()
        },
    )
    .await;
    let ids = insert_many_by_sql(env.db(), "SO", 20, &[env.code(0)]).await;
    // A poller claims the rows and pushes them, then is killed before it writes anything down.
    // The lease is long enough to outlast the pushes on a loaded machine; the test then ends it
    // by moving its expiry into the past, as time would.
    let claimed = env
        .db()
        .run(|conn| {
            let now = haier_sync::db::now_utc();
            Ok(haier_sync::orders::outbox::claim_due_orders(
                conn,
                "killed-poller",
                now,
                now + chrono::Duration::seconds(600),
                100,
            )?)
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 20);
    for row in &claimed {
        let order: haier_sync::haier::Order = serde_json::from_str(&row.payload).unwrap();
        env.ctx.client.push_order(&order).await.unwrap();
    }
    // While the lease holds, nobody takes the rows.
    assert!(env.push_all_due().await.is_empty());
    let expired = env
        .db()
        .run(|conn| {
            use diesel::prelude::*;
            use haier_sync::db::schema::haier_order_outbox::dsl as o;
            let past = haier_sync::db::now_utc() - chrono::Duration::seconds(1);
            Ok(
                diesel::update(o::haier_order_outbox.filter(o::locked_by.eq("killed-poller")))
                    .set(o::locked_until.eq(past))
                    .execute(conn)?,
            )
        })
        .await
        .unwrap();
    assert_eq!(expired, 20);

    env.push_all_due().await;
    env.wait_for_orders(Duration::from_secs(20), |rows| {
        rows.iter().all(|r| r.status == OutboxStatus::Confirmed)
    })
    .await;
    let stats = env.sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, 20);
    assert_eq!(stats.orders.duplicates_rejected, 20, "each row was taken again");
    assert_eq!(env.sim.orders().len(), ids.len());
    assert!(all_rows(env.db())
        .await
        .iter()
        .all(|r| r.haier_order_no.is_some()));
}

/// The kill -9 done-when, in process: the poller loop runs against a simulator that fails 30% of
/// calls and hangs 5%, and is aborted mid-flight five times (leaving `sending` rows whose short
/// leases run out). Every order must end confirmed, none dead, and Haier hold exactly 1000.
#[tokio::test]
async fn a_thousand_orders_survive_faults_and_five_crashes() {
    let mut options = Options::orders(SimOptions {
        faults: Faults {
            fail_rate: 0.3,
            hang_rate: 0.05,
            ..Faults::default()
        },
        ..quick_callbacks()
    })
    .orders_job(OrdersJob {
        lease_ms: 1_500,
        batch_size: 50,
        ..OrdersJob::default()
    });
    options.ylh.timeout_ms = Some(300);
    let env = spawn_app_with(options).await;
    insert_many_by_sql(env.db(), "SO", 1000, &[env.code(0), env.code(1)]).await;

    // A crash hit a batch in flight when it left rows under a lease taken since that poller
    // started, or the batch's log row `running`.
    let mut crashes_mid_batch = 0;
    for crash in 0..5 {
        let leased_before = leases(&all_rows(env.db()).await);
        let open_before = open_batches(&env).await;
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(poller::run_until_stopped(
            env.ctx.clone(),
            env.orders_job(),
            cancel,
        ));
        tokio::time::sleep(Duration::from_millis(400 + 150 * crash)).await;
        task.abort(); // kill -9: no cleanup, leases left behind
        let _ = task.await;
        let leased = leases(&all_rows(env.db()).await);
        let caught_leases = leased.difference(&leased_before).count();
        let caught_batches = open_batches(&env).await.difference(&open_before).count();
        eprintln!("crash {crash}: {caught_leases} rows left sending, {caught_batches} batches left running");
        if caught_leases > 0 || caught_batches > 0 {
            crashes_mid_batch += 1;
        }
    }
    assert!(
        crashes_mid_batch >= 1,
        "no crash hit a batch in flight: the test crashed only idle pollers"
    );
    let sending = all_rows(env.db())
        .await
        .iter()
        .filter(|r| r.status == OutboxStatus::Sending)
        .count();
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(poller::run_until_stopped(
        env.ctx.clone(),
        env.orders_job(),
        cancel.clone(),
    ));
    // Retries wait up to 1 s, 2 s, 4 s …: skip those waits instead of sleeping through them.
    wait_for(
        "every order confirmed",
        Duration::from_secs(120),
        || async {
            make_all_due(env.db()).await;
            Outbox(all_rows(env.db()).await)
        },
        |outbox| outbox.0.iter().all(|r| r.status == OutboxStatus::Confirmed),
    )
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();

    let rows = all_rows(env.db()).await;
    assert_eq!(rows.len(), 1000);
    assert!(rows
        .iter()
        .all(|r| r.status == OutboxStatus::Confirmed && r.haier_order_no.is_some()));
    let stats = env.sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, 1000);
    assert_eq!(env.sim.orders().len(), 1000);
    assert!(stats.faults_injected > 0, "the faults were in force");
    eprintln!(
        "crash test: {sending} rows left sending by the crashes; {} duplicate pushes answered DUPLICATE_SOID; {} faults",
        stats.orders.duplicates_rejected, stats.faults_injected
    );
}

/// The rows under a lease, each with its holder and expiry.
fn leases(rows: &[OutboxRow]) -> HashSet<(i64, Option<String>, Option<NaiveDateTime>)> {
    rows.iter()
        .filter(|r| r.status == OutboxStatus::Sending)
        .map(|r| (r.id, r.locked_by.clone(), r.locked_until))
        .collect()
}

/// The ids of the order job's log rows still `running`.
async fn open_batches(env: &TestApp) -> HashSet<i64> {
    env.order_logs()
        .await
        .iter()
        .filter(|l| l.status == RunStatus::Running)
        .map(|l| l.id)
        .collect()
}

#[tokio::test]
async fn an_insert_wakes_the_poller_at_once_on_postgres() {
    let env = start_with_job(
        quick_callbacks(),
        // Only a NOTIFY can wake the poller within the test's time.
        OrdersJob {
            poll_interval_ms: 600_000,
            ..OrdersJob::default()
        },
    )
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let wake = poller::listen_for_new_orders(env.db(), stop.clone());
    if env.backend() == haier_sync::db::Backend::Sqlite {
        assert!(wake.is_none(), "SQLite polls");
        return;
    }
    let wake = wake.expect("PostgreSQL listens");
    // The listener signals once when it starts listening.
    tokio::time::timeout(Duration::from_secs(5), wake.notified())
        .await
        .expect("listening");
    insert_by_sql(env.db(), "SO-N", "ON-SO-N", &order_json("SO-N", &[env.code(0)])).await;
    tokio::time::timeout(Duration::from_secs(2), wake.notified())
        .await
        .expect("woken by the insert");
    stop.cancel();

    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(poller::run_until_stopped(
        env.ctx.clone(),
        env.orders_job(),
        cancel.clone(),
    ));
    env.wait_for_orders(Duration::from_secs(5), |rows| {
        rows.iter().all(|r| r.status != OutboxStatus::Pending)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the poller now waits for a NOTIFY
    insert_by_sql(env.db(), "SO-M", "ON-SO-M", &order_json("SO-M", &[env.code(0)])).await;
    env.wait_for_orders(Duration::from_secs(5), |rows| {
        rows.iter().all(|r| r.status != OutboxStatus::Pending)
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert!(env.sim.order("SO-M").is_some());
}

#[tokio::test]
async fn cancel_asks_haier_for_pushed_orders_and_withdraws_pending_ones() {
    let env = start(quick_callbacks()).await;
    insert_by_sql(env.db(), "SO-1", "ON-SO-1", &order_json("SO-1", &[env.code(0)])).await;
    env.push_all_due().await;
    env.wait_for_orders(Duration::from_secs(10), |rows| {
        rows[0].status == OutboxStatus::Confirmed
    })
    .await;

    let outcome = cancel_order(env.db(), &env.ctx.client, "SO-1", "customer changed their mind")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Requested);
    assert_eq!(
        row(env.db(), "SO-1").await.cancel_state,
        Some(CancelState::Requested)
    );
    env.wait_for_orders(Duration::from_secs(10), |rows| {
        rows[0].status == OutboxStatus::Cancelled
    })
    .await;
    let cancelled = row(env.db(), "SO-1").await;
    assert_eq!(cancelled.cancel_state, Some(CancelState::Full));
    assert!(env.sim.order("SO-1").unwrap().cancelled);

    insert_by_sql(env.db(), "SO-2", "ON-SO-2", &order_json("SO-2", &[env.code(0)])).await;
    let outcome = cancel_order(env.db(), &env.ctx.client, "SO-2", "duplicate order")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Local);
    assert!(
        env.push_all_due().await.is_empty(),
        "a cancelled order is never sent"
    );
    assert!(env.sim.order("SO-2").is_none());
    assert_eq!(
        cancel_order(env.db(), &env.ctx.client, "SO-404", "x")
            .await
            .unwrap(),
        Cancelled::NotFound
    );
}

#[tokio::test]
async fn cancelling_a_dead_order_haier_never_received_cancels_it_here() {
    let env = start(quick_callbacks()).await;
    insert_by_sql(env.db(), "SO-D", "ON-SO-D", &order_json("SO-D", &[env.code(0)])).await;
    env.db()
        .run(|conn| {
            use diesel::prelude::*;
            use haier_sync::db::schema::haier_order_outbox::dsl;
            diesel::update(dsl::haier_order_outbox.filter(dsl::so_id.eq("SO-D")))
                .set((dsl::status.eq("dead"), dsl::last_error.eq("gave up")))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();

    // Haier answers the cancel ORDER_NOT_FOUND: the order is cancelled here, not failed.
    let outcome = cancel_order(env.db(), &env.ctx.client, "SO-D", "given up")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Local);
    let cancelled = row(env.db(), "SO-D").await;
    assert_eq!(cancelled.status, OutboxStatus::Cancelled);
    assert_eq!(cancelled.cancel_state, Some(CancelState::Local));
    assert_eq!(
        cancelled.cancel_detail.as_deref(),
        Some("given up (Haier never received the order)")
    );
    assert!(env.sim.order("SO-D").is_none());
}
