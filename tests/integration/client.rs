//! The shared Haier client against a wiremock fake for each fault: both logins, single-flight
//! token refresh, the retry table, 429 handling, the breaker, and secrets kept out of the logs.

use haier_sync::config::{BreakerPolicy, HaierConfig, RateLimit, RetryPolicy, Secret, YlhConfig};
use haier_sync::haier::{BreakerState, CancelRequest, HaierClient, HaierError, Order, OrderItem, System};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;
use wiremock::matchers::{body_json, body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use haier_sync::haier::paths::{
    self, BALANCE_PATH, LOGISTICS_PATH, PRICES_PATH, PRODUCTS_PATH, STOCK_PATH, TOKEN_FALLBACK_PATH,
    TOKEN_PATH,
};

/// The YLH path suffix of the test config (`configs`).
const YLH_SUFFIX: &str = "-dev";

/// YLH's token path in the test config.
pub(crate) fn ylh_token_path() -> String {
    paths::ylh_token_path(YLH_SUFFIX)
}

/// YLH's order push path in the test config.
pub(crate) fn push_path() -> String {
    paths::push_path(YLH_SUFFIX)
}

/// YLH's order cancel path in the test config.
pub(crate) fn cancel_path() -> String {
    paths::cancel_path(YLH_SUFFIX)
}

const CLIENT_SECRET: &str = "s3cret-openplat-client";
const PASSWORD: &str = "pw-products-prices";
const SELLER_PASSWORD: &str = "pw-stock-logistics";
const CUSTOMER_PASSWORD: &str = "pw-balance";
const YLH_CLIENT_PASSWORD: &str = "s3cret-ylh-client";
const YLH_PASSWORD: &str = "pw-ylh-user";

/// Fast settings for tests: a high quota, tiny backoffs, a breaker that needs 5 failures.
pub(crate) fn configs(openplat: &str, ylh: &str) -> (HaierConfig, YlhConfig) {
    let rate_limit = RateLimit {
        per_second: 2000,
        burst: 200,
    };
    let retry = RetryPolicy {
        max_attempts: 4,
        backoff_base_ms: 5,
        backoff_cap_ms: 40,
    };
    let breaker = BreakerPolicy {
        failure_threshold: 5,
        cool_down_ms: 200,
    };
    let base = Url::parse(openplat).unwrap();
    let haier = HaierConfig {
        token_url: base.join(TOKEN_PATH).unwrap(),
        base_url: base,
        client_id: "openplat-client".into(),
        client_secret: Secret::new(CLIENT_SECRET),
        customer_code: "8800633175".into(),
        send_to_code: "8800633176".into(),
        supplier_code: "1001".into(),
        password: Secret::new(PASSWORD),
        seller_password: Secret::new(SELLER_PASSWORD),
        customer_password: Secret::new(CUSTOMER_PASSWORD),
        timeout_ms: 2000,
        rate_limit,
        retry,
        breaker,
    };
    let ylh = YlhConfig {
        base_url: Url::parse(ylh).unwrap(),
        path_suffix: YLH_SUFFIX.into(),
        client_id: "ylh-client".into(),
        client_password: Secret::new(YLH_CLIENT_PASSWORD),
        username: "ylh-user".into(),
        password: Secret::new(YLH_PASSWORD),
        source_system: "HAIER-SYNC".into(),
        shop_name: "Demo Shop".into(),
        seller_code: "8800633175".into(),
        timeout_ms: 2000,
        rate_limit,
        retry,
        breaker,
    };
    (haier, ylh)
}

pub(crate) fn client_for(server: &MockServer) -> HaierClient {
    let (haier, ylh) = configs(&server.uri(), &server.uri());
    HaierClient::new(&haier, &ylh).unwrap()
}

pub(crate) fn envelope(data: Value) -> Value {
    json!({"success":true,"code":0,"errCode":null,"infoMsgs":[],"warningMsgs":[],"errorMsg":null,
           "data":data,"error":null})
}

fn refusal(err_code: &str, message: &str) -> Value {
    json!({"success":false,"code":1,"errCode":err_code,"errorMsg":message,"data":null,"error":null})
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(envelope(data))
}

fn stock_data() -> Value {
    json!([{"secCode":"WH1","stock":"30","warehouseGrade":"0"},{"secCode":"WH2","stock":"5","warehouseGrade":"1"}])
}

/// Issues `tok-1`, `tok-2`, … (openplat style) or `at-1`, … (YLH style).
struct Tokens {
    issued: AtomicUsize,
    ylh: bool,
}

impl Tokens {
    fn openplat() -> Self {
        Self {
            issued: AtomicUsize::new(0),
            ylh: false,
        }
    }

    fn ylh() -> Self {
        Self {
            issued: AtomicUsize::new(0),
            ylh: true,
        }
    }
}

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        if self.ylh {
            ResponseTemplate::new(200).set_body_json(json!({"access_token":format!("at-{n}"),
                "token_type":"bearer","refresh_token":format!("rt-{n}"),"expires_in":43199,"scope":"all"}))
        } else {
            ResponseTemplate::new(200).set_body_json(json!({"token":format!("tok-{n}"),"expires_in":3600}))
        }
    }
}

