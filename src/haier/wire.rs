//! Haier's wire format: request bodies with Haier's keys (typos and all), the envelope, token
//! replies, and lenient decoding of replies into domain types (string numbers, string booleans,
//! bare arrays, unknown or missing fields). It sends nothing and knows no URLs.

use super::types::{Balance, Logistics, LogisticsEvent, Price, Product, StockLevel, Warehouse};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Requests (no `Debug`: they carry passwords; logs show them through the redactor only)
// ---------------------------------------------------------------------------------------------

/// `searchType` of the purchasable-products call.
pub(super) const SEARCH_TYPE: &str = "PTJSH";
/// `priceType` of the price call.
pub(super) const PRICE_TYPE: &str = "PT";
/// `source` of the stock call.
pub(super) const STOCK_SOURCE: &str = "JSH-B";
/// The `system-name` header YLH's token endpoint requires.
pub(super) const YLH_SYSTEM_NAME: &str = "ylh-open-api";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductsRequest<'a> {
    pub customer_code: &'a str,
    pub send_to_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_codes: Option<&'a [String]>,
    pub supplier_code: &'a str,
    pub search_type: &'static str,
    #[serde(rename = "passWord")]
    pub password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PricesRequest<'a> {
    pub customer_code: &'a str,
    pub send_to_code: &'a str,
    pub product_codes: &'a [String],
    pub price_type: &'static str,
    #[serde(rename = "passWord")]
    pub password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StockRequest<'a> {
    pub sales_code: &'a str,
    pub sender_code: &'a str,
    pub product_code: &'a str,
    pub county_code: &'a str,
    pub source: &'static str,
    pub seller_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogisticsRequest<'a> {
    pub order_code: &'a str,
    pub seller_code: &'a str,
    pub seller_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BalanceRequest<'a> {
    pub customer_code: &'a str,
    pub customer_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancelOrderRequest<'a> {
    pub so_id: &'a str,
    /// Milliseconds since the epoch, as a string.
    pub cancel_time: String,
    pub cancel_reason: &'a str,
    pub source_system: &'a str,
}

#[derive(Serialize)]
pub(super) struct OpenplatTokenRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub grant_type: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Envelope and token replies
// ---------------------------------------------------------------------------------------------

/// What a business reply said, once the envelope is opened.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Envelope {
    /// `success:true` (or no envelope at all): the payload.
    Data(Value),
    /// `success:false`: Haier's error code (`errCode`, else `code`) and message.
    Refused { code: String, message: String },
    /// `success:false, code:429` on a 200: treat as a 429.
    Throttled,
}

/// Why a reply that is JSON is still not an answer: neither the envelope nor a bare list.
const NOT_AN_ENVELOPE: &str = "the reply is neither Haier's envelope (no `success`) nor a list";

/// Opens the envelope `{"success","code","errCode","errorMsg","data",…}`. A bare array is the
/// payload itself. Anything else that is not an object with a readable `success` (or an
/// `errCode`, a refusal) is an error: read as data, a broken reply would become an empty list.
pub(super) fn open_envelope(body: &[u8]) -> Result<Envelope, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the reply is not JSON: {e}"))?;
    let mut map = match value {
        Value::Object(map) => map,
        Value::Array(_) => return Ok(Envelope::Data(value)),
        _ => return Err(NOT_AN_ENVELOPE.to_owned()),
    };
    let success = match map.get("success") {
        None => None,
        Some(given) => {
            Some(to_bool(given).ok_or_else(|| format!("`success` is neither true nor false: {given}"))?)
        }
    };
    let err_code = map.get("errCode").and_then(to_text).filter(|c| !c.is_empty());
    let refused = match success {
        Some(success) => !success,
        None if err_code.is_some() => true,
        None => return Err(NOT_AN_ENVELOPE.to_owned()),
    };
    if refused {
        let code_field = map.get("code").and_then(to_text);
        if err_code.is_none() && code_field.as_deref() == Some("429") {
            return Ok(Envelope::Throttled);
        }
        let code = err_code.or(code_field).unwrap_or_else(|| "UNKNOWN".to_owned());
        let message = ["errorMsg", "message", "msg", "error"]
            .iter()
            .find_map(|k| map.get(*k).and_then(to_text).filter(|m| !m.is_empty()))
            .unwrap_or_default();
        return Ok(Envelope::Refused { code, message });
    }
    Ok(Envelope::Data(map.remove("data").unwrap_or(Value::Null)))
}

