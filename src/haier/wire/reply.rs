//! Business replies into domain types: products, prices, stock, balances and the cancel answer,
//! each decoded leniently from the envelope's data. Prices stay decimals. Logistics are
//! `logistics.rs`'s, YLH's after-sale answers `ylh_reply.rs`'s.

use super::super::types::{Balance, Price, Product, StockLevel, Warehouse};
use super::lenient::{self, list_of, to_bool};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// One item of the purchasable-products payload, as Haier writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductWire {
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
pub(crate) fn products_from(data: Value) -> Result<Vec<Product>, String> {
    Ok(list_of::<ProductWire>(data)?
        .into_iter()
        .filter_map(product_of)
        .collect())
}

/// The product an item describes; `None` for an item without a product code.
pub(super) fn product_of(p: ProductWire) -> Option<Product> {
    if p.product_code.is_empty() {
        return None;
    }
    Some(Product {
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
pub(crate) fn prices_from(data: Value) -> Result<Vec<Price>, String> {
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
pub(crate) fn stock_from(product_code: &str, county_code: &str, data: Value) -> Result<StockLevel, String> {
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

pub(crate) fn balances_from(data: Value) -> Result<Vec<Balance>, String> {
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

/// The cancel payload: `true`/`false` (lenient); null or an object counts as accepted.
pub(crate) fn cancel_accepted_from(data: &Value) -> bool {
    match data {
        Value::Null | Value::Object(_) => true,
        other => to_bool(other).unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use super::super::envelope::{open_envelope, Envelope};
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

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
}