/// Answers the queued responses in turn, then `last` for ever.
struct Sequence {
    queue: Mutex<VecDeque<ResponseTemplate>>,
    last: ResponseTemplate,
}

impl Sequence {
    fn new(first: impl IntoIterator<Item = ResponseTemplate>, last: ResponseTemplate) -> Self {
        Self {
            queue: Mutex::new(first.into_iter().collect()),
            last,
        }
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.last.clone())
    }
}

/// Accepts only the given `Authorization` value; anything else is a 401.
struct OnlyToken {
    accepted: &'static str,
    reply: ResponseTemplate,
}

impl Respond for OnlyToken {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match request.headers.get("authorization") {
            Some(v) if v.as_bytes() == self.accepted.as_bytes() => self.reply.clone(),
            _ => ResponseTemplate::new(401)
                .set_body_json(json!({"code":401,"message":"token invalid or expired"})),
        }
    }
}

pub(crate) async fn mount_openplat_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(Tokens::openplat())
        .mount(server)
        .await;
}

pub(crate) async fn mount_ylh_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(ylh_token_path()))
        .respond_with(Tokens::ylh())
        .mount(server)
        .await;
}

pub(crate) async fn requests_to(server: &MockServer, to: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == to)
        .count()
}

pub(crate) fn order(so_id: &str) -> Order {
    Order {
        source_system: "HAIER-SYNC".into(),
        shop_name: "Demo Shop".into(),
        seller_code: "8800633175".into(),
        consignee_name: "张三".into(),
        consignee_mobile: "13800000000".into(),
        online_no: "ON-1".into(),
        so_id: so_id.into(),
        total_qty: 1,
        total_amt: serde_json::Number::from(1999),
        create_time: 1_700_000_000_000,
        province: "北京".into(),
        city: "北京市".into(),
        area: "东城区".into(),
        detail_address: "某街 1 号".into(),
        delivery_install: "false".into(),
        item_list: vec![OrderItem {
            product_code: "GA0SZC00U".into(),
            item_qty: 1,
            retail_price: serde_json::Number::from(1999),
            discount_amount: serde_json::Number::from(0),
            actual_price: serde_json::Number::from(1999),
            is_gift: None,
        }],
        remark: None,
        town: None,
        distribution_time: None,
        install_time: None,
        government_order: None,
    }
}

