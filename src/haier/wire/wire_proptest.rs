//! Property tests of reply decoding (issue 10): whatever bytes or JSON Haier sends, no decoder
//! panics; a well-formed reply, in any of the shapes Haier uses (envelope or bare list, numbers
//! as strings or as numbers), decodes to exactly what was sent. They run with the unit tests;
//! `PROPTEST_CASES=100000 cargo test --lib wire_proptest` runs them longer.

use super::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::time::Duration;

/// Any JSON value, nested a few levels, with the keys Haier's decoders look for mixed in so that
/// the lenient paths get exercised, not only "unknown key".
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("success".to_owned()),
        Just("data".to_owned()),
        Just("errCode".to_owned()),
        Just("code".to_owned()),
        Just("errorMsg".to_owned()),
        Just("productCode".to_owned()),
        Just("supplyPrice".to_owned()),
        Just("stock".to_owned()),
        Just("secCode".to_owned()),
        Just("isSales".to_owned()),
        Just("productLageUrls".to_owned()),
        Just("token".to_owned()),
        Just("expires_in".to_owned()),
        Just("expires_at".to_owned()),
        Just("getAllLogisticsInfoByOrderCode".to_owned()),
        Just("getStoreOutboundLogisticsInfoResultDto".to_owned()),
        Just("deliveryLogisticsDtos".to_owned()),
        Just("logisticsInfo".to_owned()),
        Just("stateTime".to_owned()),
        "[a-zA-Z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[0-9.eE+-]{0,24}".prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Runs every decoder on `data`; only a panic fails.
fn decode_everything(data: &Value) {
    let _ = products_from(data.clone());
    let _ = prices_from(data.clone());
    let _ = stock_from("P", "110101", data.clone())
        .map(|level| (level.total(), level.shown_warehouse().cloned()));
    let _ = balances_from(data.clone());
    let _ = logistics_from("SO.1", data.clone());
    let _ = cancel_accepted_from(data);
    let _ = accepted_from(data);
    let _ = delivery_photos_from("SO.1", data.clone());
    let _ = shipments_from(data.clone());
}