/// A token as a token endpoint issued it.
#[derive(Clone, PartialEq)]
pub(super) struct TokenReply {
    pub token: String,
    /// From `expires_in`, else `expires_at`; `None` when the reply gives neither.
    pub lifetime: Option<Duration>,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("token", &"***")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Decodes a token reply: `token` or `access_token` (or `accessToken`), at the top or under
/// `data`; `expires_in` seconds or `expires_at` unix seconds (milliseconds accepted).
pub(super) fn decode_token_reply(body: &[u8], now_unix_secs: i64) -> Result<TokenReply, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the token reply is not JSON: {e}"))?;
    let top = value.as_object();
    let nested = top.and_then(|m| m.get("data")).and_then(Value::as_object);
    for map in [top, nested].into_iter().flatten() {
        let token = ["token", "access_token", "accessToken"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()));
        if let Some(token) = token {
            return Ok(TokenReply {
                token: token.to_owned(),
                lifetime: token_lifetime(map, now_unix_secs),
            });
        }
    }
    Err("the token reply holds no `token` or `access_token`".to_owned())
}

/// The longest life taken from a token reply (a week): a larger one, up to `i64::MAX` seconds,
/// would overflow the refresh instant.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

fn token_lifetime(map: &Map<String, Value>, now_unix_secs: i64) -> Option<Duration> {
    let secs = |key: &str| map.get(key).and_then(|v| to_i64(v).ok().flatten());
    if let Some(expires_in) = secs("expires_in").or_else(|| secs("expiresIn")) {
        return Some(Duration::from_secs(expires_in.max(0) as u64).min(MAX_TOKEN_LIFETIME));
    }
    let expires_at = secs("expires_at").or_else(|| secs("expiresAt"))?;
    // Ten digits are seconds; thirteen are milliseconds.
    let expires_at = if expires_at > 100_000_000_000 {
        expires_at / 1000
    } else {
        expires_at
    };
    Some(Duration::from_secs(expires_at.saturating_sub(now_unix_secs).max(0) as u64).min(MAX_TOKEN_LIFETIME))
}

/// The reason a token endpoint gave for refusing: `error_description`, `message`, `errorMsg`,
/// `error`, else the body text.
pub(super) fn auth_error_message(body: &[u8]) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = ["error_description", "message", "errorMsg", "msg", "error"]
            .iter()
            .find_map(|k| map.get(*k).and_then(to_text).filter(|m| !m.is_empty()))
        {
            return message;
        }
    }
    String::from_utf8_lossy(body).trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Lenient scalars
// ---------------------------------------------------------------------------------------------

/// Text of a scalar: strings as they are, numbers and booleans as JSON writes them.
fn to_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// `true`/`false`, `1`/`0`, `"1"`/`"0"`, `"true"`/`"false"`, `"Y"`/`"N"`; anything else is unknown.
fn to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "y" | "yes" => Some(true),
            "0" | "false" | "n" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A decimal from a JSON number or string; null or empty text is `None`.
fn to_decimal(value: &Value) -> Result<Option<Decimal>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        other => return Err(format!("expected a decimal, got {other}")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| format!("expected a decimal, got {text:?}"))
}

/// An integer from a JSON number or string (`"30"`, `30`, `"30.0"`); null or empty is `None`.
fn to_i64(value: &Value) -> Result<Option<i64>, String> {
    if let Some(i) = value.as_i64() {
        return Ok(Some(i));
    }
    match to_decimal(value)? {
        None => Ok(None),
        Some(d) if d.fract().is_zero() => i64::try_from(d)
            .map(Some)
            .map_err(|_| format!("integer out of range: {d}")),
        Some(d) => Err(format!("expected an integer, got {d}")),
    }
}

mod lenient {
    //! serde adapters for Haier's loosely typed scalars; every one takes null and a missing key.

    use super::*;

    pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(to_text))
    }

    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    pub(super) fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
        to_decimal(&value).map_err(D::Error::custom)
    }

    pub(super) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
        Ok(to_i64(&value).map_err(D::Error::custom)?.unwrap_or(0))
    }

    pub(super) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(to_bool))
    }

    /// A list; null is empty, a single object is a list of one, a comma-separated string of
    /// URLs is split.
    pub(super) fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
        list_of(value).map_err(D::Error::custom)
    }

    pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Option::<Value>::deserialize(d)?.unwrap_or(Value::Null) {
            Value::String(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
            Value::Array(items) => Ok(items.iter().filter_map(to_text).collect()),
            Value::Null => Ok(Vec::new()),
            other => Ok(to_text(&other).into_iter().collect()),
        }
    }
}

