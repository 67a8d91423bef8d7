//! The integration tests' one harness, in the spirit of zero2prod's `spawn_app`: [`spawn_app`]
//! gives a test its database (on the suite's backend), a simulator on a free port, a written
//! `jobs.toml`, the config loaded from it and the context; [`Options`] says what differs. Beside
//! it, one of each thing tests share: waiting with a deadline, orders as a shop writes them,
//! sync-log rows, a fake job runner, the `haier-sync` process, and a refusing proxy. It owns no
//! test; the library's `db::testing` (feature `test-support`) makes the databases.

mod admin;
mod app;
mod config;
mod orders;
mod process;
mod proxy;
mod runner;
mod runs;
mod sim_login;
mod sync;
mod taken;
mod wait;

pub use admin::serve_status_page;
pub use app::{
    spawn_app, spawn_app_with, start_simulator, Callbacks, ClientSettings, Options, OrdersJob, TestApp,
};
pub use config::{daemon_tables, SHIPPED};
pub use orders::{
    all_rows, events, insert_by_sql, insert_many_by_sql, insert_orders_by_sql, insert_shop_orders,
    make_all_due, order_json, order_lines, post_form, row, seed_products, signed_form, sim_sign,
    status_counts, Outbox, ReceiverHandle, APP_KEY, SECRET,
};
pub use process::{command, run_command, stderr, stdout, DaemonProcess};
pub use proxy::RefusingProxy;
pub use runner::FakeRunner;
pub use runs::{finished_row, instance_of, instance_row, orphan_row, rows, this_host, utc, DEAD_PID};
pub use sim_login::ylh_token;
pub use sync::CancelAfter;
pub use taken::{taken_orders, FIRST_DATE_MS};
pub use wait::{wait_for, wait_for_rows, wait_until, Deadline, DEADLINE};