/// A decimal as Haier writes it: up to 4 places.
fn decimal() -> impl Strategy<Value = Decimal> {
    (-10_000_000_000i64..10_000_000_000, 0u32..=4).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

/// A decimal on the wire: as a JSON string or a JSON number (with its scale kept).
fn decimal_on_wire(value: Decimal, as_text: bool) -> Value {
    if as_text {
        Value::String(value.to_string())
    } else {
        serde_json::from_str(&value.to_string()).expect("a decimal's text is a JSON number")
    }
}

/// A flag on the wire: `"1"`/`"0"`, `1`/`0`, or `true`/`false`.
fn flag_on_wire(value: bool, form: u8) -> Value {
    match form % 3 {
        0 => json!(if value { "1" } else { "0" }),
        1 => json!(u8::from(value)),
        _ => json!(value),
    }
}

/// The payload as Haier may wrap it: the envelope, or a bare list.
fn reply_bytes(data: Value, bare: bool) -> Vec<u8> {
    let reply = if bare && data.is_array() {
        data
    } else {
        json!({"success":true,"code":0,"errCode":null,"infoMsgs":[],"warningMsgs":[],"errorMsg":null,
               "data":data,"error":null})
    };
    serde_json::to_vec(&reply).expect("a JSON value serializes")
}

fn opened(bytes: &[u8]) -> Value {
    match open_envelope(bytes) {
        Ok(Envelope::Data(data)) => data,
        other => panic!("expected data, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_or_token_decoders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(Envelope::Data(data)) = open_envelope(&bytes) {
            decode_everything(&data);
        }
        let _ = decode_token_reply(&bytes, 1_700_000_000);
        let _ = auth_error_message(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_a_decoder(value in any_json(), now in any::<i64>()) {
        let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
        match open_envelope(&bytes) {
            Ok(Envelope::Data(data)) => decode_everything(&data),
            Ok(Envelope::Refused { .. } | Envelope::Throttled) => {}
            // An error is fine; only data read from a non-envelope would not be.
            Err(_) => prop_assert!(
                !value.is_array(),
                "a bare list is data, never an error"
            ),
        }
        decode_everything(&value);
        let _ = decode_token_reply(&bytes, now);
    }

    #[test]
    fn a_reply_that_is_neither_envelope_nor_list_is_never_data(value in any_json()) {
        // Made neither: the envelope's markers taken out, a list put inside an object.
        let value = match value {
            Value::Object(mut map) => {
                map.remove("success");
                map.remove("errCode");
                Value::Object(map)
            }
            Value::Array(items) => json!({"list": items}),
            other => other,
        };
        let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
        prop_assert!(!matches!(open_envelope(&bytes), Ok(Envelope::Data(_))));
    }

    #[test]
    fn products_round_trip_in_every_wire_form(
        items in prop::collection::vec(
            ("[A-Z0-9]{1,12}", ".{0,16}", prop::option::of(".{1,8}"), prop::option::of(".{1,8}"),
             prop::collection::vec("https?://[a-z]{1,8}/[a-z0-9]{1,8}\\.jpg", 0..3), any::<bool>(),
             prop::option::of(".{1,8}")),
            0..8),
        forms in prop::collection::vec(any::<u8>(), 8),
        bare in any::<bool>(),
    ) {
        let data: Vec<Value> = items.iter().enumerate().map(|(i, (code, model, group, brand, urls, sales, reason))| {
            json!({"productCode":code,"productModel":model,"productGroupNamd":group,"productBrandName":brand,
                   "productImageUrl":null,"productLageUrls":urls,"isSales":flag_on_wire(*sales, forms[i]),
                   "noSalesReason":reason})
        }).collect();
        let decoded = products_from(opened(&reply_bytes(Value::Array(data), bare))).unwrap();
        prop_assert_eq!(decoded.len(), items.len());
        for (product, (code, model, group, brand, urls, sales, reason)) in decoded.iter().zip(&items) {
            prop_assert_eq!(&product.code, code);
            prop_assert_eq!(&product.model, model);
            prop_assert_eq!(&product.group_name, group);
            prop_assert_eq!(&product.brand_name, brand);
            prop_assert_eq!(&product.leaflet_urls, urls);
            prop_assert_eq!(product.is_sales, *sales);
            prop_assert_eq!(&product.no_sales_reason, reason);
        }
    }

    #[test]
    fn prices_round_trip_exactly_as_strings_or_numbers(
        items in prop::collection::vec(
            ("[A-Z0-9]{1,12}", prop::option::of(decimal()), prop::option::of(decimal()),
             prop::option::of(decimal()), any::<bool>()),
            0..8),
        as_text in any::<bool>(),
        bare in any::<bool>(),
    ) {
        let wire = |d: &Option<Decimal>| d.map_or(Value::Null, |d| decimal_on_wire(d, as_text));
        let data: Vec<Value> = items.iter().map(|(code, supply, invoice, rate, sales)| {
            json!({"productCode":code,"supplyPrice":wire(supply),"invoicePrice":wire(invoice),
                   "rebateRate":wire(rate),"rebateMoney":null,"isSales":flag_on_wire(*sales, 0)})
        }).collect();
        let decoded = prices_from(opened(&reply_bytes(Value::Array(data), bare))).unwrap();
        prop_assert_eq!(decoded.len(), items.len());
        for (price, (code, supply, invoice, rate, sales)) in decoded.iter().zip(&items) {
            prop_assert_eq!(&price.code, code);
            // Equal as decimals and as text: the scale Haier sent is kept.
            prop_assert_eq!(price.supply_price.map(|d| d.to_string()), supply.map(|d| d.to_string()));
            prop_assert_eq!(price.invoice_price.map(|d| d.to_string()), invoice.map(|d| d.to_string()));
            prop_assert_eq!(price.rebate_rate.map(|d| d.to_string()), rate.map(|d| d.to_string()));
            prop_assert_eq!(price.is_sales, *sales);
        }
    }

    #[test]
    fn stock_round_trips_and_sums_with_numbers_as_strings_or_numbers(
        warehouses in prop::collection::vec(("[A-Z0-9]{1,8}", 0i64..1_000_000_000, any::<bool>(), any::<bool>()), 0..10),
        bare in any::<bool>(),
    ) {
        let data: Vec<Value> = warehouses.iter().map(|(code, stock, local, as_text)| {
            let stock = if *as_text { json!(stock.to_string()) } else { json!(stock) };
            json!({"secCode":code,"stock":stock,"warehouseGrade":if *local { "0" } else { "1" }})
        }).collect();
        let level = stock_from("P", "110101", opened(&reply_bytes(Value::Array(data), bare))).unwrap();
        prop_assert_eq!(level.total(), warehouses.iter().map(|w| w.1).sum::<i64>());
        prop_assert_eq!(level.warehouses.len(), warehouses.len());
        for (decoded, (code, stock, local, _)) in level.warehouses.iter().zip(&warehouses) {
            prop_assert_eq!(&decoded.sec_code, code);
            prop_assert_eq!(decoded.stock, *stock);
            prop_assert_eq!(decoded.grade.as_str(), if *local { "0" } else { "1" });
        }
    }

    #[test]
    fn refusals_round_trip_their_code_and_message(code in "[A-Z_]{1,16}", message in ".{1,24}") {
        let body = json!({"success":false,"code":1,"errCode":code,"errorMsg":message,"data":null});
        let opened = open_envelope(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(opened, Envelope::Refused { code, message });
    }

    #[test]
    fn token_replies_round_trip_their_token_and_lifetime(
        token in "[A-Za-z0-9._-]{1,64}",
        expires_in in 0i64..=604_800,
        as_text in any::<bool>(),
        ylh in any::<bool>(),
    ) {
        let lifetime = if as_text { json!(expires_in.to_string()) } else { json!(expires_in) };
        let body = if ylh {
            json!({"access_token":token,"token_type":"bearer","expires_in":lifetime,"scope":"all"})
        } else {
            json!({"token":token,"expires_in":lifetime})
        };
        let reply = decode_token_reply(body.to_string().as_bytes(), 1_700_000_000).unwrap();
        prop_assert_eq!(reply.token, token);
        prop_assert_eq!(reply.lifetime, Some(Duration::from_secs(expires_in as u64)));
    }
}
