//! Haier's wire format: request bodies (`request`), the reply envelope (`envelope`), token replies
//! (`token`), lenient scalars (`lenient`), Haier's time shapes (`times`), the product listing
//! decoded as it arrives (`listing`) and replies into domain
//! types (`reply`, `logistics`, and `ylh_reply` for YLH's after-sale calls). It sends
//! nothing and knows no URLs (those are `haier::paths`).

mod envelope;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod lenient;
mod listing;
mod logistics;
mod reply;
mod request;
mod times;
mod token;
mod ylh_reply;

pub(super) use envelope::{open_envelope, Envelope};
pub(super) use listing::{decode_listing, ListingEnd};
pub(super) use logistics::logistics_from;
pub(super) use reply::{balances_from, cancel_accepted_from, prices_from, products_from, stock_from};
pub(super) use request::{
    BalanceRequest, CancelOrderRequest, DeliveryPhotosRequest, LogisticsRequest, OpenplatTokenRequest,
    PricesRequest, ProductsRequest, RescheduleRequest, StockRequest, PRICE_TYPE, SEARCH_TYPE, STOCK_SOURCE,
    YLH_SYSTEM_NAME,
};
pub(super) use times::beijing;
pub(super) use token::{auth_error_message, decode_token_reply};
pub(super) use ylh_reply::{accepted_from, delivery_photos_from, shipments_from};

#[cfg(test)]
mod wire_proptest;
