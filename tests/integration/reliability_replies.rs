//! Issue 10: bad Haier replies, one table. Each row serves one broken (or merely odd) reply for
//! one operation — products, prices, stock, logistics, order push and cancel, both logins — and
//! states what the client must make of it: the value it reads, or the exact `HaierError`
//! variant and message, whether it is retryable, and how many requests reached the path (a
//! retryable error is tried `max_attempts` = 4 times, a final one once). Replies come from
//! wiremock, or from a tiny raw TCP server for what wiremock cannot send (a body shorter than its
//! `Content-Length`, a closed connection, an endless chunked body).

use crate::client::{
    cancel_path, client_for, configs, envelope, mount_openplat_token, mount_ylh_token, order, push_path,
    requests_to, ylh_token_path,
};
use haier_sync::haier::paths::{
    LOGISTICS_PATH, PRICES_PATH, PRODUCTS_PATH, STOCK_PATH, TOKEN_FALLBACK_PATH, TOKEN_PATH,
};
use haier_sync::haier::{CancelRequest, HaierClient, HaierError};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `max_attempts` of the test client (`client::configs`).
const ATTEMPTS: usize = 4;
/// The size of the oversized replies: far past any real listing.
const FIFTY_MB: usize = 50 * 1024 * 1024;

/// The call a row makes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Products,
    Prices,
    Stock,
    Logistics,
    Push,
    Cancel,
    /// YLH's express and serial numbers of one Haier order.
    Express,
    /// A stock call whose openplat login gets the row's reply (on both token URLs).
    OpenplatLogin,
    /// An order push whose YLH login gets the row's reply.
    YlhLogin,
}

impl Op {
    /// The path that serves the row's reply (and whose requests are counted).
    fn path(self) -> String {
        match self {
            Op::Products => PRODUCTS_PATH.to_owned(),
            Op::Prices => PRICES_PATH.to_owned(),
            Op::Stock => STOCK_PATH.to_owned(),
            Op::Logistics => LOGISTICS_PATH.to_owned(),
            Op::Push => push_path(),
            Op::Cancel => cancel_path(),
            Op::Express => haier_sync::haier::paths::express_numbers_path("-dev"),
            Op::OpenplatLogin => TOKEN_PATH.to_owned(),
            Op::YlhLogin => ylh_token_path(),
        }
    }

    /// Runs the call; a success reads as a short summary of what the client made of the reply.
    async fn call(self, client: &HaierClient) -> Result<String, HaierError> {
        let codes = ["P1".to_owned()];
        match self {
            Op::Products => client.query_products(Some(&codes)).await.map(|products| {
                let parts: Vec<String> = products
                    .iter()
                    .map(|p| format!("{}:{}:{}", p.code, p.model, p.is_sales))
                    .collect();
                format!("products [{}]", parts.join(", "))
            }),
            Op::Prices => client.query_prices(&codes).await.map(|prices| {
                let parts: Vec<String> = prices
                    .iter()
                    .map(|p| format!("{}:{:?}:{:?}", p.code, p.supply_price, p.invoice_price))
                    .collect();
                format!("prices [{}]", parts.join(", "))
            }),
            Op::Stock | Op::OpenplatLogin => client
                .query_stock("P1", "110101")
                .await
                .map(|level| format!("stock {} in {} warehouses", level.total(), level.warehouses.len())),
            Op::Logistics => client.query_logistics("SO.1").await.map(|l| {
                format!(
                    "logistics latest {:?} delivered {}",
                    l.latest.map(|e| (e.state_code, e.state_time)),
                    l.delivered
                )
            }),
            Op::Push | Op::YlhLogin => client
                .push_order(&order("SO-1"))
                .await
                .map(|()| "pushed".to_owned()),
            Op::Cancel => client
                .cancel_order(&CancelRequest {
                    so_id: "SO-1".into(),
                    cancel_time_ms: 1_700_000_000_000,
                    reason: "customer".into(),
                    source_system: None,
                })
                .await
                .map(|accepted| format!("cancel accepted {accepted}")),
            Op::Express => client
                .express_and_serials(&["SO.1".to_owned()])
                .await
                .map(|shipments| {
                    let parts: Vec<String> = shipments
                        .iter()
                        .map(|s| format!("{}:{}:{}", s.order_code, s.express_no, s.serial_numbers.join("+")))
                        .collect();
                    format!("express [{}]", parts.join(", "))
                }),
        }
    }
}

