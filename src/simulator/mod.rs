//! The stateful Haier simulator that `haier-sync simulate`, the demo, tests and benchmarks run:
//! openplat and YLH on one loopback address, following `haier-api.md` on its own (it shares no
//! wire types or code with the client in `crate::haier`, only the names of Haier's paths in
//! `crate::haier::paths`).
//!
//! Openplat paths sit at the root; YLH paths under each suffix (`-dev`, `-pre`, none).
//! `/_sim/*` inspects and steers it: `GET stats`, `GET orders`, `GET|POST faults`,
//! `POST reset`, `POST expire-tokens`, `POST mutate`, `GET catalog`, and for one order
//! `POST orders/{soId}/door-refusal {productCode, qty}`, `POST orders/{soId}/return
//! {productCode, qty, fail_inspection}` and `POST orders/{soId}/out-of-stock {fail_msg}`, each
//! sending its callback at once and answering the `Data` it sent.
//!
//! Tests start one per test: `Simulator::start("127.0.0.1:0".parse()?, SimOptions::default(),
//! SimCredentials::default())`.
//!
//! Where the contract is silent, the simulator decides:
//! - A wrong customer, ship-to or seller code is `PASSWORD_ERROR`, like a wrong password. A value
//!   that cannot be read (a 5-digit county, `itemQty` 0, a body that is not JSON) is
//!   `PARAM_MISSING`, the contract's only code for a bad request.
//! - Products: `productCodes` absent, `null` or `[]` lists every purchasable product; a code the
//!   catalog never heard of comes back with `isSales:"0"` and `noSalesReason:"产品不存在"`.
//!   Prices treat it as not for sale (`商品暂不可采`); stock answers it with an empty list.
//! - Each product sends all its price decimals either as strings or as numbers (fixed per product).
//! - Openplat takes only the raw token in `Authorization`; YLH takes `bearer <token>` in any case.
//!   A YLH 401 body is Spring's (`error`, `error_description`) plus the openplat `code`/`message`.
//!   YLH's `expires_in` is the TTL minus one second, as Spring reports it.
//! - Quota: a sliding one-second window per system; token calls count; `/_sim` calls never do.
//!   Latency applies to every reply, 429s included; fail/hang only to business calls.
//! - Haier confirms a push `callback_delay_ms` after it, callback URL or not. A refused order
//!   (an item not purchasable) gets no `ExtOrderNo`. Callback `Data` always carries all its keys,
//!   with `""` for `ExtOrderNo` or `FailMsg` when they do not apply.
//! - Logistics exist from the confirmation on; before it (and for refused orders) the order is
//!   `ORDER_NOT_FOUND`. States: ACCEPTED, OUTBOUND (⅓), IN_TRANSIT (⅔), DELIVERED (all of
//!   `delivery_after_ms`).
//! - Cancel answers `data:true` and tells the outcome in its callback: `State:1` (items as
//!   `rejectQty`) unless the order was delivered already (`State:0`, `FailMsg`). A refused or
//!   already cancelled order answers `data:false` and sends nothing. A granted cancel stops the
//!   logistics walk with a `CANCELLED` node.
//! - After-sale calls (reschedule, photos, express numbers) know an order from its confirmation
//!   on, by its `ExtOrderNo`; before it, and for refused orders, it is `ORDER_NOT_FOUND` (photos,
//!   reschedule) or left out of the list (express numbers). A reschedule of a cancelled or
//!   delivered order answers `data:false`; its times must be epoch-ms numbers at 23:59:59 Beijing
//!   time, else `PARAM_MISSING`. Every taken order has two installation photos and one delivery
//!   photo, and one parcel per item line with one SN per unit. The express body must be a JSON
//!   array (else `PARAM_MISSING`) of at most 100 numbers (else `TOO_MANY_CODES`).
//! - Cancel answers `data:true` and tells the outcome in its callback, by the order's stage: not
//!   shipped → 补货成功未出库 (`State:1`, every unit in `rejectQty`); shipped → 已出库拦截成功
//!   (the same); delivered → 退货鉴定成功, a return (`State:1`, every received unit in
//!   `returnQty`). The fault `cancel_outcome` forces any of the contract's eight outcomes (the
//!   four refused ones send `State:0` with the outcome as `FailMsg`). `itemList` always carries
//!   every product's current totals. A refused order, or one cancelled already, answers
//!   `data:false` and sends nothing. A granted cancel stops the logistics walk with a
//!   `CANCELLED` node.
//! - A refusal at the door (fault `door_refusal_rate`, or the admin call) refuses some units of
//!   one product; every other unit counts as received. `State` is 1 when no unit is left with
//!   the customer, else 2. A return (admin call) of n units of which k fail inspection sends
//!   `State` 1 (k = 0), 2 (some fail) or 0 (all fail, 退回鉴定失败).
//! - `POST /_sim/reset` returns to the start state: orders, tokens, quotas, counters, mutations and
//!   faults as started, and callbacks not yet sent are dropped.

mod admin;
mod after_sale;
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
mod units;
mod ylh;

pub use callbacks::{beijing_timestamp, sign_callback, METHOD_CANCEL, METHOD_CONFIRM, METHOD_OUT_OF_STOCK};
pub use catalog::{
    extra_count, invoice_price, Catalog, Mutation, Price, PriceLookup, Product, Warehouse, MAX_PRODUCTS,
};
pub use credentials::{
    CallbackCredentials, OpenplatCredentials, SimCredentials, YlhCredentials, DEFAULT_CALLBACK_URL,
    DEFAULT_LISTEN,
};
pub use faults::Faults;
pub use openplat::MAX_CODES_PER_CALL;
pub use orders::{Rescheduled, SimOrder};
pub use server::{SimHandle, SimOptions, Simulator};
pub use stats::{CallbackCounts, FaultCounts, OrderCounts, RequestCounts, SimStats};
pub use units::{CancelOutcome, SimLine};
pub use ylh::PATH_SUFFIXES;
