//! The openplat gateway's endpoints, at the root of the address: token (`/oauth2/auth` and
//! `/oauth2/token`), purchasable products, prices, stock, logistics by order, and balance, with
//! their batch caps, misspelt keys, string numbers and business errors. The shared gate (quota,
//! faults, token check) is in `server.rs`; the data comes from `catalog.rs` and `orders.rs`.

use super::auth::{self, lock};
use super::callbacks::beijing;
use super::catalog::{Catalog, PriceLookup, Product};
use super::fields::{value_text, Fields};
use super::orders::LogisticsNode;
use super::reply::{self, BizError};
use super::server::SimState;
use super::stats::{bump, Endpoint};
use crate::haier::paths::{
    BALANCE_PATH, LOGISTICS_PATH, PRICES_PATH, PRODUCTS_PATH, STOCK_PATH, TOKEN_FALLBACK_PATH, TOKEN_PATH,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// The most product codes one product or price call may carry.
pub const MAX_CODES_PER_CALL: usize = 20;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(TOKEN_FALLBACK_PATH, post(token))
        .route(PRODUCTS_PATH, post(products))
        .route(PRICES_PATH, post(prices))
        .route(STOCK_PATH, post(stock))
        .route(LOGISTICS_PATH, post(logistics))
        .route(BALANCE_PATH, post(balance))
}

async fn token(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::TokenOpenplat, &headers).await {
        return reply;
    }
    // JSON as the contract says; a form body is taken too.
    let params: Vec<(String, String)> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), value_text(v)?)))
            .collect(),
        _ => url::form_urlencoded::parse(&body).into_owned().collect(),
    };
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(grant) = param("grant_type") {
        if grant != "client_credentials" {
            return reply::json(
                axum::http::StatusCode::BAD_REQUEST,
                &json!({"code": 400, "message": "unsupported grant_type"}),
            );
        }
    }
    let creds = &sim.creds.openplat;
    if param("client_id") != Some(creds.client_id.as_str())
        || param("client_secret") != Some(creds.client_secret.expose())
    {
        bump(&sim.counters.unauthorized);
        return reply::openplat_bad_client();
    }
    let ttl = sim.token_ttl();
    let issued = Utc::now().timestamp();
    let expires_at = issued + ttl.as_secs() as i64;
    let token = auth::new_openplat_token(&creds.client_id, issued, expires_at);
    sim.openplat_tokens.insert(
        token.clone(),
        Instant::now(),
        ttl,
        sim.faults().revoke_tokens_every_ms,
    );
    reply::json(
        axum::http::StatusCode::OK,
        &json!({"token": token, "expires_in": ttl.as_secs(), "expires_at": expires_at}),
    )
}

async fn products(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::Products, &headers).await {
        return reply;
    }
    sim.answer(list_products(&sim, &body))
}

fn list_products(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let customer = f.require_text("customerCode")?;
    let supplier = f.require_text("supplierCode")?;
    let send_to = if supplier == "1001" {
        Some(f.require_text("sendToCode")?)
    } else {
        f.text("sendToCode")
    };
    let password = f.require_text("passWord")?;
    let codes = product_codes(&f, false)?;
    check_customer(
        sim,
        &customer,
        send_to.as_deref(),
        &password,
        sim.creds.openplat.password.expose(),
    )?;
    let Some(codes) = codes else {
        return Ok(reply::json_bytes(lock(&sim.listing).clone()));
    };
    let rows: Vec<ProductRow> = codes
        .iter()
        .map(|code| match sim.catalog.product(code) {
            Some(product) => ProductRow::of(product),
            None => ProductRow::unknown(code),
        })
        .collect();
    Ok(reply::ok(rows))
}