/// A payload that should be a list: null is empty, an object is a list of one; any other
/// scalar is an error.
fn list_of<T: DeserializeOwned>(value: Value) -> Result<Vec<T>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        Value::Object(item) => vec![Value::Object(item)],
        other => return Err(format!("expected a list, got {other}")),
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| e.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Replies into domain types
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductWire {
    #[serde(default, deserialize_with = "lenient::string")]
    product_code: String,
    #[serde(default, deserialize_with = "lenient::string")]
    product_model: String,
    #[serde(
        rename = "productGroupNamd",
        default,
        deserialize_with = "lenient::opt_string"
    )]
    group_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    product_brand_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    product_image_url: Option<String>,
    #[serde(rename = "productLageUrls", default, deserialize_with = "lenient::strings")]
    leaflet_urls: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    is_sales: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    no_sales_reason: Option<String>,
}

/// The purchasable-products payload. Items without a product code are dropped.
pub(super) fn products_from(data: Value) -> Result<Vec<Product>, String> {
    Ok(list_of::<ProductWire>(data)?
        .into_iter()
        .filter(|p| !p.product_code.is_empty())
        .map(|p| Product {
            code: p.product_code,
            model: p.product_model,
            group_name: p.group_name,
            brand_name: p.product_brand_name,
            image_url: p.product_image_url,
            leaflet_urls: p.leaflet_urls,
            // An item in the purchasable list without `isSales` is taken as purchasable.
            is_sales: p.is_sales.unwrap_or(true),
            no_sales_reason: p.no_sales_reason.filter(|r| !r.is_empty()),
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriceWire {
    #[serde(default, deserialize_with = "lenient::string")]
    product_code: String,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    supply_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    invoice_price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    rebate_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    rebate_money: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    stock_rebate_policy: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    is_sales: Option<bool>,
}

/// The price payload. Prices are kept exactly as sent: nothing is recomputed.
pub(super) fn prices_from(data: Value) -> Result<Vec<Price>, String> {
    Ok(list_of::<PriceWire>(data)?
        .into_iter()
        .filter(|p| !p.product_code.is_empty())
        .map(|p| Price {
            code: p.product_code,
            supply_price: p.supply_price,
            invoice_price: p.invoice_price,
            rebate_rate: p.rebate_rate,
            rebate_money: p.rebate_money,
            stock_rebate_policy: p.stock_rebate_policy,
            reason: p.reason.filter(|r| !r.is_empty()),
            is_sales: p.is_sales.unwrap_or(true),
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WarehouseWire {
    #[serde(default, deserialize_with = "lenient::string")]
    sec_code: String,
    #[serde(default, deserialize_with = "lenient::int")]
    stock: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    warehouse_grade: String,
    #[serde(default)]
    timeliness_data: Option<Value>,
}

/// The stock payload: a list of warehouses (empty or null: no stock). An item with neither
/// `secCode` nor `stock` is not a warehouse (e.g. a paged `{"records":[…]}`): read as one, it
/// would zero the stock. The total must fit an `i64`.
pub(super) fn stock_from(product_code: &str, county_code: &str, data: Value) -> Result<StockLevel, String> {
    let items: Vec<&Value> = match &data {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if let Some(item) = items.into_iter().find(|item| {
        item.as_object()
            .is_some_and(|m| !m.contains_key("secCode") && !m.contains_key("stock"))
    }) {
        return Err(format!("a warehouse has neither `secCode` nor `stock`: {item}"));
    }
    let warehouses: Vec<Warehouse> = list_of::<WarehouseWire>(data)?
        .into_iter()
        .map(|w| Warehouse {
            sec_code: w.sec_code,
            stock: w.stock,
            grade: w.warehouse_grade,
            timeliness: w.timeliness_data.filter(|t| !t.is_null()),
        })
        .collect();
    warehouses
        .iter()
        .try_fold(0i64, |total, w| total.checked_add(w.stock))
        .ok_or_else(|| format!("the stock of the warehouses adds up past {}", i64::MAX))?;
    Ok(StockLevel {
        product_code: product_code.to_owned(),
        county_code: county_code.to_owned(),
        warehouses,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BalanceWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    sale_group_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    sale_group_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    payer_account_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    payer_account_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_decimal")]
    payer_account_balance: Option<Decimal>,
}

pub(super) fn balances_from(data: Value) -> Result<Vec<Balance>, String> {
    Ok(list_of::<BalanceWire>(data)?
        .into_iter()
        .map(|b| Balance {
            sale_group_code: b.sale_group_code,
            sale_group_name: b.sale_group_name,
            payer_account_code: b.payer_account_code,
            payer_account_name: b.payer_account_name,
            balance: b.payer_account_balance,
        })
        .collect())
}

#[derive(Deserialize, Default)]
struct LogisticsWire {
    #[serde(
        rename = "getAllLogisticsInfoByOrderCode",
        default,
        deserialize_with = "lenient::list"
    )]
    deliveries: Vec<DeliveryWire>,
    #[serde(
        rename = "getStockDeliveryLogisticsRecord",
        default,
        deserialize_with = "lenient::list"
    )]
    zhihuibao: Vec<ZhihuibaoWire>,
    #[serde(
        rename = "getStockDeliveryLogisticsRecordThirdparty",
        default,
        deserialize_with = "lenient::list"
    )]
    couriers: Vec<ThirdpartyWire>,
}

#[derive(Deserialize)]
struct DeliveryWire {
    #[serde(
        rename = "getStoreOutboundLogisticsInfoResultDto",
        default,
        deserialize_with = "lenient::list"
    )]
    outbound: Vec<OutboundWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboundWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    logistics_company_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    exp_no: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    delivery_logistics_dtos: Vec<StateWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateWire {
    #[serde(default, deserialize_with = "lenient::string")]
    state_code: String,
    #[serde(default, deserialize_with = "lenient::string")]
    state_time: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZhihuibaoWire {
    #[serde(default, deserialize_with = "lenient::list")]
    logistics_info: Vec<ZhihuibaoStateWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZhihuibaoStateWire {
    #[serde(default, deserialize_with = "lenient::string")]
    status_code: String,
    #[serde(default, deserialize_with = "lenient::string")]
    state_time: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdpartyWire {
    #[serde(default, deserialize_with = "lenient::list")]
    logistics_no_list: Vec<CourierWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CourierWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    logistics_no: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    logistics_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    logistics_info: Vec<NodeWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeWire {
    #[serde(default, deserialize_with = "lenient::string")]
    node_name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    state_time: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    context: Option<String>,
}

/// The state code of a delivered order.
const DELIVERED: &str = "DELIVERED";

/// The logistics payload: every state from the three record lists, the newest by `stateTime`,
/// whether any says `DELIVERED`, and the first carrier and tracking number found.
pub(super) fn logistics_from(order_code: &str, data: Value) -> Result<Logistics, String> {
    let wire: LogisticsWire = match &data {
        Value::Object(_) => serde_json::from_value(data.clone()).map_err(|e| e.to_string())?,
        _ => LogisticsWire::default(),
    };
    let mut events = Vec::new();
    let mut company_name = None;
    let mut express_no = None;
    for outbound in wire.deliveries.into_iter().flat_map(|d| d.outbound) {
        company_name = company_name.or(outbound.logistics_company_name.filter(|s| !s.is_empty()));
        express_no = express_no.or(outbound.exp_no.filter(|s| !s.is_empty()));
        events.extend(
            outbound
                .delivery_logistics_dtos
                .into_iter()
                .map(|s| LogisticsEvent {
                    state_code: s.state_code,
                    state_time: s.state_time,
                    description: s.state_description,
                }),
        );
    }
    for state in wire.zhihuibao.into_iter().flat_map(|r| r.logistics_info) {
        events.push(LogisticsEvent {
            state_code: state.status_code,
            state_time: state.state_time,
            description: state.state_description,
        });
    }
    for courier in wire.couriers.into_iter().flat_map(|c| c.logistics_no_list) {
        company_name = company_name.or(courier.logistics_name.filter(|s| !s.is_empty()));
        express_no = express_no.or(courier.logistics_no.filter(|s| !s.is_empty()));
        events.extend(courier.logistics_info.into_iter().map(|n| LogisticsEvent {
            state_code: n.node_name,
            state_time: n.state_time,
            description: n.context,
        }));
    }
    let delivered = events
        .iter()
        .any(|e| e.state_code.trim().eq_ignore_ascii_case(DELIVERED));
    let latest = events
        .into_iter()
        .max_by(|a, b| event_time_key(a).cmp(&event_time_key(b)));
    Ok(Logistics {
        order_code: order_code.to_owned(),
        latest,
        delivered,
        company_name,
        express_no,
        raw: data,
    })
}

/// Orders events by their parsed `yyyy-MM-dd HH:mm:ss` time (unparsable times sort first); within
/// the same second a `DELIVERED` state is the newest, since nothing follows a delivery.
fn event_time_key(event: &LogisticsEvent) -> (Option<chrono::NaiveDateTime>, bool, &str) {
    let time = event.state_time.trim();
    (
        chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").ok(),
        event.state_code.trim().eq_ignore_ascii_case(DELIVERED),
        time,
    )
}

/// The cancel payload: `true`/`false` (lenient); null or an object counts as accepted.
pub(super) fn cancel_accepted_from(data: &Value) -> bool {
    match data {
        Value::Null | Value::Object(_) => true,
        other => to_bool(other).unwrap_or(true),
    }
}

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, off in every normal build):
/// each reads a whole reply body the way the client does.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::*;

    /// Opens `body` as a business reply and, when it holds data, runs every payload decoder on it.
    pub fn decode_reply(body: &[u8]) {
        if let Ok(Envelope::Data(data)) = open_envelope(body) {
            let _ = products_from(data.clone());
            let _ = prices_from(data.clone());
            if let Ok(level) = stock_from("P", "110101", data.clone()) {
                let _ = (level.total(), level.shown_warehouse());
            }
            let _ = balances_from(data.clone());
            let _ = logistics_from("SO.1", data.clone());
            let _ = cancel_accepted_from(&data);
        }
    }

    /// Reads `body` as a token reply and as a login refusal.
    pub fn decode_token(body: &[u8], now_unix_secs: i64) {
        let _ = decode_token_reply(body, now_unix_secs);
        let _ = auth_error_message(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn data(body: Value) -> Value {
        match open_envelope(body.to_string().as_bytes()).unwrap() {
            Envelope::Data(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn requests_use_haiers_keys_and_leave_out_absent_codes() {
        let body = serde_json::to_value(ProductsRequest {
            customer_code: "8800633175",
            send_to_code: "8800633175",
            product_codes: None,
            supplier_code: "1001",
            search_type: SEARCH_TYPE,
            password: "pw",
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"customerCode":"8800633175","sendToCode":"8800633175","supplierCode":"1001",
                   "searchType":"PTJSH","passWord":"pw"})
        );
        let codes = vec!["A".to_owned()];
        let body = serde_json::to_value(PricesRequest {
            customer_code: "c",
            send_to_code: "s",
            product_codes: &codes,
            price_type: PRICE_TYPE,
            password: "pw",
        })
        .unwrap();
        assert_eq!(body["productCodes"], json!(["A"]));
        assert_eq!(body["priceType"], "PT");
        assert_eq!(body["passWord"], "pw");
        let body = serde_json::to_value(StockRequest {
            sales_code: "c",
            sender_code: "s",
            product_code: "P",
            county_code: "110101",
            source: STOCK_SOURCE,
            seller_password: "pw",
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"salesCode":"c","senderCode":"s","productCode":"P","countyCode":"110101",
                   "source":"JSH-B","sellerPassword":"pw"})
        );
        let body = serde_json::to_value(CancelOrderRequest {
            so_id: "SO1",
            cancel_time: "1700000000000".into(),
            cancel_reason: "customer",
            source_system: "HAIER-SYNC",
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"soId":"SO1","cancelTime":"1700000000000","cancelReason":"customer",
                   "sourceSystem":"HAIER-SYNC"})
        );
    }

    #[test]
    fn the_envelope_yields_data_or_a_refusal() {
        let ok = json!({"success":true,"code":0,"errCode":null,"infoMsgs":[],"warningMsgs":[],
                        "errorMsg":null,"data":[1],"error":null,"extra":"ignored"});
        assert_eq!(data(ok), json!([1]));
        let refused =
            json!({"success":false,"code":1,"errCode":"PASSWORD_ERROR","errorMsg":"密码错误","data":null});
        assert_eq!(
            open_envelope(refused.to_string().as_bytes()).unwrap(),
            Envelope::Refused {
                code: "PASSWORD_ERROR".into(),
                message: "密码错误".into()
            }
        );
        let throttled = json!({"success":false,"code":429,"errorMsg":"请求过于频繁"});
        assert_eq!(
            open_envelope(throttled.to_string().as_bytes()).unwrap(),
            Envelope::Throttled
        );
        // "false" as a string, no errCode: the code stands in.
        let refused = json!({"success":"false","code":"1","message":"no"});
        assert_eq!(
            open_envelope(refused.to_string().as_bytes()).unwrap(),
            Envelope::Refused {
                code: "1".into(),
                message: "no".into()
            }
        );
        assert_eq!(data(json!([{"a":1}])), json!([{"a":1}]));
        assert_eq!(data(json!({"success":true})), Value::Null);
        assert!(open_envelope(b"<html>502</html>").is_err());
        // A 200 that is neither the envelope nor a list is not data (an empty list read from
        // it would zero the stock).
        for broken in [
            json!({"a":1}),
            json!(true),
            json!(null),
            json!("ok"),
            json!(0),
            json!({}),
        ] {
            assert_eq!(
                open_envelope(broken.to_string().as_bytes()),
                Err(NOT_AN_ENVELOPE.to_owned()),
                "{broken}"
            );
        }
        assert!(open_envelope(br#"{"success":"maybe","data":[]}"#).is_err());
        assert!(open_envelope(br#"{"success":null,"data":[]}"#).is_err());
    }

    #[test]
    fn token_replies_take_token_or_access_token_and_either_expiry() {
        let now = 1_700_000_000;
        let r = decode_token_reply(
            json!({"token":"jwt","expires_in":3600,"expires_at":now + 3600})
                .to_string()
                .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "jwt");
        assert_eq!(r.lifetime, Some(Duration::from_secs(3600)));
        let r = decode_token_reply(
            json!({"access_token":"at","token_type":"bearer","refresh_token":"rt",
                   "expires_in":"43199","scope":"all"})
            .to_string()
            .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "at");
        assert_eq!(r.lifetime, Some(Duration::from_secs(43199)));
        let r = decode_token_reply(
            json!({"success":true,"data":{"token":"t2","expires_at":(now + 60) * 1000}})
                .to_string()
                .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "t2");
        assert_eq!(r.lifetime, Some(Duration::from_secs(60)));
        let r = decode_token_reply(br#"{"token":"t3"}"#, now).unwrap();
        assert_eq!(r.lifetime, None);
        assert!(decode_token_reply(br#"{"message":"no"}"#, now).is_err());
        assert!(!format!("{r:?}").contains("t3"));
    }

    #[test]
    fn auth_errors_give_the_most_specific_message() {
        assert_eq!(
            auth_error_message(br#"{"error":"invalid_grant","error_description":"Bad credentials"}"#),
            "Bad credentials"
        );
        assert_eq!(
            auth_error_message(br#"{"code":401,"message":"invalid client"}"#),
            "invalid client"
        );
        assert_eq!(auth_error_message(b" Unauthorized "), "Unauthorized");
    }

    #[test]
    fn products_decode_with_the_misspelt_keys() {
        let d = data(json!({"success":true,"data":[
            {"productCode":"GA0SZC00U","productModel":"BCD-470","productGroupNamd":"冰箱",
             "productBrandName":"海尔","productImageUrl":"http://i/1.jpg",
             "productLageUrls":["http://i/2.jpg","http://i/3.jpg"],"isSales":"1","noSalesReason":null,
             "somethingNew":{"x":1}},
            {"productCode":12345,"productModel":"X","isSales":"0","noSalesReason":"产品未投放",
             "productLageUrls":null},
            {"productModel":"no code"}
        ]}));
        let products = products_from(d).unwrap();
        assert_eq!(products.len(), 2);
        let p = &products[0];
        assert_eq!(p.code, "GA0SZC00U");
        assert_eq!(p.model, "BCD-470");
        assert_eq!(p.group_name.as_deref(), Some("冰箱"));
        assert_eq!(p.brand_name.as_deref(), Some("海尔"));
        assert_eq!(p.leaflet_urls, vec!["http://i/2.jpg", "http://i/3.jpg"]);
        assert!(p.is_sales);
        assert_eq!(p.no_sales_reason, None);
        let q = &products[1];
        assert_eq!(q.code, "12345");
        assert!(!q.is_sales);
        assert_eq!(q.no_sales_reason.as_deref(), Some("产品未投放"));
        assert!(q.leaflet_urls.is_empty());
        assert!(products_from(Value::Null).unwrap().is_empty());
    }

    #[test]
    fn prices_keep_decimals_from_numbers_and_strings() {
        let d = data(json!([
            {"productCode":"A","supplyPrice":1999.00,"invoicePrice":"1899.05","rebateRate":0.05,
             "rebateMoney":"0","stockRebatePolicy":2,"reason":"","isSales":1},
            {"productCode":"B","supplyPrice":null,"invoicePrice":null,"reason":"商品暂不可采","isSales":"0"},
            {"productCode":"C","supplyPrice":"","reason":"价格未生效","isSales":"1","stockRebatePolicy":"COM"},
            {"productCode":"D","supplyPrice":"100.10","stockRebatePolicy":0.0325}
        ]));
        let prices = prices_from(d).unwrap();
        assert_eq!(prices.len(), 4);
        assert_eq!(prices[0].supply_price, Some(dec("1999.00")));
        assert_eq!(prices[0].invoice_price, Some(dec("1899.05")));
        assert_eq!(prices[0].rebate_rate, Some(dec("0.05")));
        assert_eq!(prices[0].rebate_money, Some(Decimal::ZERO));
        assert_eq!(prices[0].stock_rebate_policy.as_deref(), Some("2"));
        assert_eq!(prices[0].reason, None);
        assert!(prices[0].is_sales);
        assert!(!prices[1].is_sales);
        assert_eq!(prices[1].supply_price, None);
        assert_eq!(prices[1].reason.as_deref(), Some("商品暂不可采"));
        assert_eq!(prices[2].supply_price, None);
        assert_eq!(prices[2].stock_rebate_policy.as_deref(), Some("COM"));
        assert_eq!(prices[3].supply_price, Some(dec("100.10")));
        assert_eq!(prices[3].stock_rebate_policy.as_deref(), Some("0.0325"));
        // Decimals never pass through a float: Haier's text and scale are kept.
        let raw = br#"[{"productCode":"E","supplyPrice":1999.00,"rebateRate":0.1,"rebateMoney":"0.30"}]"#;
        let Envelope::Data(d) = open_envelope(raw).unwrap() else {
            panic!("expected data")
        };
        let e = &prices_from(d).unwrap()[0];
        assert_eq!(e.supply_price.unwrap().to_string(), "1999.00");
        assert_eq!(e.rebate_rate.unwrap().to_string(), "0.1");
        assert_eq!(e.rebate_money.unwrap().to_string(), "0.30");
        assert!(prices_from(json!([{"productCode":"F","supplyPrice":"abc"}])).is_err());
    }

    #[test]
    fn stock_sums_string_numbers_and_takes_an_empty_list_as_none() {
        let d = data(json!({"success":true,"data":[
            {"secCode":"WH1","stock":"30","warehouseGrade":"0",
             "timelinessData":{"cutTime":"16:00","achieveUserOrderCut":"1","hour":"24","isTranfer":"0"}},
            {"secCode":"WH2","stock":12,"warehouseGrade":1},
            {"secCode":"WH3","stock":null}
        ]}));
        let level = stock_from("P", "110101", d).unwrap();
        assert_eq!(level.total(), 42);
        assert_eq!(level.warehouses[1].grade, "1");
        assert_eq!(level.warehouses[2].stock, 0);
        assert_eq!(level.warehouses[0].timeliness.as_ref().unwrap()["isTranfer"], "0");
        assert_eq!(level.shown_warehouse().unwrap().sec_code, "WH1");
        let empty = stock_from("P", "110101", data(json!({"success":true,"data":[]}))).unwrap();
        assert_eq!(empty.total(), 0);
        let null = stock_from("P", "110101", data(json!({"success":true,"data":null}))).unwrap();
        assert!(null.warehouses.is_empty());
        assert!(stock_from("P", "1", json!([{"stock":"lots"}])).is_err());
    }

    #[test]
    fn balances_decode_string_and_number_amounts() {
        let d = data(json!({"success":true,"data":[
            {"saleGroupCode":"SG1","saleGroupName":"冰箱","payerAccountCode":"PA1",
             "payerAccountName":"Main","payerAccountBalance":"12345.67"},
            {"saleGroupCode":"SG2","payerAccountBalance":89.1}
        ]}));
        let balances = balances_from(d).unwrap();
        assert_eq!(balances[0].balance, Some(dec("12345.67")));
        assert_eq!(balances[1].balance, Some(dec("89.1")));
        assert_eq!(balances[1].payer_account_name, None);
        // A single object is a list of one.
        assert_eq!(balances_from(json!({"saleGroupCode":"X"})).unwrap().len(), 1);
    }

    #[test]
    fn logistics_collect_states_from_all_three_lists() {
        let d = data(json!({"success":true,"data":{
            "getAllLogisticsInfoByOrderCode":[{"deliveryRecordCode":"D1",
                "getStoreOutboundLogisticsInfoResultDto":[{"logisticsCompanyName":"日日顺",
                    "expNo":"RRS1","orderStatus":"30","orderStatusName":"已出库",
                    "deliveryLogisticsDtos":[
                        {"stateCode":"OUTBOUND","stateTime":"2026-01-02 09:00:00","stateDescription":"出库"},
                        {"stateCode":"DELIVERED","stateTime":"2026-01-03 18:30:00","stateDescription":"签收"}]}]}],
            "getStockDeliveryLogisticsRecord":[{"logisticsInfo":[
                {"statusCode":"SIGNED","stateTime":"2026-01-03 08:00:00","stateDescription":"x"}]}],
            "getStockDeliveryLogisticsRecordThirdparty":[{"logisticsNoList":[{"logisticsNo":"SF1",
                "logisticsName":"顺丰","logisticsInfo":[
                    {"nodeName":"TRANSIT","context":"运输中","stateTime":"2026-01-02 12:00:00"}]}]}]
        }}));
        let l = logistics_from("SO.20190106.000003", d).unwrap();
        assert!(l.delivered);
        let latest = l.latest.unwrap();
        assert_eq!(latest.state_code, "DELIVERED");
        assert_eq!(latest.state_time, "2026-01-03 18:30:00");
        assert_eq!(l.company_name.as_deref(), Some("日日顺"));
        assert_eq!(l.express_no.as_deref(), Some("RRS1"));
        assert!(l.raw.get("getAllLogisticsInfoByOrderCode").is_some());

        let d = json!({"getAllLogisticsInfoByOrderCode":null,
            "getStockDeliveryLogisticsRecord":{"logisticsInfo":
                {"statusCode":"PICKED","stateTime":"2026-01-01 01:00:00"}},
            "getStockDeliveryLogisticsRecordThirdparty":[]});
        let l = logistics_from("SO1", d).unwrap();
        assert!(!l.delivered);
        assert_eq!(l.latest.unwrap().state_code, "PICKED");
        assert_eq!(l.company_name, None);

        let l = logistics_from("SO2", Value::Null).unwrap();
        assert!(l.latest.is_none() && !l.delivered);

        // Within one second, the delivery is the newest state, wherever it is listed.
        let d = json!({"getStockDeliveryLogisticsRecordThirdparty":[{"logisticsNoList":[{"logisticsInfo":[
                {"nodeName":"DELIVERED","context":"签收","stateTime":"2026-01-03 18:30:00"},
                {"nodeName":"IN_TRANSIT","context":"运输中","stateTime":"2026-01-03 18:30:00"}]}]}]});
        let l = logistics_from("SO3", d).unwrap();
        assert_eq!(l.latest.unwrap().state_code, "DELIVERED");
    }

    #[test]
    fn cancel_replies_are_lenient_booleans() {
        assert!(cancel_accepted_from(&json!(true)));
        assert!(!cancel_accepted_from(&json!(false)));
        assert!(!cancel_accepted_from(&json!("false")));
        assert!(cancel_accepted_from(&json!("1")));
        assert!(cancel_accepted_from(&Value::Null));
        assert!(cancel_accepted_from(&json!({"soId":"x"})));
    }

    #[test]
    fn broken_payloads_are_errors_not_empty_lists() {
        // A paged object or an item with neither key is no warehouse: it would zero the stock.
        let paged = json!({"records":[{"secCode":"WH1","stock":"3"}],"total":1});
        assert!(stock_from("P", "110101", paged)
            .unwrap_err()
            .contains("neither `secCode` nor `stock`"));
        assert!(stock_from("P", "110101", json!([{"qty":3}])).is_err());
        assert!(stock_from("P", "110101", json!({})).is_err());
        // A lone warehouse is a list of one.
        let one = stock_from("P", "110101", json!({"secCode":"WH1","stock":"3"})).unwrap();
        assert_eq!(one.total(), 3);
        // A total that does not fit is an error, not an overflow.
        let huge = json!([{"secCode":"A","stock":i64::MAX},{"secCode":"B","stock":1}]);
        assert!(stock_from("P", "110101", huge)
            .unwrap_err()
            .contains("adds up past"));
        // A list that is a string or a number is an error, not an empty list.
        assert_eq!(
            products_from(json!("[]")).unwrap_err(),
            "expected a list, got \"[]\""
        );
        assert!(prices_from(json!(3)).is_err());
    }

    #[test]
    fn a_token_lifetime_past_a_week_is_cut_to_a_week() {
        let now = 1_700_000_000;
        for body in [
            json!({"token":"t","expires_in":i64::MAX}),
            json!({"token":"t","expires_at":i64::MAX}),
            json!({"token":"t","expires_in":"99999999999"}),
        ] {
            let reply = decode_token_reply(body.to_string().as_bytes(), now).unwrap();
            assert_eq!(reply.lifetime, Some(MAX_TOKEN_LIFETIME), "{body}");
        }
        let reply = decode_token_reply(br#"{"token":"t","expires_at":i64_min}"#, now);
        assert!(reply.is_err(), "not JSON");
        let reply = decode_token_reply(
            json!({"token":"t","expires_at":i64::MIN}).to_string().as_bytes(),
            now,
        );
        assert_eq!(reply.unwrap().lifetime, Some(Duration::ZERO));
    }

    #[test]
    fn integers_accept_strings_numbers_and_integral_decimals() {
        assert_eq!(to_i64(&json!("30")).unwrap(), Some(30));
        assert_eq!(to_i64(&json!(" 7 ")).unwrap(), Some(7));
        assert_eq!(to_i64(&json!("30.0")).unwrap(), Some(30));
        assert_eq!(to_i64(&json!(30)).unwrap(), Some(30));
        assert_eq!(to_i64(&json!("")).unwrap(), None);
        assert!(to_i64(&json!("3.5")).is_err());
        assert_eq!(to_bool(&json!("true")), Some(true));
        assert_eq!(to_bool(&json!("0")), Some(false));
        assert_eq!(to_bool(&json!("maybe")), None);
    }
}

#[cfg(test)]
#[path = "wire_proptest.rs"]
mod wire_proptest;