/// A reply as served.
enum Reply {
    Mock(ResponseTemplate),
    /// Bytes written as they are on every connection, which is then closed.
    Raw(&'static [u8]),
    /// A `200` with a chunked body that goes on for `FIFTY_MB`.
    EndlessChunks,
}

/// What the client must make of the reply.
enum Expect {
    /// The call succeeds, reading the reply as this summary.
    Read(&'static str),
    /// The call fails with this variant and exactly this message.
    Error {
        variant: &'static str,
        message: &'static str,
        retryable: bool,
    },
    /// As `Error`, for messages that carry text from the HTTP stack: the message starts so.
    ErrorStarting {
        variant: &'static str,
        message: &'static str,
        retryable: bool,
    },
}

struct Row {
    name: &'static str,
    op: Op,
    reply: Reply,
    expect: Expect,
}

fn variant(error: &HaierError) -> &'static str {
    match error {
        HaierError::AuthRefused { .. } => "AuthRefused",
        HaierError::Unauthorized { .. } => "Unauthorized",
        HaierError::RateLimited { .. } => "RateLimited",
        HaierError::Http { .. } => "Http",
        HaierError::Timeout { .. } => "Timeout",
        HaierError::Connect { .. } => "Connect",
        HaierError::Business { .. } => "Business",
        HaierError::OrderNotFound { .. } => "OrderNotFound",
        HaierError::DuplicateSoId { .. } => "DuplicateSoId",
        HaierError::RefusedAfterUnseen { .. } => "RefusedAfterUnseen",
        HaierError::Decode { .. } => "Decode",
        HaierError::BreakerOpen { .. } => "BreakerOpen",
        HaierError::InvalidRequest { .. } => "InvalidRequest",
        HaierError::Config { .. } => "Config",
    }
}

fn json_200(body: Value) -> Reply {
    Reply::Mock(ResponseTemplate::new(200).set_body_json(body))
}

fn raw_200(body: &'static [u8]) -> Reply {
    Reply::Mock(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
}

fn data_200(data: Value) -> Reply {
    json_200(envelope(data))
}

fn status(code: u16, body: &'static str, mime: &str) -> Reply {
    Reply::Mock(ResponseTemplate::new(code).set_body_raw(body, mime))
}

fn read(summary: &'static str) -> Expect {
    Expect::Read(summary)
}

fn final_error(variant: &'static str, message: &'static str) -> Expect {
    Expect::Error {
        variant,
        message,
        retryable: false,
    }
}

fn retried_error(variant: &'static str, message: &'static str) -> Expect {
    Expect::Error {
        variant,
        message,
        retryable: true,
    }
}

const HTML_PAGE: &str = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
                         <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

/// A 50 MB envelope of warehouses: valid JSON that, read whole, would say 1 unit per warehouse.
fn fifty_mb_of_warehouses() -> Vec<u8> {
    let item = br#"{"secCode":"WH","stock":"1","warehouseGrade":"0"},"#;
    let mut body = Vec::with_capacity(FIFTY_MB + 100);
    body.extend_from_slice(br#"{"success":true,"code":0,"data":["#);
    while body.len() < FIFTY_MB {
        body.extend_from_slice(item);
    }
    body.extend_from_slice(br#"{"secCode":"WH","stock":"1"}]}"#);
    body
}

fn rows() -> Vec<Row> {
    let row = |name, op, reply, expect| Row {
        name,
        op,
        reply,
        expect,
    };
    vec![
        // ---- not JSON, or not the whole of it ----
        row(
            "truncated JSON",
            Op::Products,
            raw_200(br#"{"success":true,"code":0,"data":[{"productCode":"P1","productMod"#),
            final_error("Decode", "openplat products: unexpected reply: the reply is not JSON: EOF while parsing a string at line 1 column 64; body: {\"success\":true,\"code\":0,\"data\":[{\"productCode\":\"P1\",\"productMod"),
        ),
        row(
            "an HTML error page with status 200",
            Op::Products,
            status(200, HTML_PAGE, "text/html"),
            final_error("Decode", "openplat products: unexpected reply: the reply is not JSON: expected value at line 1 column 1; body: <!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"),
        ),
        row(
            "an HTML error page with status 502",
            Op::Prices,
            status(502, HTML_PAGE, "text/html"),
            retried_error("Http", "openplat prices: HTTP 502: <!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"),
        ),
        row(
            "an HTML 404 page",
            Op::Stock,
            status(404, "<html><body>Not Found</body></html>", "text/html"),
            final_error("Http", "openplat stock: HTTP 404: <html><body>Not Found</body></html>"),
        ),
        row(
            "an empty 200",
            Op::Stock,
            raw_200(b""),
            final_error("Decode", "openplat stock: unexpected reply: the reply is not JSON: EOF while parsing a value at line 1 column 0; body: "),
        ),
        row(
            "a 204 No Content",
            Op::Push,
            Reply::Mock(ResponseTemplate::new(204)),
            final_error("Decode", "ylh order_push: unexpected reply: the reply is not JSON: EOF while parsing a value at line 1 column 0; body: "),
        ),
        row(
            "bad UTF-8 inside a string",
            Op::Products,
            raw_200(b"{\"success\":true,\"data\":[{\"productCode\":\"P1\",\"productModel\":\"BCD-\xff\xfe\"}]}"),
            final_error("Decode", "openplat products: unexpected reply: the reply is not JSON: invalid unicode code point at line 1 column 65; body: {\"success\":true,\"data\":[{\"productCode\":\"P1\",\"productModel\":\"BCD-\u{fffd}\u{fffd}\"}]}"),
        ),
        row(
            "UTF-16 instead of UTF-8",
            Op::Stock,
            raw_200(b"\xff\xfe{\x00}\x00"),
            final_error("Decode", "openplat stock: unexpected reply: the reply is not JSON: expected value at line 1 column 1; body: \u{fffd}\u{fffd}{\u{0}}\u{0}"),
        ),
        row(
            "JSON followed by garbage",
            Op::Stock,
            raw_200(br#"{"success":true,"data":[]} <!-- cache hit -->"#),
            final_error("Decode", "openplat stock: unexpected reply: the reply is not JSON: trailing characters at line 1 column 28; body: {\"success\":true,\"data\":[]} <!-- cache hit -->"),
        ),
        row(
            "gzip announced, plain JSON sent",
            Op::Stock,
            Reply::Mock(
                ResponseTemplate::new(200)
                    .insert_header("content-encoding", "gzip")
                    .set_body_json(envelope(json!([{"secCode":"WH1","stock":"3"}]))),
            ),
            Expect::ErrorStarting {
                variant: "Decode",
                message: "openplat stock: unexpected reply: the reply body cannot be decoded as its Content-Encoding says: ",
                retryable: false,
            },
        ),
        // ---- a 200 that is neither the envelope nor a list ----
        row(
            "a 200 object with no `success`",
            Op::Stock,
            json_200(json!({"status":"ok","result":[{"secCode":"WH1","stock":"3"}]})),
            final_error("Decode", "openplat stock: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: {\"result\":[{\"secCode\":\"WH1\",\"stock\":\"3\"}],\"status\":\"ok\"}"),
        ),
        row(
            "an empty object",
            Op::Push,
            json_200(json!({})),
            final_error("Decode", "ylh order_push: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: {}"),
        ),
        row(
            "JSON null",
            Op::Products,
            raw_200(b"null"),
            final_error("Decode", "openplat products: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: null"),
        ),
        row(
            "a bare string",
            Op::Cancel,
            raw_200(br#""OK""#),
            final_error("Decode", "ylh order_cancel: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: \"OK\""),
        ),
        row(
            "a bare number",
            Op::Prices,
            raw_200(b"0"),
            final_error("Decode", "openplat prices: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: 0"),
        ),
        row(
            "a bare `true` to a push",
            Op::Push,
            raw_200(b"true"),
            final_error("Decode", "ylh order_push: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: true"),
        ),
        row(
            "`success` that is neither true nor false",
            Op::Stock,
            json_200(json!({"success":"maybe","data":[{"secCode":"WH1","stock":"3"}]})),
            final_error("Decode", "openplat stock: unexpected reply: `success` is neither true nor false: \"maybe\"; body: {\"data\":[{\"secCode\":\"WH1\",\"stock\":\"3\"}],\"success\":\"maybe\"}"),
        ),
        row(
            "`success:null`",
            Op::Push,
            json_200(json!({"success":null,"code":0,"data":true})),
            final_error("Decode", "ylh order_push: unexpected reply: `success` is neither true nor false: null; body: {\"code\":0,\"data\":true,\"success\":null}"),
        ),
        // ---- success:false with odd codes ----
        row(
            "success:false with an errCode",
            Op::Prices,
            json_200(json!({"success":false,"code":1,"errCode":"PASSWORD_ERROR","errorMsg":"密码错误","data":null})),
            final_error("Business", "openplat prices: Haier refused: PASSWORD_ERROR: 密码错误"),
        ),
        row(
            "success:false with code 500 and no errCode",
            Op::Stock,
            json_200(json!({"success":false,"code":500,"errCode":null,"errorMsg":"系统异常"})),
            final_error("Business", "openplat stock: Haier refused: 500: 系统异常"),
        ),
        row(
            "success:false with no code and no message",
            Op::Products,
            json_200(json!({"success":false})),
            final_error("Business", "openplat products: Haier refused: UNKNOWN: "),
        ),
        row(
            "success:\"false\" as a string, message under `msg`",
            Op::Logistics,
            json_200(json!({"success":"false","code":"ORDER_NOT_FOUND","msg":"订单不存在"})),
            final_error("OrderNotFound", "openplat logistics: Haier refused: ORDER_NOT_FOUND: 订单不存在"),
        ),
        row(
            "success:0 with an object as errCode",
            Op::Stock,
            json_200(json!({"success":0,"errCode":{"k":1},"errorMsg":"?"})),
            final_error("Business", "openplat stock: Haier refused: {\"k\":1}: ?"),
        ),
        row(
            "success:true but an errCode",
            Op::Stock,
            json_200(json!({"success":true,"errCode":"W001","data":[{"secCode":"WH1","stock":"3"}]})),
            read("stock 3 in 1 warehouses"),
        ),
        row(
            "success:false with code 429 on a 200",
            Op::Stock,
            Reply::Mock(
                ResponseTemplate::new(200)
                    .insert_header("retry-after", "0")
                    .set_body_json(json!({"success":false,"code":429,"errorMsg":"请求过于频繁"})),
            ),
            retried_error("RateLimited", "openplat stock: rate limited (retry after 0ns)"),
        ),
        row(
            "a repeated soId refused with no errCode, only 已存在",
            Op::Push,
            json_200(json!({"success":false,"code":1,"errCode":null,"errorMsg":"子订单号已存在"})),
            final_error("DuplicateSoId", "order SO-1 was already received by Haier (DUPLICATE_SOID)"),
        ),
        row(
            "a repeated soId refused with no errCode, only 重复推送",
            Op::Push,
            json_200(json!({"success":false,"code":"1","errorMsg":"重复推送"})),
            final_error("DuplicateSoId", "order SO-1 was already received by Haier (DUPLICATE_SOID)"),
        ),
        row(
            "a push refused for something else",
            Op::Push,
            json_200(json!({"success":false,"code":1,"errCode":"PARAM_MISSING","errorMsg":"缺少参数: consigneeName"})),
            final_error("Business", "ylh order_push: Haier refused: PARAM_MISSING: 缺少参数: consigneeName"),
        ),
        // ---- null data, missing keys, wrong types ----
        row(
            "success:true with data null",
            Op::Stock,
            json_200(json!({"success":true,"code":0,"data":null})),
            read("stock 0 in 0 warehouses"),
        ),
        row(
            "success:true and no data key to a push",
            Op::Push,
            json_200(json!({"success":true,"code":0})),
            read("pushed"),
        ),
        row(
            "data:false to a push",
            Op::Push,
            data_200(json!(false)),
            read("pushed"),
        ),
        row(
            "stock data as an object of another shape",
            Op::Stock,
            data_200(json!({"records":[{"secCode":"WH1","stock":"3"}],"total":1})),
            final_error("Decode", "openplat stock: unexpected reply: a warehouse has neither `secCode` nor `stock`: {\"records\":[{\"secCode\":\"WH1\",\"stock\":\"3\"}],\"total\":1}; body: {\"code\":0,\"data\":{\"records\":[{\"secCode\":\"WH1\",\"stock\":\"3\"}],\"total\":1},\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "stock items with neither key",
            Op::Stock,
            data_200(json!([{"warehouse":"WH1","qty":3}])),
            final_error("Decode", "openplat stock: unexpected reply: a warehouse has neither `secCode` nor `stock`: {\"qty\":3,\"warehouse\":\"WH1\"}; body: {\"code\":0,\"data\":[{\"qty\":3,\"warehouse\":\"WH1\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "stock data as a JSON string holding the list",
            Op::Stock,
            data_200(json!("[{\"secCode\":\"WH1\",\"stock\":\"3\"}]")),
            final_error("Decode", "openplat stock: unexpected reply: expected a list, got \"[{\\\"secCode\\\":\\\"WH1\\\",\\\"stock\\\":\\\"3\\\"}]\"; body: {\"code\":0,\"data\":\"[{\\\"secCode\\\":\\\"WH1\\\",\\\"stock\\\":\\\"3\\\"}]\",\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "stock as words",
            Op::Stock,
            data_200(json!([{"secCode":"WH1","stock":"lots"}])),
            final_error("Decode", "openplat stock: unexpected reply: expected a decimal, got \"lots\"; body: {\"code\":0,\"data\":[{\"secCode\":\"WH1\",\"stock\":\"lots\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "stock as a fraction",
            Op::Stock,
            data_200(json!([{"secCode":"WH1","stock":"2.5"}])),
            final_error("Decode", "openplat stock: unexpected reply: expected an integer, got 2.5; body: {\"code\":0,\"data\":[{\"secCode\":\"WH1\",\"stock\":\"2.5\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "stock past i64",
            Op::Stock,
            data_200(json!([{"secCode":"WH1","stock":"99999999999999999999"}])),
            final_error("Decode", "openplat stock: unexpected reply: integer out of range: 99999999999999999999; body: {\"code\":0,\"data\":[{\"secCode\":\"WH1\",\"stock\":\"99999999999999999999\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "two warehouses whose sum overflows",
            Op::Stock,
            data_200(json!([{"secCode":"WH1","stock":i64::MAX},{"secCode":"WH2","stock":"1"}])),
            final_error("Decode", "openplat stock: unexpected reply: the stock of the warehouses adds up past 9223372036854775807; body: {\"code\":0,\"data\":[{\"secCode\":\"WH1\",\"stock\":9223372036854775807},{\"secCode\":\"WH2\",\"stock\":\"1\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "numbers as strings and strings as numbers in stock",
            Op::Stock,
            data_200(json!([{"secCode":1001,"stock":"30","warehouseGrade":0},{"secCode":"WH2","stock":12.0}])),
            read("stock 42 in 2 warehouses"),
        ),
        row(
            "stock items as numbers",
            Op::Stock,
            data_200(json!([30, 12])),
            final_error("Decode", "openplat stock: unexpected reply: invalid type: number, expected struct WarehouseWire; body: {\"code\":0,\"data\":[30,12],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "a price as words",
            Op::Prices,
            data_200(json!([{"productCode":"P1","supplyPrice":"面议"}])),
            final_error("Decode", "openplat prices: unexpected reply: expected a decimal, got \"面议\"; body: {\"code\":0,\"data\":[{\"productCode\":\"P1\",\"supplyPrice\":\"面议\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "a price as an object",
            Op::Prices,
            data_200(json!([{"productCode":"P1","supplyPrice":{"amount":1999}}])),
            final_error("Decode", "openplat prices: unexpected reply: expected a decimal, got {\"amount\":1999}; body: {\"code\":0,\"data\":[{\"productCode\":\"P1\",\"supplyPrice\":{\"amount\":1999}}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "a price as a boolean",
            Op::Prices,
            data_200(json!([{"productCode":"P1","supplyPrice":true}])),
            final_error("Decode", "openplat prices: unexpected reply: expected a decimal, got true; body: {\"code\":0,\"data\":[{\"productCode\":\"P1\",\"supplyPrice\":true}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "a price past any decimal",
            Op::Prices,
            data_200(json!([{"productCode":"P1","supplyPrice":"1e400"}])),
            final_error("Decode", "openplat prices: unexpected reply: expected a decimal, got \"1e400\"; body: {\"code\":0,\"data\":[{\"productCode\":\"P1\",\"supplyPrice\":\"1e400\"}],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "prices as strings, a code as a number, isSales as a number",
            Op::Prices,
            data_200(json!([{"productCode":1001,"supplyPrice":"1999.00","invoicePrice":1899.05,"isSales":1}])),
            read("prices [1001:Some(1999.00):Some(1899.05)]"),
        ),
        row(
            "products with the keys missing",
            Op::Products,
            data_200(json!([{"productModel":"BCD-470"},{"productCode":"P1"}])),
            read("products [P1::true]"),
        ),
        row(
            "products as numbers",
            Op::Products,
            data_200(json!([1, 2])),
            final_error("Decode", "openplat products: unexpected reply: invalid type: number, expected struct ProductWire; body: {\"code\":0,\"data\":[1,2],\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "a bare array of products",
            Op::Products,
            json_200(json!([{"productCode":"P1","productModel":"BCD-470","isSales":"0"}])),
            read("products [P1:BCD-470:false]"),
        ),
        row(
            "logistics lists as a string",
            Op::Logistics,
            data_200(json!({"getAllLogisticsInfoByOrderCode":"none"})),
            final_error("Decode", "openplat logistics: unexpected reply: expected a list, got \"none\"; body: {\"code\":0,\"data\":{\"getAllLogisticsInfoByOrderCode\":\"none\"},\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "logistics as a bare list",
            Op::Logistics,
            json_200(json!([])),
            final_error("Decode", "openplat logistics: unexpected reply: expected the logistics object, got []; body: []"),
        ),
        row(
            "logistics data without the envelope",
            Op::Logistics,
            json_200(json!({"getAllLogisticsInfoByOrderCode":[]})),
            final_error("Decode", "openplat logistics: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: {\"getAllLogisticsInfoByOrderCode\":[]}"),
        ),
        row(
            "logistics in a paged wrapper",
            Op::Logistics,
            data_200(json!({"records":[],"total":0})),
            final_error("Decode", "openplat logistics: unexpected reply: the logistics reply has none of getAllLogisticsInfoByOrderCode, getStockDeliveryLogisticsRecord, getStockDeliveryLogisticsRecordThirdparty; body: {\"code\":0,\"data\":{\"records\":[],\"total\":0},\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "express numbers as one record without the envelope",
            Op::Express,
            json_200(json!({"orderCode":"SO.1","logisticsList":[]})),
            final_error("Decode", "ylh express_numbers: unexpected reply: the reply is neither Haier's envelope (no `success`) nor a list; body: {\"logisticsList\":[],\"orderCode\":\"SO.1\"}"),
        ),
        row(
            "express numbers as a bare list, numbers as strings",
            Op::Express,
            json_200(json!([{"orderCode":"SO.1","deliveryRecordCode":7,"logisticsList":[{"expNo":12345,"barCodes":["SN1"," SN2 "]}]}])),
            read("express [SO.1:12345:SN1+SN2]"),
        ),
        row(
            "express numbers as a string",
            Op::Express,
            data_200(json!("none")),
            final_error("Decode", "ylh express_numbers: unexpected reply: expected a list, got \"none\"; body: {\"code\":0,\"data\":\"none\",\"errCode\":null,\"error\":null,\"errorMsg\":null,\"infoMsgs\":[],\"success\":true,\"warningMsgs\":[]}"),
        ),
        row(
            "logistics with an epoch-millisecond time and a single object for a list",
            Op::Logistics,
            data_200(json!({"getStockDeliveryLogisticsRecord":{"logisticsInfo":{"statusCode":"DELIVERED","stateTime":1767225600000_i64}}})),
            read("logistics latest Some((\"DELIVERED\", \"2026-01-01 08:00:00\")) delivered true"),
        ),
        row(
            "cancel answered with an unreadable boolean",
            Op::Cancel,
            data_200(json!("maybe")),
            read("cancel accepted true"),
        ),
        row(
            "cancel answered \"false\"",
            Op::Cancel,
            data_200(json!("false")),
            read("cancel accepted false"),
        ),
        // ---- statuses ----
        row(
            "a 302 to a page that says success",
            Op::Push,
            Reply::Mock(ResponseTemplate::new(302).insert_header("location", "/elsewhere")),
            final_error("Http", "ylh order_push: HTTP 302: "),
        ),
        row(
            "a 307 redirect",
            Op::Stock,
            Reply::Mock(ResponseTemplate::new(307).insert_header("location", "/elsewhere")),
            final_error("Http", "openplat stock: HTTP 307: "),
        ),
        row(
            "a 500 with a JSON envelope",
            Op::Cancel,
            Reply::Mock(ResponseTemplate::new(500).set_body_json(json!({"success":false,"code":500,"errorMsg":"内部错误"}))),
            retried_error("Http", "ylh order_cancel: HTTP 500: {\"code\":500,\"errorMsg\":\"内部错误\",\"success\":false}"),
        ),
        row(
            "a 418",
            Op::Products,
            status(418, "I'm a teapot", "text/plain"),
            final_error("Http", "openplat products: HTTP 418: I'm a teapot"),
        ),
        // ---- size ----
        row(
            "a 50 MB body with a Content-Length",
            Op::Stock,
            Reply::Mock(ResponseTemplate::new(200).set_body_raw(fifty_mb_of_warehouses(), "application/json")),
            final_error("Decode", "openplat stock: unexpected reply: the reply is larger than 16777216 bytes; not read"),
        ),
        row(
            "a 50 MB chunked body",
            Op::Stock,
            Reply::EndlessChunks,
            final_error("Decode", "openplat stock: unexpected reply: the reply is larger than 16777216 bytes; not read"),
        ),
        // ---- broken transfers (raw server) ----
        row(
            "a body shorter than its Content-Length",
            Op::Stock,
            Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"success\":true,\"data\":[{\"secCode\""),
            Expect::ErrorStarting {
                variant: "Connect",
                message: "openplat stock: connection failed: error decoding response body",
                retryable: true,
            },
        ),
        row(
            "the connection closed without a reply",
            Op::Stock,
            Reply::Raw(b""),
            Expect::ErrorStarting {
                variant: "Connect",
                message: "openplat stock: connection failed: error sending request",
                retryable: true,
            },
        ),
        row(
            "a status line that is not HTTP",
            Op::Products,
            Reply::Raw(b"SSH-2.0-OpenSSH_9.6\r\n"),
            Expect::ErrorStarting {
                variant: "Connect",
                message: "openplat products: connection failed: error sending request",
                retryable: true,
            },
        ),
        // ---- logins ----
        row(
            "an openplat login answered with HTML",
            Op::OpenplatLogin,
            status(200, "<html>login</html>", "text/html"),
            final_error("Decode", "openplat token_openplat: unexpected reply: the token reply is not JSON: expected value at line 1 column 1"),
        ),
        row(
            "an openplat login with an empty token",
            Op::OpenplatLogin,
            json_200(json!({"token":"","expires_in":3600})),
            final_error("Decode", "openplat token_openplat: unexpected reply: the token reply holds no `token` or `access_token`"),
        ),
        row(
            "an openplat login with a numeric token",
            Op::OpenplatLogin,
            json_200(json!({"token":12345,"expires_in":3600})),
            final_error("Decode", "openplat token_openplat: unexpected reply: the token reply holds no `token` or `access_token`"),
        ),
        row(
            "an openplat login with a token holding a newline",
            Op::OpenplatLogin,
            json_200(json!({"token":"abc\r\nX-Evil: 1","expires_in":3600})),
            final_error("Decode", "openplat token_openplat: unexpected reply: the issued token is not a valid header value"),
        ),
        row(
            "an openplat login refused with a 401",
            Op::OpenplatLogin,
            Reply::Mock(ResponseTemplate::new(401).set_body_json(json!({"code":401,"message":"invalid client"}))),
            final_error("AuthRefused", "openplat login refused: invalid client"),
        ),
        row(
            "a YLH login answered 503 with HTML",
            Op::YlhLogin,
            status(503, "<html>Service Unavailable</html>", "text/html"),
            retried_error("Http", "ylh token_ylh: HTTP 503: <html>Service Unavailable</html>"),
        ),
        row(
            "a YLH login that says invalid_grant with a 200",
            Op::YlhLogin,
            json_200(json!({"error":"invalid_grant","error_description":"Bad credentials"})),
            final_error("Decode", "ylh token_ylh: unexpected reply: the token reply holds no `token` or `access_token`"),
        ),
        row(
            "a YLH login whose token lives for ever",
            Op::YlhLogin,
            json_200(json!({"access_token":"at-1","token_type":"bearer","expires_in":i64::MAX})),
            read("pushed"),
        ),
        row(
            "a YLH login whose expiry is text",
            Op::YlhLogin,
            json_200(json!({"access_token":"at-1","token_type":"bearer","expires_in":"soon","expires_at":"9e99"})),
            read("pushed"),
        ),
    ]
}

/// A tiny HTTP/1.1 server for replies wiremock cannot send: it reads each request and answers
/// with `reply` (or an endless chunked body), then closes the connection.
async fn start_raw_server(reply: Option<&'static [u8]>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut socket).await;
                match reply {
                    Some(bytes) => {
                        let _ = socket.write_all(bytes).await;
                    }
                    None => {
                        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        if socket.write_all(head).await.is_err() {
                            return;
                        }
                        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                        let mut sent = 0;
                        while sent < FIFTY_MB {
                            if socket.write_all(chunk.as_bytes()).await.is_err() {
                                return;
                            }
                            sent += 0x10000;
                        }
                        let _ = socket.write_all(b"0\r\n\r\n").await;
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// Reads one request: the head, then as many body bytes as its `Content-Length` says.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = socket.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if seen.len() >= end + 4 + length {
            return;
        }
    }
}

/// Serves the row's reply and makes its call. Returns the outcome and the requests that
/// reached the row's path.
async fn try_row(row: &Row) -> (Result<String, HaierError>, usize) {
    let server = MockServer::start().await;
    match row.op {
        Op::OpenplatLogin => {}
        Op::YlhLogin => {}
        Op::Push | Op::Cancel | Op::Express => mount_ylh_token(&server).await,
        _ => mount_openplat_token(&server).await,
    }
    // Login rows: the business call would succeed once logged in.
    if row.op == Op::OpenplatLogin {
        Mock::given(path(STOCK_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(envelope(json!([]))))
            .mount(&server)
            .await;
    }
    if row.op == Op::YlhLogin {
        Mock::given(path(push_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(envelope(json!(true))))
            .mount(&server)
            .await;
    }
    let served_paths: Vec<String> = match row.op {
        // Openplat falls back from /oauth2/auth to /oauth2/token: both get the reply.
        Op::OpenplatLogin => vec![TOKEN_PATH.to_owned(), TOKEN_FALLBACK_PATH.to_owned()],
        op => vec![op.path()],
    };
    match &row.reply {
        Reply::Mock(template) => {
            for served in &served_paths {
                Mock::given(path(served.as_str()))
                    .respond_with(template.clone())
                    .mount(&server)
                    .await;
            }
            let client = client_for(&server);
            let result = row.op.call(&client).await;
            let mut requests = 0;
            for served in &served_paths {
                requests += requests_to(&server, served).await;
            }
            (result, requests)
        }
        raw => {
            // Business calls go to the raw server; the login stays with wiremock.
            let bytes = match raw {
                Reply::Raw(bytes) => Some(*bytes),
                _ => None,
            };
            let base = start_raw_server(bytes).await;
            let (mut haier, ylh) = configs(&base, &server.uri());
            haier.token_url = Url::parse(&server.uri()).unwrap().join(TOKEN_PATH).unwrap();
            let client = HaierClient::new(&haier, &ylh).unwrap();
            let result = row.op.call(&client).await;
            let requests = client.stats().operation(match row.op {
                Op::Products => "products",
                _ => "stock",
            });
            (result, requests.requests as usize)
        }
    }
}

/// Issue 10: at least 40 bad replies, each read as the table says: never a panic, never an
/// empty list from a broken reply, never a 50 MB body held in memory, never a redirect taken
/// for an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_haier_reply_in_the_table_gives_its_exact_error_or_reading() {
    let rows = rows();
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    let mut wrong = Vec::new();
    for row in &rows {
        let outcome = tokio::time::timeout(Duration::from_secs(60), try_row(row)).await;
        let Ok((result, requests)) = outcome else {
            wrong.push(format!("{}: no outcome within 60 s", row.name));
            continue;
        };
        let problem = match (&row.expect, &result) {
            (Expect::Read(summary), Ok(got)) if got == summary && requests == 1 => None,
            (Expect::Read(summary), _) => Some(format!(
                "expected Ok({summary:?}) in 1 request, got {result:?} in {requests}"
            )),
            (
                Expect::Error {
                    variant: v,
                    message,
                    retryable,
                }
                | Expect::ErrorStarting {
                    variant: v,
                    message,
                    retryable,
                },
                Err(error),
            ) => {
                let text = error.to_string();
                let exact = matches!(row.expect, Expect::Error { .. });
                let text_ok = if exact {
                    text == *message
                } else {
                    text.starts_with(message)
                };
                // A 429 is waited out up to 50 times plus the first try; other retryable
                // errors use up the attempts.
                let expected_requests = match (variant(error), retryable) {
                    ("RateLimited", _) => 51,
                    (_, true) => ATTEMPTS,
                    (_, false) => 1,
                };
                // An openplat login is tried at both token URLs.
                let expected_requests = if row.op == Op::OpenplatLogin {
                    expected_requests * 2
                } else {
                    expected_requests
                };
                if variant(error) == *v
                    && text_ok
                    && error.is_retryable() == *retryable
                    && requests == expected_requests
                {
                    None
                } else {
                    Some(format!(
                        "expected {v} {message:?} (retryable {retryable}, {expected_requests} requests), \
                         got {} {text:?} (retryable {}, {requests} requests)",
                        variant(error),
                        error.is_retryable()
                    ))
                }
            }
            (_, Ok(got)) => Some(format!("expected an error, got Ok({got:?})")),
        };
        if let Some(problem) = problem {
            wrong.push(format!("{}: {problem}", row.name));
        }
    }
    eprintln!(
        "{} bad replies tried, {} as expected",
        rows.len(),
        rows.len() - wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}