/// The full listing (every purchasable product), encoded once at start.
pub(crate) fn encode_listing(catalog: &Catalog) -> Bytes {
    let rows: Vec<ProductRow> = catalog.products_for_sale().iter().map(ProductRow::of).collect();
    Bytes::from(reply::ok_bytes(rows))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductRow<'a> {
    product_code: &'a str,
    product_model: Option<&'a str>,
    #[serde(rename = "productGroupNamd")]
    group_name: Option<&'a str>,
    product_brand_name: Option<&'a str>,
    product_image_url: Option<&'a str>,
    #[serde(rename = "productLageUrls")]
    leaflet_urls: &'a [String],
    is_sales: &'static str,
    no_sales_reason: Option<&'static str>,
}

impl<'a> ProductRow<'a> {
    fn of(p: &'a Product) -> Self {
        Self {
            product_code: &p.code,
            product_model: Some(&p.model),
            group_name: Some(p.group),
            product_brand_name: Some(p.brand),
            product_image_url: Some(&p.image_url),
            leaflet_urls: &p.leaflet_urls,
            is_sales: if p.for_sale { "1" } else { "0" },
            no_sales_reason: (!p.for_sale).then_some("产品未投放"),
        }
    }

    /// A code the catalog never heard of: not for sale, with nothing else known.
    fn unknown(code: &'a str) -> Self {
        Self {
            product_code: code,
            product_model: None,
            group_name: None,
            product_brand_name: None,
            product_image_url: None,
            leaflet_urls: &[],
            is_sales: "0",
            no_sales_reason: Some("产品不存在"),
        }
    }
}

async fn prices(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::Prices, &headers).await {
        return reply;
    }
    sim.answer(quote_prices(&sim, &body))
}

fn quote_prices(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let customer = f.require_text("customerCode")?;
    let send_to = f.require_text("sendToCode")?;
    let password = f.require_text("passWord")?;
    let codes = product_codes(&f, true)?.unwrap_or_default();
    check_customer(
        sim,
        &customer,
        Some(&send_to),
        &password,
        sim.creds.openplat.password.expose(),
    )?;
    let rows: Vec<PriceRow> = codes
        .iter()
        .map(|code| PriceRow::of(&sim.catalog, code))
        .collect();
    Ok(reply::ok(rows))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PriceRow<'a> {
    product_code: &'a str,
    supply_price: Option<Quirky>,
    invoice_price: Option<Quirky>,
    rebate_rate: Option<Quirky>,
    rebate_money: Option<Quirky>,
    stock_rebate_policy: Option<Quirky>,
    reason: Option<&'static str>,
    is_sales: &'static str,
}

impl<'a> PriceRow<'a> {
    fn of(catalog: &Catalog, code: &'a str) -> Self {
        let none = |reason, is_sales| PriceRow {
            product_code: code,
            supply_price: None,
            invoice_price: None,
            rebate_rate: None,
            rebate_money: None,
            stock_rebate_policy: None,
            reason: Some(reason),
            is_sales,
        };
        match catalog.price(code) {
            PriceLookup::NotForSale => none("商品暂不可采", "0"),
            PriceLookup::NoPrice => none("价格未生效", "1"),
            PriceLookup::InForce(price) => {
                let as_text = catalog.product(code).is_some_and(|p| p.decimals_as_strings);
                let q = |d: Decimal| {
                    Some(Quirky {
                        text: d.to_string(),
                        as_text,
                    })
                };
                PriceRow {
                    product_code: code,
                    supply_price: q(price.supply),
                    invoice_price: q(price.invoice),
                    rebate_rate: q(price.rebate_rate),
                    rebate_money: q(price.rebate_money),
                    stock_rebate_policy: q(Decimal::from(price.stock_rebate_policy)),
                    reason: None,
                    is_sales: "1",
                }
            }
        }
    }
}

/// A decimal sent as a JSON string or as a JSON number with its exact digits (`2399.00`),
/// whichever the product's quirk says.
struct Quirky {
    text: String,
    as_text: bool,
}

impl Serialize for Quirky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::Number::from_str(&self.text) {
            Ok(number) if !self.as_text => number.serialize(serializer),
            _ => serializer.serialize_str(&self.text),
        }
    }
}

