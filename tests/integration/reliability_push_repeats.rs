//! Issue 12: each order reaches Haier exactly once when Haier's answers go missing. The real
//! `haier-sync run` pushes 500 orders while Haier answers a repeated `soId` the way real Haier may
//! (`errCode: null`, only 子订单号已存在 / 重复推送 in the message), a fifth of the pushes take effect
//! but their reply never comes (it hangs past the client's 400 ms timeout), and the daemon is
//! `kill -9`ed five times mid-push. In the end no order is `dead`, Haier holds exactly 500
//! distinct orders, and every one is confirmed by its callback.

use crate::support::{
    insert_many_by_sql, instance_of, rows as job_rows, spawn_app_with, status_counts, Callbacks, Deadline,
    Options,
};
use haier_sync::runs::RunStatus;
use haier_sync::simulator::{Faults, SimOptions};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

const ORDERS: u64 = 500;
const KILLS: u64 = 5;

fn tables() -> String {
    "[daemon]\nheartbeat_ms = 200\nwatch_config = false\n\n\
     [jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = 100\nbatch_size = 50\n\
     max_attempts = 100\nlease_ms = 3000\n"
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_repeats_refused_by_message_only_and_five_kill_9_leave_each_order_at_haier_once() {
    let app = spawn_app_with(
        Options::process(400)
            .callbacks(Callbacks::ToDaemon)
            .listed_products(20)
            .extra_toml(tables())
            .sim(SimOptions {
                products: 50,
                // Haier confirms after a kill's lost pushes were pushed again by the next daemon.
                callback_delay_ms: 1500,
                // Callbacks sent while the daemon is down are tried again soon, and not given up.
                callback_retry_base_ms: 100,
                callback_max_attempts: 30,
                faults: Faults {
                    duplicate_message_only: true,
                    lost_reply_hang_rate: 0.2,
                    ..Faults::default()
                },
                ..SimOptions::default()
            }),
    )
    .await;
    let sim = &app.sim;
    let codes: Vec<&str> = (0..3).map(|i| app.code(i)).collect();
    insert_many_by_sql(app.db(), "SO-REPEAT", ORDERS as usize, &codes).await;
    let mut daemon = app.daemon_process();
    let started = Instant::now();

    // Killed each time Haier has taken another sixth of the orders: mid-push.
    let mut kills_mid_batch = 0;
    for kill in 1..=KILLS {
        let pid = daemon.start();
        let target = ORDERS * kill / (KILLS + 1);
        let deadline = Deadline::new(Duration::from_secs(30));
        while sim.stats().orders.distinct_so_ids < target {
            let what = format!("{target} orders at Haier before kill {kill}");
            deadline.wait(&what, &sim.stats().orders).await;
        }
        let status = daemon.kill_9();
        assert_eq!(status.signal(), Some(9), "kill {kill}: {status:?}");
        let counts = status_counts(app.db()).await;
        let open = job_rows(app.db(), "orders")
            .await
            .iter()
            .filter(|r| r.status == RunStatus::Running && r.instance == instance_of(pid))
            .count();
        eprintln!("kill {kill}: outbox {counts:?}, {open} batches left running");
        if open > 0 || counts.iter().any(|(status, _)| status == "sending") {
            kills_mid_batch += 1;
        }
        assert!(
            !counts.iter().any(|(status, _)| status == "dead"),
            "an order died: {counts:?}"
        );
    }
    assert!(kills_mid_batch >= 1, "no kill hit a batch in flight");

    daemon.start();
    let deadline = Deadline::new(Duration::from_secs(45));
    loop {
        let counts = status_counts(app.db()).await;
        if counts == [("confirmed".to_owned(), ORDERS as i64)] {
            break;
        }
        assert!(
            !counts.iter().any(|(status, _)| status == "dead"),
            "an order died: {counts:?}"
        );
        deadline.wait("every order confirmed", &counts).await;
    }
    let took = started.elapsed();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");

    let stats = sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, ORDERS, "{stats:#?}");
    let held: Vec<String> = sim.orders().into_iter().map(|o| o.so_id).collect();
    let distinct: BTreeSet<&String> = held.iter().collect();
    assert_eq!((held.len(), distinct.len()), (ORDERS as usize, ORDERS as usize));
    // The faults happened: replies were lost, and repeats were answered by message only.
    assert!(stats.orders.replies_lost >= ORDERS / 10, "{stats:#?}");
    assert!(
        stats.orders.duplicates_rejected >= stats.orders.replies_lost / 2,
        "{stats:#?}"
    );
    assert_eq!(stats.callbacks.given_up, 0, "{stats:#?}");
    eprintln!(
        "{ORDERS} orders confirmed in {took:?} across {KILLS} kills; Haier saw {} pushes, lost {} replies \
         and refused {} repeats by message only",
        stats.orders.received, stats.orders.replies_lost, stats.orders.duplicates_rejected
    );
}