#[tokio::test]
async fn openplat_calls_send_a_raw_token_and_haiers_keys() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_json(
            json!({"client_id":"openplat-client","client_secret":CLIENT_SECRET,
                              "grant_type":"client_credentials"}),
        ))
        .respond_with(Tokens::openplat())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(STOCK_PATH))
        .and(header("authorization", "tok-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"salesCode":"8800633175","senderCode":"8800633176",
            "productCode":"GA0SZC00U","countyCode":"110101","source":"JSH-B",
            "sellerPassword":SELLER_PASSWORD}),
        ))
        .respond_with(ok(stock_data()))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(PRODUCTS_PATH))
        .and(body_json(
            json!({"customerCode":"8800633175","sendToCode":"8800633176",
            "supplierCode":"1001","searchType":"PTJSH","passWord":PASSWORD}),
        ))
        .respond_with(
            // A bare array where the envelope's data would be.
            ResponseTemplate::new(200).set_body_json(json!([{"productCode":"GA0SZC00U",
                "productModel":"BCD-470","productGroupNamd":"冰箱","isSales":"1"}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(PRICES_PATH))
        .and(body_json(json!({"customerCode":"8800633175","sendToCode":"8800633176",
            "productCodes":["GA0SZC00U","X1"],"priceType":"PT","passWord":PASSWORD})))
        .respond_with(ok(json!([{"productCode":"GA0SZC00U","supplyPrice":"1999.00",
            "invoicePrice":1899.05,"rebateRate":"0.05","rebateMoney":0,"stockRebatePolicy":2,"isSales":"1"}])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(LOGISTICS_PATH))
        .and(body_json(json!({"orderCode":"SO.1","sellerCode":"8800633175",
            "sellerPassword":SELLER_PASSWORD})))
        .respond_with(ok(
            json!({"getAllLogisticsInfoByOrderCode":[{"getStoreOutboundLogisticsInfoResultDto":[
            {"logisticsCompanyName":"日日顺","expNo":"E1","deliveryLogisticsDtos":[
                {"stateCode":"DELIVERED","stateTime":"2026-01-03 18:30:00"}]}]}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(BALANCE_PATH))
        .and(body_json(
            json!({"customerCode":"8800633175","customerPassword":CUSTOMER_PASSWORD}),
        ))
        .respond_with(ok(json!([{"saleGroupCode":"SG","payerAccountBalance":"10.50"}])))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server);
    let level = client.query_stock("GA0SZC00U", "110101").await.unwrap();
    assert_eq!(level.total(), 35);
    assert_eq!(level.shown_warehouse().unwrap().sec_code, "WH1");
    client.query_stock("GA0SZC00U", "110101").await.unwrap();
    let products = client.query_products(None).await.unwrap();
    assert_eq!(products[0].group_name.as_deref(), Some("冰箱"));
    let codes = ["GA0SZC00U".to_owned(), "X1".to_owned()];
    let prices = client.query_prices(&codes).await.unwrap();
    assert_eq!(prices[0].supply_price.unwrap().to_string(), "1999.00");
    assert_eq!(prices[0].invoice_price.unwrap().to_string(), "1899.05");
    let logistics = client.query_logistics("SO.1").await.unwrap();
    assert!(logistics.delivered);
    assert_eq!(logistics.express_no.as_deref(), Some("E1"));
    let balances = client.query_balance().await.unwrap();
    assert_eq!(balances[0].balance.unwrap().to_string(), "10.50");

    let stats = client.stats();
    assert_eq!(stats.openplat.token_requests, 1);
    assert_eq!(stats.operation("stock").requests, 2);
    assert_eq!(stats.operation("stock").errors, 0);
}

#[tokio::test]
async fn ylh_calls_log_in_with_the_password_grant_and_send_a_bearer_token() {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64_encode(&format!("ylh-client:{YLH_CLIENT_PASSWORD}"))
    );
    Mock::given(method("POST"))
        .and(path(ylh_token_path()))
        .and(header("authorization", basic.as_str()))
        .and(header("system-name", "ylh-open-api"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=password"))
        .and(body_string_contains("username=ylh-user"))
        .and(body_string_contains(format!("password={YLH_PASSWORD}")))
        .respond_with(Tokens::ylh())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(push_path()))
        .and(header("authorization", "bearer at-1"))
        .and(body_partial_json(
            json!({"soId":"SO-1","totalQty":1,"totalAmt":1999,
            "deliveryInstall":"false","itemList":[{"productCode":"GA0SZC00U","itemQty":1}]}),
        ))
        .respond_with(ok(json!(true)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(cancel_path()))
        .and(header("authorization", "bearer at-1"))
        .and(body_json(json!({"soId":"SO-1","cancelTime":"1700000000000",
            "cancelReason":"customer changed mind","sourceSystem":"HAIER-SYNC"})))
        .respond_with(ok(json!(true)))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server);
    client.push_order(&order("SO-1")).await.unwrap();
    let cancelled = client
        .cancel_order(&CancelRequest {
            so_id: "SO-1".into(),
            cancel_time_ms: 1_700_000_000_000,
            reason: "customer changed mind".into(),
            source_system: None,
        })
        .await
        .unwrap();
    assert!(cancelled);
    // No optional field went out as null.
    let pushed = server.received_requests().await.unwrap();
    let push = pushed.iter().find(|r| r.url.path() == push_path()).unwrap();
    let body: Value = push.body_json().unwrap();
    assert!(body.get("remark").is_none() && body.get("governmentOrder").is_none());
    assert_eq!(client.stats().ylh.token_requests, 1);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn the_token_url_falls_back_to_oauth2_token_and_remembers_it() {
    let server = MockServer::start().await;
    Mock::given(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(TOKEN_FALLBACK_PATH))
        .respond_with(Tokens::openplat())
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path(BALANCE_PATH))
        .respond_with(ok(json!([])))
        .mount(&server)
        .await;
    let client = client_for(&server);
    client.query_balance().await.unwrap();
    client.login(System::Openplat).await.unwrap();
    assert_eq!(client.stats().openplat.token_requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_calls_with_a_stale_token_make_one_token_request() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ok(stock_data()))
        .mount(&server)
        .await;
    let client = client_for(&server);
    client.query_stock("P0", "110101").await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await, 1);

    client.expire_tokens();
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move { client.query_stock(&format!("P{i}"), "110101").await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(requests_to(&server, TOKEN_PATH).await, 2);
    assert_eq!(client.stats().openplat.token_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_logs_in_again_once_and_repeats_the_call_for_everyone_at_once() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    // Only the second token is accepted: the first one was "revoked".
    Mock::given(path(STOCK_PATH))
        .respond_with(OnlyToken {
            accepted: "tok-2",
            reply: ok(stock_data()),
        })
        .mount(&server)
        .await;
    let client = client_for(&server);
    client.login(System::Openplat).await.unwrap();
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.query_stock("P", "110101").await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().total(), 35);
    }
    assert_eq!(requests_to(&server, TOKEN_PATH).await, 2);
    assert_eq!(client.stats().operation("stock").retries, 0);
}

/// Each 401 on a token obtained after the call's previous 401 may be a new revocation, so the
/// call logs in again, 20 times at most (`MAX_RELOGINS`): then the login is taken as unusable.
#[tokio::test]
async fn a_login_whose_tokens_are_always_refused_ends_unauthorized_after_a_bounded_number_of_logins() {
    let server = MockServer::start().await;
    mount_ylh_token(&server).await;
    Mock::given(path(push_path()))
        .respond_with(ResponseTemplate::new(401))
        .expect(21)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let error = client.push_order(&order("SO-1")).await.unwrap_err();
    assert!(
        matches!(
            error,
            HaierError::Unauthorized {
                system: System::Ylh,
                operation: "order_push"
            }
        ),
        "{error:?}"
    );
    assert_eq!(requests_to(&server, &ylh_token_path()).await, 21);
}

#[tokio::test]
async fn refused_credentials_are_reported_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path(ylh_token_path()))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error":"invalid_grant","error_description":"Bad credentials"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let error = client.push_order(&order("SO-1")).await.unwrap_err();
    match error {
        HaierError::AuthRefused { system, message } => {
            assert_eq!(system, System::Ylh);
            assert_eq!(message, "Bad credentials");
        }
        other => panic!("expected AuthRefused, got {other:?}"),
    }
    assert!(client.stats().operation("token_ylh").errors >= 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_and_counted() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(Sequence::new(
            [
                ResponseTemplate::new(503).set_body_string("<html>busy</html>"),
                ResponseTemplate::new(500),
                ResponseTemplate::new(408),
            ],
            ok(stock_data()),
        ))
        .expect(4)
        .mount(&server)
        .await;
    let client = client_for(&server);
    assert_eq!(client.query_stock("P", "110101").await.unwrap().total(), 35);
    let stock = client.stats().operation("stock");
    assert_eq!(
        (stock.calls, stock.requests, stock.retries, stock.errors),
        (1, 4, 3, 0)
    );
}

#[tokio::test]
async fn retries_stop_after_max_attempts_with_the_last_error() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(4)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let error = client.query_stock("P", "110101").await.unwrap_err();
    assert!(matches!(error, HaierError::Http { status: 502, ref body, .. } if body == "bad gateway"));
    assert_eq!(client.stats().operation("stock").errors, 1);
}

#[tokio::test]
async fn a_400_and_a_password_error_are_not_retried() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad request"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(BALANCE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(refusal("PASSWORD_ERROR", "密码错误")))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let error = client.query_stock("P", "110101").await.unwrap_err();
    assert!(matches!(error, HaierError::Http { status: 400, .. }), "{error:?}");
    assert!(!error.is_retryable());
    let error = client.query_balance().await.unwrap_err();
    match &error {
        HaierError::Business {
            code,
            message,
            operation,
            ..
        } => {
            assert_eq!(code, "PASSWORD_ERROR");
            assert_eq!(message, "密码错误");
            assert_eq!(*operation, "balance");
        }
        other => panic!("expected a business error, got {other:?}"),
    }
    let stats = client.stats();
    assert_eq!(
        stats.operation("stock").retries + stats.operation("balance").retries,
        0
    );
    // Refusals mean the system is up: the breaker stays closed.
    assert_eq!(client.breaker_state(System::Openplat), BreakerState::Closed);
}

#[tokio::test]
async fn a_repeated_so_id_is_its_own_error() {
    let server = MockServer::start().await;
    mount_ylh_token(&server).await;
    Mock::given(path(push_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(refusal("DUPLICATE_SOID", "订单号重复")))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);
    match client.push_order(&order("SO-9")).await {
        Err(HaierError::DuplicateSoId { so_id }) => assert_eq!(so_id, "SO-9"),
        other => panic!("expected DuplicateSoId, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_waits_for_retry_after_without_using_an_attempt() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    let throttled = ResponseTemplate::new(429)
        .insert_header("Retry-After", "1")
        .set_body_json(json!({"success":false,"code":429,"errorMsg":"请求过于频繁"}));
    Mock::given(path(STOCK_PATH))
        .respond_with(Sequence::new([throttled.clone(), throttled], ok(stock_data())))
        .expect(3)
        .mount(&server)
        .await;
    let (haier, ylh) = configs(&server.uri(), &server.uri());
    let haier = HaierConfig {
        // One attempt only: the 429s must not use it up.
        retry: RetryPolicy {
            max_attempts: 1,
            ..haier.retry
        },
        ..haier
    };
    let client = HaierClient::new(&haier, &ylh).unwrap();
    let started = Instant::now();
    client.query_stock("P", "110101").await.unwrap();
    // Two waits of Retry-After: 1 s each, shared by the limiter.
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let stock = client.stats().operation("stock");
    assert_eq!((stock.throttled, stock.retries, stock.errors), (2, 0, 0));
}

#[tokio::test]
async fn a_429_slows_every_caller_of_the_system() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(Sequence::new(
            [ResponseTemplate::new(429).insert_header("Retry-After", "1")],
            ok(stock_data()),
        ))
        .mount(&server)
        .await;
    Mock::given(path(BALANCE_PATH))
        .respond_with(ok(json!([])))
        .mount(&server)
        .await;
    let client = client_for(&server);
    client.login(System::Openplat).await.unwrap();
    let throttled_call = {
        let client = client.clone();
        tokio::spawn(async move { client.query_stock("P", "110101").await })
    };
    // Wait (bounded) until the 429 has been answered, then call another operation.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.stats().operation("stock").throttled == 0 {
        assert!(Instant::now() < deadline, "no 429 seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    client.query_balance().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "the balance call went out during the pause"
    );
    throttled_call.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hanging_reply_times_out_and_is_retried() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ok(stock_data()).set_delay(Duration::from_secs(5)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ok(stock_data()))
        .with_priority(2)
        .mount(&server)
        .await;
    let (haier, ylh) = configs(&server.uri(), &server.uri());
    let haier = HaierConfig {
        timeout_ms: 300,
        ..haier
    };
    let client = HaierClient::new(&haier, &ylh).unwrap();
    assert_eq!(client.query_stock("P", "110101").await.unwrap().total(), 35);
    assert_eq!(client.stats().operation("stock").retries, 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let (haier, ylh) = configs(&dead, &dead);
    let client = HaierClient::new(&haier, &ylh).unwrap();
    let error = client.query_balance().await.unwrap_err();
    assert!(
        matches!(
            error,
            HaierError::Connect {
                system: System::Openplat,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(client.stats().operation("balance").retries, 3);
}

#[tokio::test]
async fn the_breaker_opens_after_a_run_of_failures_and_recovers_after_the_cool_down() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    let failing = Mock::given(path(STOCK_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let client = client_for(&server);
    for _ in 0..5 {
        let error = client.query_stock("P", "110101").await.unwrap_err();
        assert!(matches!(error, HaierError::Http { status: 503, .. }));
    }
    assert_eq!(client.breaker_state(System::Openplat), BreakerState::Open);
    let sent = requests_to(&server, STOCK_PATH).await;
    let error = client.query_stock("P", "110101").await.unwrap_err();
    assert!(
        matches!(
            error,
            HaierError::BreakerOpen {
                system: System::Openplat,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_fatal_for_run());
    assert_eq!(
        requests_to(&server, STOCK_PATH).await,
        sent,
        "an open breaker sends nothing"
    );
    // YLH has its own breaker.
    assert_eq!(client.breaker_state(System::Ylh), BreakerState::Closed);
    assert_eq!(client.stats().openplat.breaker, BreakerState::Open);

    // The fake heals; after the cool-down one probe closes the breaker.
    drop(failing);
    Mock::given(path(STOCK_PATH))
        .respond_with(ok(stock_data()))
        .mount(&server)
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.query_stock("P", "110101").await {
            Ok(_) => break,
            Err(HaierError::BreakerOpen { retry_in, .. }) => {
                assert!(Instant::now() < deadline, "the breaker never let a probe through");
                tokio::time::sleep(retry_in.min(Duration::from_millis(50))).await;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(client.breaker_state(System::Openplat), BreakerState::Closed);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(STOCK_PATH))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let client = client_for(&server);
    for _ in 0..5 {
        client.query_stock("P", "110101").await.unwrap_err();
    }
    let before = requests_to(&server, STOCK_PATH).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let probe_error = loop {
        match client.query_stock("P", "110101").await {
            Err(HaierError::BreakerOpen { retry_in, .. }) => {
                assert!(Instant::now() < deadline, "no probe");
                tokio::time::sleep(retry_in.min(Duration::from_millis(50))).await;
            }
            other => break other.unwrap_err(),
        }
    };
    assert!(matches!(probe_error, HaierError::Http { status: 500, .. }));
    // The probe had a single attempt, and its failure re-opened the breaker.
    assert_eq!(requests_to(&server, STOCK_PATH).await, before + 1);
    assert_eq!(client.breaker_state(System::Openplat), BreakerState::Open);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    let client = client_for(&server);
    let many: Vec<String> = (0..21).map(|i| format!("P{i}")).collect();
    assert!(matches!(
        client.query_prices(&many).await,
        Err(HaierError::InvalidRequest {
            operation: "prices",
            ..
        })
    ));
    assert!(client.query_products(Some(&[])).await.is_err());
    assert!(client.query_stock("P", "1101").await.is_err());
    assert!(client.query_logistics(" ").await.is_err());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn test_connection_reports_each_system_on_one_line() {
    let server = MockServer::start().await;
    mount_openplat_token(&server).await;
    Mock::given(path(BALANCE_PATH))
        .respond_with(ok(json!([{"saleGroupCode":"A"},{"saleGroupCode":"B"}])))
        .mount(&server)
        .await;
    Mock::given(path(ylh_token_path()))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error":"unauthorized","error_description":"Full authentication is required"}),
        ))
        .mount(&server)
        .await;
    let client = client_for(&server);
    let openplat = client.check_connection(System::Openplat).await;
    let line = openplat.to_string();
    assert!(openplat.outcome.is_ok());
    assert!(line.starts_with("openplat  OK"), "{line}");
    assert!(line.contains(" ms  token + balance: 2 accounts"), "{line}");
    let ylh = client.check_connection(System::Ylh).await;
    let line = ylh.to_string();
    assert!(line.starts_with("ylh       FAILED"), "{line}");
    assert!(line.contains("Full authentication is required"), "{line}");
    assert!(!line.contains('\n'));
}

/// A `MakeWriter` that appends every log line to one shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `session` on one thread with every debug-level event (the simulator's own excepted)
/// captured, and returns its output and the log text.
fn with_debug_log<T>(session: impl std::future::Future<Output = T>) -> (T, String) {
    // tracing caches whether each log statement is enabled. With one registered subscriber it
    // asks the *calling thread's* default, so a statement first reached by a parallel test
    // (which has none) would stay off here. A second, idle dispatcher makes it ask them all.
    let _idle = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,haier_sync::simulator=off",
        ))
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so every task logs to the subscriber set above.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = runtime.block_on(session);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (output, log)
}

#[test]
fn a_debug_log_of_a_full_session_holds_no_secret_or_token() {
    let (errors, log) = with_debug_log(async {
        let server = MockServer::start().await;
        mount_openplat_token(&server).await;
        mount_ylh_token(&server).await;
        // Replies that echo secrets and tokens back, as a careless gateway might.
        let echo = json!({"passWord":PASSWORD,"note":format!("seller {SELLER_PASSWORD}"),
                          "Authorization":"tok-1"});
        Mock::given(path(PRODUCTS_PATH))
            .respond_with(ok(json!([{"productCode":"P","productModel":"M","echo":echo}])))
            .mount(&server)
            .await;
        Mock::given(path(STOCK_PATH))
            .respond_with(Sequence::new(
                [ResponseTemplate::new(500)
                    .set_body_string(format!("error for tok-1 / {SELLER_PASSWORD} / {CLIENT_SECRET}"))],
                ok(stock_data()),
            ))
            .mount(&server)
            .await;
        Mock::given(path(BALANCE_PATH))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_string(format!("customerPassword={CUSTOMER_PASSWORD} rejected")),
            )
            .mount(&server)
            .await;
        Mock::given(path(PRICES_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(refusal("PASSWORD_ERROR", &format!("密码 {PASSWORD} 错误"))),
            )
            .mount(&server)
            .await;
        Mock::given(path(push_path()))
            .respond_with(ok(json!(true)))
            .mount(&server)
            .await;
        Mock::given(path(cancel_path()))
            .respond_with(ok(json!({"echo":"bearer at-1"})))
            .mount(&server)
            .await;
        let client = client_for(&server);
        let mut errors = Vec::new();
        client.query_products(None).await.unwrap();
        client.query_stock("P", "110101").await.unwrap();
        errors.push(client.query_balance().await.unwrap_err());
        errors.push(client.query_prices(&["P".to_owned()]).await.unwrap_err());
        client.push_order(&order("SO-1")).await.unwrap();
        client
            .cancel_order(&CancelRequest {
                so_id: "SO-1".into(),
                cancel_time_ms: 1,
                reason: "r".into(),
                source_system: None,
            })
            .await
            .unwrap();
        client.expire_tokens();
        client.query_stock("P", "110101").await.unwrap();
        tracing::debug!(client = ?client, stats = ?client.stats(), "session over");
        errors
    });
    assert!(
        log.contains("haier request"),
        "debug bodies were not logged:\n{log}"
    );
    assert!(log.contains("haier reply"));
    assert!(log.contains("logged in to Haier"));
    let errors: String = errors.iter().map(|e| format!("{e} {e:?}\n")).collect();
    let secrets = [
        CLIENT_SECRET,
        PASSWORD,
        SELLER_PASSWORD,
        CUSTOMER_PASSWORD,
        YLH_CLIENT_PASSWORD,
        YLH_PASSWORD,
        "tok-1",
        "tok-2",
        "at-1",
        "rt-1",
        // Basic client credentials, base64-encoded.
        &base64_encode(&format!("ylh-client:{YLH_CLIENT_PASSWORD}")),
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
        assert!(!errors.contains(secret), "{secret} is in an error:\n{errors}");
    }
}

// ---------------------------------------------------------------------------------------------
// Against the simulator: the issue's "done when" checks.
// ---------------------------------------------------------------------------------------------

mod against_the_simulator {
    use crate::support::{spawn_app_with, ClientSettings, Options, TestApp};
    use futures::StreamExt;
    use haier_sync::config::Config;
    use haier_sync::haier::{BreakerState, HaierClient, HaierError, Order, OrderItem, System};
    use haier_sync::simulator::{SimHandle, SimStats};
    use serde_json::{json, Value};
    use std::time::{Duration, Instant};

    /// An app on a simulator of 100 products; the tests build their clients from its config.
    async fn start_app() -> TestApp {
        spawn_app_with(Options::default().products(100)).await
    }

    /// The shipped `jobs.toml` (the simulator's demo credentials, the shipped client settings)
    /// pointed at the app's simulator. `overrides` is TOML: top-level keys replace that key in
    /// both `[haier]` and `[ylh]`, keys under a `[haier]` or `[ylh]` table in that section only.
    fn config_for(app: &TestApp, overrides: &str) -> Config {
        let extra: toml_edit::DocumentMut = overrides.parse().unwrap();
        app.load_config_with(|options| {
            options.haier = ClientSettings::default();
            options.ylh = ClientSettings::default();
            for section in ["haier", "ylh"] {
                let mut set = |key: &str, item: &toml_edit::Item| {
                    let value = item.to_string().trim().to_owned();
                    options.settings.push((format!("{section}.{key}"), value));
                };
                for (key, item) in extra.iter() {
                    match item.as_table() {
                        Some(table) if key == section => {
                            for (key, item) in table.iter() {
                                set(key, item);
                            }
                        }
                        Some(_) => {}
                        None => set(key, item),
                    }
                }
            }
        })
    }

    fn client_with(app: &TestApp, overrides: &str) -> HaierClient {
        let config = config_for(app, overrides);
        HaierClient::new(&config.haier, &config.ylh).unwrap()
    }

    fn codes(sim: &SimHandle, n: usize) -> Vec<String> {
        sim.catalog()
            .products_for_sale()
            .iter()
            .take(n)
            .map(|p| p.code.clone())
            .collect()
    }

    /// `GET /_sim/stats`, as an operator would read it.
    async fn sim_stats(sim: &SimHandle) -> SimStats {
        reqwest::get(format!("{}/_sim/stats", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /_sim/faults` with a partial update.
    async fn set_faults(sim: &SimHandle, update: Value) {
        let reply = reqwest::Client::new()
            .post(format!("{}/_sim/faults", sim.base_url()))
            .json(&update)
            .send()
            .await
            .unwrap();
        assert!(
            reply.status().is_success(),
            "{update}: {}",
            reply.text().await.unwrap()
        );
    }

    fn order(so_id: &str, product_code: &str) -> Order {
        Order {
            item_list: vec![OrderItem {
                product_code: product_code.into(),
                item_qty: 1,
                retail_price: serde_json::Number::from(1999),
                discount_amount: serde_json::Number::from(0),
                actual_price: serde_json::Number::from(1999),
                is_gift: None,
            }],
            ..super::order(so_id)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hundred_stock_calls_with_a_stale_token_make_exactly_one_token_request() {
        let app = start_app().await;
        let sim = &app.sim;
        let client = client_with(&app, "rate_limit = { per_second = 2000, burst = 200 }");
        let products = codes(sim, 200);
        client.query_stock(&products[0], "110101").await.unwrap();

        let storm = |client: HaierClient| {
            let products = products.clone();
            async move {
                let calls = products.iter().map(|code| client.query_stock(code, "110101"));
                for result in futures::future::join_all(calls).await {
                    result.unwrap();
                }
            }
        };

        // Stale on the server: every token is revoked, so all 200 calls meet a 401 at once.
        let before = sim_stats(sim).await;
        sim.expire_tokens();
        storm(client.clone()).await;
        let after = sim_stats(sim).await;
        assert_eq!(after.requests.token_openplat - before.requests.token_openplat, 1);
        assert!(
            after.unauthorized > before.unauthorized,
            "the calls did meet the revoked token"
        );

        // Stale in the client: its token is due for refresh when all 200 calls start.
        client.expire_tokens();
        storm(client.clone()).await;
        let last = sim_stats(sim).await;
        assert_eq!(last.requests.token_openplat - after.requests.token_openplat, 1);
        assert_eq!(last.unauthorized, after.unauthorized);
        assert_eq!(client.stats().openplat.token_requests, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_95_per_second_against_a_quota_of_100_a_thousand_stock_calls_get_no_429() {
        let app = start_app().await;
        let sim = &app.sim;
        set_faults(sim, json!({"qps": 100})).await;
        // The simulator counts a sliding one-second window: 95/s plus a burst of 3 stays within
        // 100 in any second, and the burst lets the limiter make up for late timer wake-ups.
        let client = client_with(&app, "rate_limit = { per_second = 95, burst = 3 }");
        client.login(System::Openplat).await.unwrap();
        let products = codes(sim, 100);
        let started = Instant::now();
        let results: Vec<_> = futures::stream::iter((0..1000).map(|i| {
            let client = client.clone();
            let code = products[i % products.len()].clone();
            async move { client.query_stock(&code, "110101").await }
        }))
        .buffer_unordered(64)
        .collect()
        .await;
        let elapsed = started.elapsed();
        assert!(results.iter().all(Result::is_ok));
        let rate = 1000.0 / elapsed.as_secs_f64();
        println!(
            "1000 stock calls in {:.2} s: {rate:.1} requests/s against a client quota of 95/s ({:+.1}%)",
            elapsed.as_secs_f64(),
            (rate / 95.0 - 1.0) * 100.0
        );
        let stats = sim_stats(sim).await;
        assert_eq!(stats.throttled, 0, "the simulator answered 429s");
        assert_eq!(stats.requests.stock, 1000);
        assert_eq!(client.stats().operation("stock").throttled, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_fifth_of_calls_failing_500_calls_all_succeed_and_the_retries_are_counted() {
        let app = start_app().await;
        let sim = &app.sim;
        set_faults(sim, json!({"fail_rate": 0.2})).await;
        let client = client_with(
            &app,
            "rate_limit = { per_second = 1000, burst = 50 }\n\
             retry = { max_attempts = 10, backoff_base_ms = 5, backoff_cap_ms = 100 }",
        );
        let products = codes(sim, 100);
        let results: Vec<_> = futures::stream::iter((0..500).map(|i| {
            let client = client.clone();
            let code = products[i % products.len()].clone();
            async move { client.query_stock(&code, "110101").await }
        }))
        .buffer_unordered(50)
        .collect()
        .await;
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        let stock = client.stats().operation("stock");
        let sim = sim_stats(sim).await;
        println!(
            "500 calls, {} requests, {} retries, {} faults injected",
            stock.requests, stock.retries, sim.faults.failed
        );
        assert!(stock.retries > 0);
        // Every injected failure was retried once, and nothing else was.
        assert_eq!(stock.retries, sim.faults.failed);
        assert_eq!(stock.requests, 500 + stock.retries);
        assert_eq!(stock.errors, 0);
        assert_eq!(client.breaker_state(System::Openplat), BreakerState::Closed);
    }

    #[tokio::test]
    async fn password_errors_and_refused_logins_are_not_retried_and_duplicates_are_typed() {
        let app = start_app().await;
        let sim = &app.sim;
        let client = client_with(&app, "[haier]\ncustomer_password = \"wrong-password\"");
        match client.query_balance().await {
            Err(HaierError::Business { code, .. }) => assert_eq!(code, "PASSWORD_ERROR"),
            other => panic!("expected PASSWORD_ERROR, got {other:?}"),
        }
        assert_eq!(sim_stats(sim).await.requests.balance, 1);

        let refused = client_with(&app, "[ylh]\npassword = \"wrong-password\"");
        let error = refused
            .push_order(&order("SO-X", &codes(sim, 1)[0]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                HaierError::AuthRefused {
                    system: System::Ylh,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(sim_stats(sim).await.requests.token_ylh, 1);

        let code = &codes(sim, 1)[0];
        client.push_order(&order("SO-1", code)).await.unwrap();
        match client.push_order(&order("SO-1", code)).await {
            Err(HaierError::DuplicateSoId { so_id }) => assert_eq!(so_id, "SO-1"),
            other => panic!("expected DuplicateSoId, got {other:?}"),
        }
        let stats = sim_stats(sim).await;
        assert_eq!(stats.requests.order_push, 2);
        assert_eq!(stats.orders.duplicates_rejected, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_breaker_opens_while_the_simulator_fails_and_closes_once_it_heals() {
        let app = start_app().await;
        let sim = &app.sim;
        let client = client_with(
            &app,
            "retry = { max_attempts = 2, backoff_base_ms = 5, backoff_cap_ms = 20 }\n\
             breaker = { failure_threshold = 3, cool_down_ms = 300 }",
        );
        let code = codes(sim, 1).remove(0);
        client.query_stock(&code, "110101").await.unwrap();

        set_faults(sim, json!({"fail_rate": 1.0})).await;
        for _ in 0..3 {
            let error = client.query_stock(&code, "110101").await.unwrap_err();
            assert!(
                matches!(
                    error,
                    HaierError::Http {
                        status: 500..=599,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
        assert_eq!(client.breaker_state(System::Openplat), BreakerState::Open);
        let sent = sim_stats(sim).await.requests.stock;
        let error = client.query_stock(&code, "110101").await.unwrap_err();
        assert!(matches!(error, HaierError::BreakerOpen { .. }), "{error:?}");
        assert_eq!(
            sim_stats(sim).await.requests.stock,
            sent,
            "an open breaker sends nothing"
        );

        set_faults(sim, json!({"fail_rate": 0.0})).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.query_stock(&code, "110101").await {
                Ok(_) => break,
                Err(HaierError::BreakerOpen { retry_in, .. }) => {
                    assert!(Instant::now() < deadline, "the breaker never closed");
                    tokio::time::sleep(retry_in.min(Duration::from_millis(50))).await;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(client.breaker_state(System::Openplat), BreakerState::Closed);
        // Exactly one probe went out after the cool-down.
        assert_eq!(sim_stats(sim).await.requests.stock, sent + 1);
    }

    /// Openplat tokens are JWTs (`eyJ…` is the base64 of `{"`); YLH's are UUID-shaped.
    fn holds_a_token(log: &str) -> bool {
        let uuid = |w: &str| {
            let parts: Vec<_> = w.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
                && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        log.contains("eyJ")
            || log
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(uuid)
    }

    #[test]
    fn a_debug_log_of_a_session_with_the_simulator_holds_no_secret_or_token() {
        let (config, log) = super::with_debug_log(async {
            let app = start_app().await;
            let sim = &app.sim;
            let config = config_for(&app, "");
            let client = HaierClient::new(&config.haier, &config.ylh).unwrap();
            let products = codes(sim, 3);
            client.query_products(Some(&products)).await.unwrap();
            client.query_prices(&products).await.unwrap();
            client.query_stock(&products[0], "110101").await.unwrap();
            client.query_balance().await.unwrap();
            client.push_order(&order("SO-LOG", &products[0])).await.unwrap();
            client
                .push_order(&order("SO-LOG", &products[0]))
                .await
                .unwrap_err();
            sim.expire_tokens();
            client.query_stock(&products[1], "110101").await.unwrap();
            let check = client.check_connection(System::Ylh).await;
            tracing::debug!(%check, "checked");
            config
        });
        assert!(
            log.contains("haier request") && log.contains("haier reply"),
            "{log}"
        );
        assert!(log.contains("logged in to Haier"));
        let secrets = [
            config.haier.client_secret.expose(),
            config.haier.password.expose(),
            config.haier.seller_password.expose(),
            config.haier.customer_password.expose(),
            config.ylh.client_password.expose(),
            config.ylh.password.expose(),
        ];
        for secret in secrets {
            assert!(!log.contains(secret), "{secret} is in the log");
        }
        assert!(!holds_a_token(&log), "an issued token is in the log:\n{log}");
    }
}
