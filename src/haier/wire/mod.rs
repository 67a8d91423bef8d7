//! Haier's wire format: request bodies (`request`), the reply envelope (`envelope`), token replies
//! (`token`), lenient scalars (`lenient`), the product listing decoded as it arrives (`listing`) and replies into domain types (`reply`). It sends
//! nothing and knows no URLs (those are `haier::paths`).

mod envelope;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod lenient;
mod listing;
mod reply;
mod request;
mod token;

pub(super) use envelope::{open_envelope, Envelope};
pub(super) use listing::{decode_listing, ListingEnd};
pub(super) use reply::{
    balances_from, cancel_accepted_from, logistics_from, prices_from, products_from, stock_from,
};
pub(super) use request::{
    BalanceRequest, CancelOrderRequest, LogisticsRequest, OpenplatTokenRequest, PricesRequest,
    ProductsRequest, StockRequest, PRICE_TYPE, SEARCH_TYPE, STOCK_SOURCE, YLH_SYSTEM_NAME,
};
pub(super) use token::{auth_error_message, decode_token_reply};

#[cfg(test)]
mod wire_proptest;