async fn stock(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::Stock, &headers).await {
        return reply;
    }
    sim.answer(query_stock(&sim, &body))
}

fn query_stock(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let sales = f.require_text("salesCode")?;
    let sender = f.require_text("senderCode")?;
    let code = f.require_text("productCode")?;
    let county = f.require_text("countyCode")?;
    let password = f.require_text("sellerPassword")?;
    if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BizError::malformed("countyCode", "必须是6位行政区划代码"));
    }
    check_customer(
        sim,
        &sales,
        Some(&sender),
        &password,
        sim.creds.openplat.seller_password.expose(),
    )?;
    let rows: Vec<Value> = sim
        .catalog
        .stock(&code, &county)
        .into_iter()
        .map(|w| {
            json!({
                "secCode": w.sec_code,
                "stock": w.stock.to_string(),
                "warehouseGrade": w.grade.to_string(),
                "timelinessData": {
                    "cutTime": w.cut_time,
                    "achieveUserOrderCut": if w.achieve_user_order_cut { "1" } else { "0" },
                    "hour": w.hours.to_string(),
                    "isTranfer": if w.is_transfer { "1" } else { "0" },
                },
            })
        })
        .collect();
    Ok(reply::ok(rows))
}

async fn logistics(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::Logistics, &headers).await {
        return reply;
    }
    sim.answer(query_logistics(&sim, &body))
}

fn query_logistics(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let order_code = f.require_text("orderCode")?;
    let seller = f.require_text("sellerCode")?;
    let password = f.require_text("sellerPassword")?;
    check_customer(
        sim,
        &seller,
        None,
        &password,
        sim.creds.openplat.seller_password.expose(),
    )?;
    let delivery_filter = f.text("deliveryRecordCode");
    let nodes = lock(&sim.orders)
        .by_ext_order_no(&order_code)
        .and_then(|order| order.logistics(Instant::now(), sim.delivery_after()))
        .ok_or_else(|| BizError::order_not_found(&order_code))?;
    Ok(reply::ok(logistics_data(
        &order_code,
        &nodes,
        delivery_filter.as_deref(),
        sim.faults().logistics_time_shapes,
    )))
}

/// A node's `stateTime`: `yyyy-MM-dd HH:mm:ss` Beijing time; with `mixed`, the `k`-th node of a
/// list in the `k mod 4`-th of the shapes Haier uses (that text, the date alone, epoch ms as a
/// number, epoch ms as a string).
fn state_time(at: DateTime<Utc>, k: usize, mixed: bool) -> Value {
    let local = at.with_timezone(&beijing());
    match (mixed, k % 4) {
        (true, 1) => json!(local.format("%Y-%m-%d").to_string()),
        (true, 2) => json!(at.timestamp_millis()),
        (true, 3) => json!(at.timestamp_millis().to_string()),
        _ => json!(local.format("%Y-%m-%d %H:%M:%S").to_string()),
    }
}

