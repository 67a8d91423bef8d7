//! The simulator over HTTP, as a client sees it: every endpoint's happy path and business
//! errors, tokens and their expiry, the quota, injected faults, signed callbacks, logistics
//! progress, determinism, and the `/_sim` API. Each test starts its own simulator on 127.0.0.1:0.

use crate::support::{start_simulator, ylh_token};
use axum::extract::{Form, State};
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::{Json, Router};
use haier_sync::haier::paths::{
    self, BALANCE_PATH, LOGISTICS_PATH, PRICES_PATH, PRODUCTS_PATH, STOCK_PATH, TOKEN_FALLBACK_PATH,
    TOKEN_PATH,
};
use haier_sync::simulator::{self, Faults, PriceLookup, SimCredentials, SimHandle, SimOptions};
use md5::{Digest, Md5};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CUSTOMER: &str = "8800633175";
const PASSWORD: &str = "demo-password";

fn small() -> SimOptions {
    SimOptions {
        products: 100,
        ..SimOptions::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Polls `check` every 20 ms until it holds or `within` passes.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn openplat_token(client: &reqwest::Client, sim: &SimHandle) -> String {
    let reply: Value = client
        .post(format!("{}{TOKEN_PATH}", sim.base_url()))
        .json(&json!({"client_id": "demo-openplat-client", "client_secret": "demo-openplat-secret", "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["token"].as_str().unwrap().to_owned()
}

/// POSTs JSON with a raw `Authorization` header; returns the status and the body (JSON, or a string).
async fn call(
    client: &reqwest::Client,
    url: String,
    authorization: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let reply = client
        .post(url)
        .header("Authorization", authorization)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let text = reply.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn openplat(
    client: &reqwest::Client,
    sim: &SimHandle,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    call(client, format!("{}{path}", sim.base_url()), token, &body).await
}

async fn push(client: &reqwest::Client, sim: &SimHandle, token: &str, order: &Value) -> (StatusCode, Value) {
    call(
        client,
        format!("{}{}", sim.base_url(), paths::push_path("-dev")),
        &format!("bearer {token}"),
        order,
    )
    .await
}

async fn cancel(client: &reqwest::Client, sim: &SimHandle, token: &str, so_id: &str) -> (StatusCode, Value) {
    let body = json!({"soId": so_id, "cancelTime": "1764000000000", "cancelReason": "客户取消", "sourceSystem": "HAIER-SYNC"});
    call(
        client,
        format!("{}{}", sim.base_url(), paths::cancel_path("-dev")),
        &format!("bearer {token}"),
        &body,
    )
    .await
}

fn products_body(codes: Option<Vec<String>>) -> Value {
    let mut body = json!({"customerCode": CUSTOMER, "sendToCode": CUSTOMER, "supplierCode": "1001", "searchType": "PTJSH", "passWord": PASSWORD});
    if let Some(codes) = codes {
        body["productCodes"] = json!(codes);
    }
    body
}

fn prices_body(codes: &[String]) -> Value {
    json!({"customerCode": CUSTOMER, "sendToCode": CUSTOMER, "productCodes": codes, "priceType": "PT", "passWord": PASSWORD})
}

fn stock_body(code: &str, county: &str) -> Value {
    json!({"salesCode": CUSTOMER, "senderCode": CUSTOMER, "productCode": code, "countyCode": county, "source": "JSH-B", "sellerPassword": PASSWORD})
}

fn logistics_body(order_code: &str) -> Value {
    json!({"orderCode": order_code, "sellerCode": CUSTOMER, "sellerPassword": PASSWORD})
}

fn order(so_id: &str, product_code: &str) -> Value {
    json!({
        "sourceSystem": "HAIER-SYNC", "shopName": "Demo Shop", "sellerCode": CUSTOMER,
        "consigneeName": "张三", "consigneeMobile": "13800000000", "onlineNo": format!("ON-{so_id}"), "soId": so_id,
        "totalQty": 2, "totalAmt": 4798.00, "createTime": 1764000000000u64,
        "province": "北京市", "city": "北京市", "area": "东城区", "detailAddress": "长安街1号",
        "deliveryInstall": "false",
        "itemList": [{"productCode": product_code, "itemQty": 2, "retailPrice": 2399.00, "discountAmount": 0, "actualPrice": 2399.00}],
    })
}

fn assert_business_error(reply: &(StatusCode, Value), err_code: &str) {
    assert_eq!(reply.0, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.1["success"], false, "{reply:?}");
    assert_eq!(reply.1["code"], 1, "{reply:?}");
    assert_eq!(reply.1["errCode"], err_code, "{reply:?}");
}

fn assert_ok(reply: &(StatusCode, Value)) {
    assert_eq!(reply.0, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.1["success"], true, "{reply:?}");
    assert_eq!(reply.1["code"], 0, "{reply:?}");
}

fn decimal(value: &Value) -> Decimal {
    match value {
        Value::String(s) => Decimal::from_str(s).unwrap(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap(),
        other => panic!("not a decimal: {other}"),
    }
}

fn codes_for_sale(sim: &SimHandle, n: usize) -> Vec<String> {
    sim.catalog()
        .products_for_sale()
        .iter()
        .take(n)
        .map(|p| p.code.clone())
        .collect()
}

#[tokio::test]
async fn openplat_token_is_issued_for_the_configured_client_only() {
    let sim = start_simulator(small()).await;
    let client = http();
    for path in [TOKEN_PATH, TOKEN_FALLBACK_PATH] {
        let reply = client
            .post(format!("{}{path}", sim.base_url()))
            .json(&json!({"client_id": "demo-openplat-client", "client_secret": "demo-openplat-secret", "grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["token"].as_str().unwrap().split('.').count(), 3);
        assert_eq!(body["expires_in"], 3600);
        assert!(body["expires_at"].as_i64().unwrap() > 1_700_000_000);
    }
    let (status, body) = call(
        &client,
        format!("{}{TOKEN_PATH}", sim.base_url()),
        "",
        &json!({"client_id": "demo-openplat-client", "client_secret": "wrong", "grant_type": "client_credentials"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"code": 401, "message": "invalid client"}));
    assert_eq!(sim.stats().requests.token_openplat, 3);
}

#[tokio::test]
async fn business_calls_without_a_valid_token_get_401_in_both_systems() {
    let sim = start_simulator(small()).await;
    let client = http();
    for authorization in ["", "not-a-token", "Bearer x.y.z"] {
        let (status, body) = openplat(&client, &sim, authorization, PRODUCTS_PATH, products_body(None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, json!({"code": 401, "message": "token invalid or expired"}));
    }
    // An openplat token is no YLH token, and a YLH call needs the bearer scheme.
    let openplat_token = openplat_token(&client, &sim).await;
    let (status, _) = push(&client, &sim, &openplat_token, &order("SO-1", "X")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let ylh = ylh_token(&client, &sim, "-dev").await;
    let url = format!("{}{}", sim.base_url(), paths::push_path("-dev"));
    let (status, _) = call(&client, url, &ylh, &order("SO-1", "X")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().unauthorized, 5);
    assert_eq!(sim.stats().orders.received, 0);
}

#[tokio::test]
async fn the_full_listing_has_every_purchasable_product_with_the_real_key_names() {
    let sim = start_simulator(SimOptions {
        products: 1000,
        ..SimOptions::default()
    })
    .await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let reply = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await;
    assert_ok(&reply);
    let items = reply.1["data"].as_array().unwrap();
    assert_eq!(items.len(), 1000);
    let extras: Vec<&str> = sim
        .catalog()
        .extra_products()
        .iter()
        .map(|p| p.code.as_str())
        .collect();
    for item in items {
        assert_eq!(item["isSales"], "1");
        assert!(!extras.contains(&item["productCode"].as_str().unwrap()));
        for key in [
            "productModel",
            "productGroupNamd",
            "productBrandName",
            "productImageUrl",
        ] {
            assert!(
                item[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} in {item}"
            );
        }
        assert!(!item["productLageUrls"].as_array().unwrap().is_empty());
    }
    let brands: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|i| i["productBrandName"].as_str())
        .collect();
    assert_eq!(brands, ["海尔", "卡萨帝", "统帅"].into_iter().collect());
}

#[tokio::test]
async fn explicit_codes_answer_extras_and_unknown_codes_as_not_for_sale() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let for_sale = codes_for_sale(&sim, 1).remove(0);
    let extra = sim.catalog().extra_products()[0].code.clone();
    let codes = vec![for_sale.clone(), extra.clone(), "ZZ0NOSUCH".to_owned()];
    let reply = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(Some(codes))).await;
    assert_ok(&reply);
    let data = reply.1["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["productCode"], for_sale.as_str());
    assert_eq!(data[0]["isSales"], "1");
    assert_eq!(data[1]["productCode"], extra.as_str());
    assert_eq!(data[1]["isSales"], "0");
    assert_eq!(data[1]["noSalesReason"], "产品未投放");
    assert_eq!(data[2]["isSales"], "0");
    assert_eq!(data[2]["noSalesReason"], "产品不存在");
}

#[tokio::test]
async fn prices_for_twenty_codes_follow_the_contract_arithmetic_and_quirks() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let codes = codes_for_sale(&sim, 20);
    let reply = openplat(&client, &sim, &token, PRICES_PATH, prices_body(&codes)).await;
    assert_ok(&reply);
    let rows = reply.1["data"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    let (mut as_strings, mut as_numbers) = (0, 0);
    for (row, code) in rows.iter().zip(&codes) {
        assert_eq!(row["productCode"], code.as_str());
        let PriceLookup::InForce(expected) = sim.catalog().price(code) else {
            assert_eq!(row["reason"], "价格未生效");
            assert!(row["supplyPrice"].is_null());
            continue;
        };
        assert_eq!(row["isSales"], "1");
        let supply = decimal(&row["supplyPrice"]);
        let rate = decimal(&row["rebateRate"]);
        let money = decimal(&row["rebateMoney"]);
        assert_eq!(supply, expected.supply);
        assert_eq!(
            decimal(&row["invoicePrice"]),
            simulator::invoice_price(supply, rate, money)
        );
        assert!([0, 1, 2, 5].contains(
            &decimal(&row["stockRebatePolicy"])
                .to_string()
                .parse::<u8>()
                .unwrap()
        ));
        if row["supplyPrice"].is_string() {
            as_strings += 1;
        } else {
            as_numbers += 1;
        }
    }
    assert!(
        as_strings > 0 && as_numbers > 0,
        "both number styles appear: {as_strings} strings, {as_numbers} numbers"
    );

    // The product with no price in force (one in 50) and a code not for sale.
    let no_price = sim
        .catalog()
        .products_for_sale()
        .iter()
        .find(|p| sim.catalog().price(&p.code) == PriceLookup::NoPrice)
        .unwrap()
        .code
        .clone();
    let extra = sim.catalog().extra_products()[0].code.clone();
    let reply = openplat(
        &client,
        &sim,
        &token,
        PRICES_PATH,
        prices_body(&[no_price, extra]),
    )
    .await;
    let rows = reply.1["data"].as_array().unwrap();
    assert_eq!(
        (&rows[0]["reason"], &rows[0]["isSales"], &rows[0]["supplyPrice"]),
        (&json!("价格未生效"), &json!("1"), &Value::Null)
    );
    assert_eq!(
        (&rows[1]["reason"], &rows[1]["isSales"], &rows[1]["invoicePrice"]),
        (&json!("商品暂不可采"), &json!("0"), &Value::Null)
    );
}

#[tokio::test]
async fn stock_replies_sum_to_the_catalog_totals_and_some_are_empty() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let mut empty = 0;
    for code in codes_for_sale(&sim, 20) {
        for county in ["110101", "310115", "440305"] {
            let reply = openplat(&client, &sim, &token, STOCK_PATH, stock_body(&code, county)).await;
            assert_ok(&reply);
            let warehouses = reply.1["data"].as_array().unwrap();
            let mut sum = 0;
            for w in warehouses {
                sum += w["stock"].as_str().unwrap().parse::<u64>().unwrap();
                assert!(["0", "1"].contains(&w["warehouseGrade"].as_str().unwrap()));
                assert!(["0", "1"].contains(&w["timelinessData"]["isTranfer"].as_str().unwrap()));
            }
            assert_eq!(
                sum,
                sim.catalog().stock_total(&code, county),
                "{code} in {county}"
            );
            empty += usize::from(warehouses.is_empty());
        }
    }
    assert!(empty > 0, "some stock lists are empty");
}

#[tokio::test]
async fn balance_lists_the_payer_accounts() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let reply = openplat(
        &client,
        &sim,
        &token,
        BALANCE_PATH,
        json!({"customerCode": CUSTOMER, "customerPassword": PASSWORD}),
    )
    .await;
    assert_ok(&reply);
    let accounts = reply.1["data"].as_array().unwrap();
    assert!(!accounts.is_empty());
    for account in accounts {
        assert_eq!(account["payerAccountCode"], CUSTOMER);
        assert!(decimal(&account["payerAccountBalance"]) > Decimal::ZERO);
    }
}

#[tokio::test]
async fn wrong_passwords_and_codes_are_password_errors() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let code = codes_for_sale(&sim, 1).remove(0);
    let mut bad_products = products_body(None);
    bad_products["passWord"] = json!("wrong");
    let mut bad_prices = prices_body(std::slice::from_ref(&code));
    bad_prices["customerCode"] = json!("0000000000");
    let mut bad_stock = stock_body(&code, "110101");
    bad_stock["sellerPassword"] = json!("wrong");
    let mut bad_logistics = logistics_body("SO.20260101.000001");
    bad_logistics["sellerPassword"] = json!("wrong");
    let bad_balance = json!({"customerCode": CUSTOMER, "customerPassword": "wrong"});
    for (path, body) in [
        (PRODUCTS_PATH, bad_products),
        (PRICES_PATH, bad_prices),
        (STOCK_PATH, bad_stock),
        (LOGISTICS_PATH, bad_logistics),
        (BALANCE_PATH, bad_balance),
    ] {
        assert_business_error(
            &openplat(&client, &sim, &token, path, body).await,
            "PASSWORD_ERROR",
        );
    }
    let ylh = ylh_token(&client, &sim, "-dev").await;
    let mut wrong_seller = order("SO-1", &code);
    wrong_seller["sellerCode"] = json!("1234567890");
    assert_business_error(&push(&client, &sim, &ylh, &wrong_seller).await, "PASSWORD_ERROR");
    assert_eq!(sim.stats().business_errors, 6);
}

#[tokio::test]
async fn more_than_twenty_codes_are_refused() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let codes = codes_for_sale(&sim, 21);
    let reply = openplat(
        &client,
        &sim,
        &token,
        PRODUCTS_PATH,
        products_body(Some(codes.clone())),
    )
    .await;
    assert_business_error(&reply, "TOO_MANY_CODES");
    assert_business_error(
        &openplat(&client, &sim, &token, PRICES_PATH, prices_body(&codes)).await,
        "TOO_MANY_CODES",
    );
    assert_ok(&openplat(&client, &sim, &token, PRICES_PATH, prices_body(&codes[..20])).await);
}

#[tokio::test]
async fn missing_fields_are_param_missing_naming_the_field() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let code = codes_for_sale(&sim, 1).remove(0);
    let cases = [
        (PRODUCTS_PATH, products_body(None), "passWord"),
        (PRODUCTS_PATH, products_body(None), "sendToCode"),
        (
            PRICES_PATH,
            prices_body(std::slice::from_ref(&code)),
            "productCodes",
        ),
        (STOCK_PATH, stock_body(&code, "110101"), "countyCode"),
        (LOGISTICS_PATH, logistics_body("SO.20260101.000001"), "orderCode"),
        (
            BALANCE_PATH,
            json!({"customerCode": CUSTOMER, "customerPassword": PASSWORD}),
            "customerCode",
        ),
    ];
    for (path, mut body, field) in cases {
        body.as_object_mut().unwrap().remove(field);
        let reply = openplat(&client, &sim, &token, path, body).await;
        assert_business_error(&reply, "PARAM_MISSING");
        assert!(reply.1["errorMsg"].as_str().unwrap().contains(field), "{reply:?}");
    }
    // A malformed county code is refused too.
    let reply = openplat(&client, &sim, &token, STOCK_PATH, stock_body(&code, "1101")).await;
    assert_business_error(&reply, "PARAM_MISSING");

    let ylh = ylh_token(&client, &sim, "-dev").await;
    let required = [
        "sourceSystem",
        "shopName",
        "sellerCode",
        "consigneeName",
        "consigneeMobile",
        "onlineNo",
        "soId",
        "totalQty",
        "totalAmt",
        "createTime",
        "province",
        "city",
        "area",
        "detailAddress",
        "deliveryInstall",
        "itemList",
    ];
    for field in required {
        for absent in [None, Some(Value::Null)] {
            let mut body = order("SO-MISSING", &code);
            if let Some(null) = &absent {
                body[field] = null.clone();
            } else {
                body.as_object_mut().unwrap().remove(field);
            }
            let reply = push(&client, &sim, &ylh, &body).await;
            assert_business_error(&reply, "PARAM_MISSING");
            assert!(
                reply.1["errorMsg"].as_str().unwrap().contains(field),
                "{field}: {reply:?}"
            );
        }
    }
    for item_field in [
        "productCode",
        "itemQty",
        "retailPrice",
        "discountAmount",
        "actualPrice",
    ] {
        let mut body = order("SO-MISSING", &code);
        body["itemList"][0].as_object_mut().unwrap().remove(item_field);
        let reply = push(&client, &sim, &ylh, &body).await;
        assert_business_error(&reply, "PARAM_MISSING");
        assert!(
            reply.1["errorMsg"]
                .as_str()
                .unwrap()
                .contains(&format!("itemList[0].{item_field}")),
            "{reply:?}"
        );
    }
    let mut zero_qty = order("SO-MISSING", &code);
    zero_qty["itemList"][0]["itemQty"] = json!(0);
    assert_business_error(&push(&client, &sim, &ylh, &zero_qty).await, "PARAM_MISSING");
    let reply = cancel(&client, &sim, &ylh, "").await;
    assert_business_error(&reply, "PARAM_MISSING");
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn ylh_token_works_under_every_suffix_and_refuses_bad_credentials() {
    let sim = start_simulator(small()).await;
    let client = http();
    for suffix in simulator::PATH_SUFFIXES {
        let token = ylh_token(&client, &sim, suffix).await;
        assert_eq!(token.len(), 36);
    }
    // Query parameters work as well as a form body.
    let url = format!(
        "{}{}?grant_type=password&username=demo-user&password=demo-user-password",
        sim.base_url(),
        paths::ylh_token_path("-pre")
    );
    let reply = client
        .post(&url)
        .basic_auth("demo-ylh-client", Some("demo-ylh-secret"))
        .header("system-name", "ylh-open-api")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    let token_url = format!("{}{}", sim.base_url(), paths::ylh_token_path("-dev"));
    let attempt = |client_secret: &'static str, system_name: Option<&'static str>, password: &'static str| {
        let mut request = client
            .post(&token_url)
            .basic_auth("demo-ylh-client", Some(client_secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "demo-user"),
                ("password", password),
            ]);
        if let Some(name) = system_name {
            request = request.header("system-name", name);
        }
        request.send()
    };
    let bad_client = attempt("wrong", Some("ylh-open-api"), "demo-user-password")
        .await
        .unwrap();
    assert_eq!(bad_client.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad_client.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let no_system_name = attempt("demo-ylh-secret", None, "demo-user-password")
        .await
        .unwrap();
    assert_eq!(no_system_name.status(), StatusCode::UNAUTHORIZED);
    let bad_password = attempt("demo-ylh-secret", Some("ylh-open-api"), "wrong")
        .await
        .unwrap();
    assert_eq!(bad_password.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_password.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(sim.stats().requests.token_ylh, 7);
}

#[tokio::test]
async fn an_order_is_kept_once_and_its_repeat_is_a_duplicate() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    let body = order("SO-42", &code);
    let reply = push(&client, &sim, &token, &body).await;
    assert_ok(&reply);
    assert_eq!(reply.1["data"], true);
    let repeat = push(&client, &sim, &token, &body).await;
    assert_business_error(&repeat, "DUPLICATE_SOID");

    let stats = sim.stats();
    assert_eq!(stats.requests.order_push, 2);
    assert_eq!(
        (
            stats.orders.received,
            stats.orders.distinct_so_ids,
            stats.orders.duplicates_rejected
        ),
        (2, 1, 1)
    );
    let over_http: Vec<Value> = client
        .get(format!("{}/_sim/orders", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.len(), 1);
    assert_eq!(over_http[0]["soId"], "SO-42");
    assert_eq!(over_http[0]["order"], body);
    let stats_json: Value = client
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats_json["orders"]["duplicates_rejected"], 1);
    assert_eq!(stats_json["requests"]["order_push"], 2);
    let order = sim.order("SO-42").unwrap();
    assert_eq!(order.state, 1);
    assert!(order.ext_order_no.unwrap().starts_with("SO."));
}

#[tokio::test]
async fn an_expired_token_is_refused_and_a_new_one_works() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let ylh = ylh_token(&client, &sim, "-dev").await;
    assert_ok(&openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await);
    sim.expire_tokens();
    let (status, _) = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = cancel(&client, &sim, &ylh, "SO-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = openplat_token(&client, &sim).await;
    assert_ok(&openplat(&client, &sim, &fresh, PRODUCTS_PATH, products_body(None)).await);
}

#[tokio::test]
async fn tokens_expire_after_their_ttl() {
    let sim = start_simulator(SimOptions {
        token_ttl_secs: 1,
        ..small()
    })
    .await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let issued = Instant::now();
    let mut expired_after = None;
    while issued.elapsed() < Duration::from_secs(5) {
        let (status, _) = openplat(
            &client,
            &sim,
            &token,
            BALANCE_PATH,
            json!({"customerCode": CUSTOMER, "customerPassword": PASSWORD}),
        )
        .await;
        if status == StatusCode::UNAUTHORIZED {
            expired_after = Some(issued.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expired_after = expired_after.expect("the token expires within 5 s");
    assert!(
        expired_after >= Duration::from_millis(900),
        "expired too early: {expired_after:?}"
    );
}

#[tokio::test]
async fn revoked_tokens_go_bad_early() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let update = client
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"revoke_tokens_every_ms": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut revoked = false;
    while Instant::now() < deadline && !revoked {
        let (status, _) = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await;
        revoked = status == StatusCode::UNAUTHORIZED;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(revoked);
}

#[tokio::test]
async fn a_burst_past_the_quota_is_throttled_with_retry_after() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let code = codes_for_sale(&sim, 1).remove(0);
    sim.set_faults(Faults {
        qps: Some(100.0),
        ..Faults::default()
    })
    .unwrap();
    let url = format!("{}{STOCK_PATH}", sim.base_url());
    let body = stock_body(&code, "110101");
    let started = Instant::now();
    let replies = futures::future::join_all((0..300).map(|_| {
        client
            .post(&url)
            .header("Authorization", token.as_str())
            .json(&body)
            .send()
    }))
    .await;
    let burst_took = started.elapsed();
    let mut throttled = 0;
    for reply in replies {
        let reply = reply.unwrap();
        if reply.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            let retry_after: u64 = reply.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry_after >= 1);
            let body: Value = reply.json().await.unwrap();
            assert_eq!(
                (&body["success"], &body["code"], &body["errorMsg"]),
                (&json!(false), &json!(429), &json!("请求过于频繁"))
            );
        } else {
            assert_eq!(reply.status(), StatusCode::OK);
        }
    }
    // Exactly 200 when the burst fits in one second; a slower machine lets a few more through.
    assert!(
        (150..=200).contains(&throttled),
        "{throttled} throttled in {burst_took:?}"
    );
    assert_eq!(sim.stats().throttled, throttled);
    assert_eq!(sim.stats().requests.stock, 300);
    // The YLH quota is its own.
    ylh_token(&client, &sim, "-dev").await;
}

#[tokio::test]
async fn latency_delays_every_reply() {
    let sim = start_simulator(SimOptions {
        faults: Faults {
            latency_ms: 200,
            ..Faults::default()
        },
        ..small()
    })
    .await;
    let client = http();
    let started = Instant::now();
    openplat_token(&client, &sim).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn fail_rate_gives_5xx_some_not_json_and_can_be_turned_off_at_run_time() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    sim.set_faults(Faults {
        fail_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let mut non_json = 0;
    for _ in 0..40 {
        let (status, body) = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await;
        assert!([500, 502, 503].contains(&status.as_u16()), "{status}");
        non_json += usize::from(body.is_string());
    }
    assert!(non_json > 0);
    // Token calls are not business calls: they still work.
    openplat_token(&client, &sim).await;
    let off = client
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"fail_rate": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.json::<Value>().await.unwrap()["fail_rate"], 0.0);
    assert_ok(&openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await);
    let stats = sim.stats();
    assert_eq!((stats.faults_injected, stats.faults.failed), (40, 40));
}

#[tokio::test]
async fn hung_calls_time_out_without_blocking_others() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    sim.set_faults(Faults {
        hang_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let hung = impatient
        .post(format!("{}{PRODUCTS_PATH}", sim.base_url()))
        .header("Authorization", token.as_str())
        .json(&products_body(None));
    // While the call hangs, the simulator goes on answering: its stats show the hung call.
    let stats_url = format!("{}/_sim/stats", sim.base_url());
    let (hung, seen_hanging) = tokio::join!(hung.send(), async {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let stats: Value = client.get(&stats_url).send().await.unwrap().json().await.unwrap();
            if stats["faults"]["hung"] == 1 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    });
    assert!(seen_hanging);
    assert!(hung.unwrap_err().is_timeout());
    assert_eq!(sim.stats().faults_injected, 1);
    sim.shutdown().await;
}

/// A callback receiver that records every form it gets and refuses the first `refuse_first`.
struct Receiver {
    url: String,
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

#[derive(Clone)]
struct ReceiverState {
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    refuse_first: Arc<AtomicUsize>,
}

async fn start_receiver(refuse_first: usize) -> Receiver {
    async fn receive(
        State(state): State<ReceiverState>,
        Form(form): Form<HashMap<String, String>>,
    ) -> (AxumStatus, Json<Value>) {
        state.forms.lock().unwrap().push(form);
        let refuse = state
            .refuse_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            (AxumStatus::INTERNAL_SERVER_ERROR, Json(json!({"success": false})))
        } else {
            (
                AxumStatus::OK,
                Json(
                    json!({"success": true, "code": "success", "description": "成功", "data": {"statusCode": 200}}),
                ),
            )
        }
    }
    let forms = Arc::new(Mutex::new(Vec::new()));
    let state = ReceiverState {
        forms: Arc::clone(&forms),
        refuse_first: Arc::new(AtomicUsize::new(refuse_first)),
    };
    let app = Router::new()
        .route("/haier/callback", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/haier/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, forms }
}

impl Receiver {
    fn forms(&self) -> Vec<HashMap<String, String>> {
        self.forms.lock().unwrap().clone()
    }
}

/// The contract's sign, written out here independently of the simulator's code.
fn expected_sign(form: &HashMap<String, String>, secret: &str) -> String {
    let mut fields: Vec<(&String, &String)> = form
        .iter()
        .filter(|(k, v)| *k != "Sign" && *k != "sign" && !v.trim().is_empty())
        .collect();
    fields.sort();
    let joined: String = fields.iter().map(|(k, v)| format!("{k}{v}")).collect();
    let text = format!("{secret}{joined}{secret}").to_lowercase();
    hex::encode_upper(Md5::digest(text.as_bytes()))
}

fn callback_options(receiver: &Receiver) -> SimOptions {
    SimOptions {
        callback_url: Some(receiver.url.clone()),
        callback_delay_ms: 10,
        callback_retry_base_ms: 50,
        ..small()
    }
}

fn data_of(form: &HashMap<String, String>) -> Value {
    serde_json::from_str(&form["Data"]).unwrap()
}

#[tokio::test]
async fn a_pushed_order_gets_a_signed_confirm_callback() {
    let receiver = start_receiver(0).await;
    let sim = start_simulator(callback_options(&receiver)).await;
    let client = http();
    let token = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    assert_ok(&push(&client, &sim, &token, &order("SO-OK", &code)).await);
    assert_ok(&push(&client, &sim, &token, &order("SO-BAD", "ZZ0NOSUCH")).await);
    assert!(eventually(Duration::from_secs(5), || receiver.forms().len() == 2).await);

    let secret = SimCredentials::default().callback.secret;
    for form in receiver.forms() {
        assert_eq!(form["AppKey"], "demo-app-key");
        assert_eq!(form["Method"], "hmm.scm_heorder.confirm");
        assert_eq!(form["TimeStamp"].len(), 14);
        assert!(form["TimeStamp"].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(form["Sign"], expected_sign(&form, secret.expose()), "{form:?}");
        let data = data_of(&form);
        match data["PlatformOrderNo"].as_str().unwrap() {
            "SO-OK" => {
                assert_eq!(data["State"], 1);
                let ext = data["ExtOrderNo"].as_str().unwrap();
                let parts: Vec<&str> = ext.split('.').collect();
                assert!(
                    parts.len() == 3 && parts[0] == "SO" && parts[1].len() == 8 && parts[2] == "000001",
                    "{ext}"
                );
            }
            "SO-BAD" => {
                assert_eq!(data["State"], 0);
                assert!(data["FailMsg"].as_str().unwrap().contains("ZZ0NOSUCH"));
            }
            other => panic!("unexpected order {other}"),
        }
    }
    assert!(eventually(Duration::from_secs(2), || sim.stats().callbacks.acked == 2).await);
    assert_eq!(sim.stats().callbacks.sent, 2);
}

#[tokio::test]
async fn an_unacknowledged_callback_is_retried() {
    let receiver = start_receiver(2).await;
    let sim = start_simulator(callback_options(&receiver)).await;
    let client = http();
    let token = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    assert_ok(&push(&client, &sim, &token, &order("SO-RETRY", &code)).await);
    assert!(eventually(Duration::from_secs(5), || sim.stats().callbacks.acked == 1).await);
    let forms = receiver.forms();
    assert_eq!(forms.len(), 3);
    assert!(forms.iter().all(|f| data_of(f)["PlatformOrderNo"] == "SO-RETRY"));
    assert_eq!(sim.stats().callbacks.sent, 3);
}

#[tokio::test]
async fn cancel_marks_the_order_and_sends_a_cancel_callback() {
    let receiver = start_receiver(0).await;
    let sim = start_simulator(SimOptions {
        delivery_after_ms: 60_000,
        ..callback_options(&receiver)
    })
    .await;
    let client = http();
    let token = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    assert_ok(&push(&client, &sim, &token, &order("SO-C", &code)).await);
    let reply = cancel(&client, &sim, &token, "SO-C").await;
    assert_ok(&reply);
    assert_eq!(reply.1["data"], true);
    assert_business_error(
        &cancel(&client, &sim, &token, "SO-UNKNOWN").await,
        "ORDER_NOT_FOUND",
    );
    let cancel_form = || {
        receiver
            .forms()
            .into_iter()
            .find(|f| f["Method"] == "hmm.scm_heorder.cancel")
    };
    assert!(eventually(Duration::from_secs(5), || cancel_form().is_some()).await);
    let form = cancel_form().unwrap();
    assert_eq!(form["Sign"], expected_sign(&form, "demo-callback-secret"));
    let data = data_of(&form);
    assert_eq!(
        (&data["State"], &data["PlatformOrderNo"]),
        (&json!(1), &json!("SO-C"))
    );
    assert_eq!(data["itemList"][0]["productCode"], code.as_str());
    assert_eq!(data["itemList"][0]["totalQty"], 2);
    assert!(sim.order("SO-C").unwrap().cancelled);
    assert_eq!(sim.stats().orders.cancelled, 1);
    // A second cancel changes nothing.
    assert_eq!(cancel(&client, &sim, &token, "SO-C").await.1["data"], false);
}

#[tokio::test]
async fn logistics_move_up_to_delivered_and_unknown_orders_are_not_found() {
    let sim = start_simulator(SimOptions {
        callback_delay_ms: 0,
        delivery_after_ms: 600,
        ..small()
    })
    .await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let ylh = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    assert_ok(&push(&client, &sim, &ylh, &order("SO-L", &code)).await);
    let ext = sim.order("SO-L").unwrap().ext_order_no.unwrap();

    let states = |reply: &(StatusCode, Value)| -> Vec<String> {
        reply.1["data"]["getAllLogisticsInfoByOrderCode"][0]["getStoreOutboundLogisticsInfoResultDto"][0]
            ["deliveryLogisticsDtos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stateCode"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = openplat(&client, &sim, &token, LOGISTICS_PATH, logistics_body(&ext)).await;
    assert_ok(&first);
    assert_eq!(states(&first)[0], "ACCEPTED");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = states(&first);
    while !last.contains(&"DELIVERED".to_owned()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = states(&openplat(&client, &sim, &token, LOGISTICS_PATH, logistics_body(&ext)).await);
    }
    assert_eq!(last, ["ACCEPTED", "OUTBOUND", "IN_TRANSIT", "DELIVERED"]);
    let unknown = openplat(
        &client,
        &sim,
        &token,
        LOGISTICS_PATH,
        logistics_body("SO.20200101.999999"),
    )
    .await;
    assert_business_error(&unknown, "ORDER_NOT_FOUND");
}

#[tokio::test]
async fn the_same_seed_serves_the_same_catalog_and_another_seed_does_not() {
    let client = http();
    let mut replies = Vec::new();
    for seed in [9, 9, 10] {
        let sim = start_simulator(SimOptions {
            seed,
            products: 200,
            ..SimOptions::default()
        })
        .await;
        let token = openplat_token(&client, &sim).await;
        let listing = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None))
            .await
            .1;
        let codes: Vec<String> = listing["data"]
            .as_array()
            .unwrap()
            .iter()
            .take(20)
            .map(|p| p["productCode"].as_str().unwrap().to_owned())
            .collect();
        let prices = openplat(&client, &sim, &token, PRICES_PATH, prices_body(&codes))
            .await
            .1;
        let stock = openplat(&client, &sim, &token, STOCK_PATH, stock_body(&codes[3], "320102"))
            .await
            .1;
        replies.push((listing, prices, stock));
        sim.shutdown().await;
    }
    assert_eq!(replies[0], replies[1]);
    assert_ne!(replies[0].0, replies[2].0);
}

#[tokio::test]
async fn mutation_moves_prices_and_reset_restores_the_start_state() {
    let sim = start_simulator(small()).await;
    let client = http();
    let token = openplat_token(&client, &sim).await;
    let ylh = ylh_token(&client, &sim, "-dev").await;
    let code = codes_for_sale(&sim, 1).remove(0);
    assert_ok(&push(&client, &sim, &ylh, &order("SO-R", &code)).await);

    let mutation: Value = client
        .post(format!("{}/_sim/mutate", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changed: Vec<String> = mutation["prices_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(!changed.is_empty());
    let after = openplat(&client, &sim, &token, PRICES_PATH, prices_body(&changed)).await;
    for (row, code) in after.1["data"].as_array().unwrap().iter().zip(&changed) {
        let PriceLookup::InForce(now) = sim.catalog().price(code) else {
            panic!("{code} has a price")
        };
        assert_eq!(decimal(&row["supplyPrice"]), now.supply);
    }
    assert_eq!(sim.stats().mutations, 1);

    let reset = client
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert!(sim.orders().is_empty());
    assert_eq!(sim.stats(), Default::default());
    let fresh = simulator::Catalog::generate(1, 100);
    assert_eq!(sim.catalog().price(&changed[0]), fresh.price(&changed[0]));
    // Tokens are gone after a reset; the same soId is new again.
    let (status, _) = openplat(&client, &sim, &token, PRODUCTS_PATH, products_body(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let ylh = ylh_token(&client, &sim, "-dev").await;
    assert_ok(&push(&client, &sim, &ylh, &order("SO-R", &code)).await);
}

#[tokio::test]
async fn faults_are_read_and_partly_updated_over_http() {
    let sim = start_simulator(small()).await;
    let client = http();
    let url = format!("{}/_sim/faults", sim.base_url());
    let set: Value = client
        .post(&url)
        .json(&json!({"qps": 50, "latency_ms": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&set["qps"], &set["latency_ms"], &set["fail_rate"]),
        (&json!(50.0), &json!(5), &json!(0.0))
    );
    let bad = client
        .post(&url)
        .json(&json!({"hang_rate": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let now: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now, set);
    assert_eq!(sim.faults().qps, Some(50.0));
}
