//! The stateful Haier simulator that `haier-sync simulate`, the demo, tests and benchmarks run:
//! openplat and YLH on one loopback address, following `haier-api.md` on its own (it shares no
//! wire types or code with the client in `crate::haier`).
//!
//! Openplat paths sit at the root; YLH paths under each suffix (`-dev`, `-pre`, none).
//! `/_sim/*` inspects and steers it: `GET stats`, `GET orders`, `GET|POST faults`,
//! `POST reset`, `POST expire-tokens`, `POST mutate`, `GET catalog`.
//!
//! Tests start one per test: `Simulator::start("127.0.0.1:0".parse()?, SimOptions::default(),
//! SimCredentials::default())`.

mod admin;
mod auth;
mod callbacks;
mod catalog;
mod credentials;
mod faults;
mod fields;
mod openplat;
mod orders;
mod reply;
mod server;
mod stats;
mod ylh;

pub use callbacks::{beijing_timestamp, sign_callback, METHOD_CANCEL, METHOD_CONFIRM};
pub use catalog::{extra_count, invoice_price, Catalog, Mutation, Price, PriceLookup, Product, Warehouse};
pub use credentials::{
    CallbackCredentials, OpenplatCredentials, SimCredentials, YlhCredentials, DEFAULT_CALLBACK_URL,
    DEFAULT_LISTEN,
};
pub use faults::Faults;
pub use openplat::{
    BALANCE_PATH, LOGISTICS_PATH, MAX_CODES_PER_CALL, PRICES_PATH, PRODUCTS_PATH, STOCK_PATH,
};
pub use orders::SimOrder;
pub use server::{SimHandle, SimOptions, Simulator};
pub use stats::{CallbackCounts, FaultCounts, OrderCounts, RequestCounts, SimStats};
pub use ylh::{cancel_path, push_path, token_path, PATH_SUFFIXES};