/// The three lists of the logistics reply for one order. Every order has one warehouse
/// delivery; orders with an even sequence number also show a courier record.
fn logistics_data(
    ext_order_no: &str,
    nodes: &[LogisticsNode],
    delivery_filter: Option<&str>,
    mixed_times: bool,
) -> Value {
    let digits: String = ext_order_no.chars().filter(char::is_ascii_digit).collect();
    let delivery_record_code = format!("DR{digits}01");
    if delivery_filter.is_some_and(|wanted| wanted != delivery_record_code) {
        return json!({
            "getAllLogisticsInfoByOrderCode": [],
            "getStockDeliveryLogisticsRecord": [],
            "getStockDeliveryLogisticsRecordThirdparty": [],
        });
    }
    let last = nodes.last();
    let exp_no = format!("RRS{digits}");
    let states: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(k, n)| json!({"stateCode": n.code, "stateTime": state_time(n.at, k, mixed_times), "stateDescription": n.description}))
        .collect();
    let courier = digits.ends_with(['0', '2', '4', '6', '8']);
    let thirdparty = if courier {
        let info: Vec<Value> = nodes
            .iter()
            .enumerate()
            .rev()
            .map(|(k, n)| json!({"nodeName": n.name, "context": n.description, "stateTime": state_time(n.at, k, mixed_times)}))
            .collect();
        json!([{"logisticsNoList": [{"logisticsNo": format!("SF{digits}"), "logisticsName": "顺丰速运", "logisticsInfo": info}]}])
    } else {
        json!([])
    };
    json!({
        "getAllLogisticsInfoByOrderCode": [{
            "deliveryRecordCode": delivery_record_code,
            "getStoreOutboundLogisticsInfoResultDto": [{
                "logisticsCompanyName": "日日顺物流",
                "expNo": exp_no,
                "orderStatus": last.map(|n| n.code),
                "orderStatusName": last.map(|n| n.name),
                "deliveryLogisticsDtos": states,
            }],
        }],
        "getStockDeliveryLogisticsRecord": [],
        "getStockDeliveryLogisticsRecordThirdparty": thirdparty,
    })
}

async fn balance(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::Balance, &headers).await {
        return reply;
    }
    sim.answer(query_balance(&sim, &body))
}

fn query_balance(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let customer = f.require_text("customerCode")?;
    let password = f.require_text("customerPassword")?;
    check_customer(
        sim,
        &customer,
        None,
        &password,
        sim.creds.openplat.customer_password.expose(),
    )?;
    let yuan = |salt| Decimal::new(1_000_000 + sim.catalog.seeded_number(salt, 50_000_000) as i64, 2);
    Ok(reply::ok(json!([
        {
            "saleGroupCode": "HA01",
            "saleGroupName": "海尔智家-冰箱冷柜",
            "payerAccountCode": customer,
            "payerAccountName": format!("演示客户{customer}"),
            "payerAccountBalance": yuan(1).to_string(),
        },
        {
            "saleGroupCode": "HA02",
            "saleGroupName": "海尔智家-空调热水器",
            "payerAccountCode": customer,
            "payerAccountName": format!("演示客户{customer}"),
            "payerAccountBalance": serde_json::Number::from_str(&yuan(2).to_string()).ok(),
        },
    ])))
}

/// `productCodes`: at most 20 non-blank strings, in request order without repeats. Absent,
/// `null` or empty gives `None` (an error when `required`).
fn product_codes(f: &Fields, required: bool) -> Result<Option<Vec<String>>, BizError> {
    let Some(value) = f.value("productCodes") else {
        return if required {
            Err(BizError::missing("productCodes"))
        } else {
            Ok(None)
        };
    };
    let Value::Array(items) = value else {
        return Err(BizError::malformed("productCodes", "必须是数组"));
    };
    if items.is_empty() {
        return if required {
            Err(BizError::missing("productCodes"))
        } else {
            Ok(None)
        };
    }
    if items.len() > MAX_CODES_PER_CALL {
        return Err(BizError::too_many_codes(items.len()));
    }
    let mut codes: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let code = value_text(item).ok_or_else(|| BizError::malformed("productCodes", "含有空的商品编码"))?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(Some(codes))
}

/// The sold-to code, the ship-to code (when the call carries one) and the password must be the
/// configured ones; any mismatch is `PASSWORD_ERROR`.
fn check_customer(
    sim: &SimState,
    customer: &str,
    send_to: Option<&str>,
    password: &str,
    expected_password: &str,
) -> Result<(), BizError> {
    let creds = &sim.creds.openplat;
    if customer != creds.customer_code {
        return Err(BizError::credentials(format!(
            "客户编码不存在或无权访问: {customer}"
        )));
    }
    if send_to.is_some_and(|s| s != creds.send_to_code) {
        return Err(BizError::credentials("送达方编码与客户不匹配"));
    }
    if password != expected_password {
        return Err(BizError::credentials("密码错误"));
    }
    Ok(())
}
