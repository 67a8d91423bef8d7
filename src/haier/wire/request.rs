//! Request bodies with Haier's keys (typos and all) and the fixed values they carry. No `Debug`:
//! they carry passwords; logs show them through the redactor only. It sends nothing.

use serde::Serialize;

/// `searchType` of the purchasable-products call.
pub(crate) const SEARCH_TYPE: &str = "PTJSH";
/// `priceType` of the price call.
pub(crate) const PRICE_TYPE: &str = "PT";
/// `source` of the stock call.
pub(crate) const STOCK_SOURCE: &str = "JSH-B";
/// The `system-name` header YLH's token endpoint requires.
pub(crate) const YLH_SYSTEM_NAME: &str = "ylh-open-api";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductsRequest<'a> {
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
pub(crate) struct PricesRequest<'a> {
    pub customer_code: &'a str,
    pub send_to_code: &'a str,
    pub product_codes: &'a [String],
    pub price_type: &'static str,
    #[serde(rename = "passWord")]
    pub password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StockRequest<'a> {
    pub sales_code: &'a str,
    pub sender_code: &'a str,
    pub product_code: &'a str,
    pub county_code: &'a str,
    pub source: &'static str,
    pub seller_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogisticsRequest<'a> {
    pub order_code: &'a str,
    pub seller_code: &'a str,
    pub seller_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BalanceRequest<'a> {
    pub customer_code: &'a str,
    pub customer_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelOrderRequest<'a> {
    pub so_id: &'a str,
    /// Milliseconds since the epoch, as a string.
    pub cancel_time: String,
    pub cancel_reason: &'a str,
    pub source_system: &'a str,
}

/// The reschedule body: Haier's order no. and both times as epoch-ms numbers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RescheduleRequest<'a> {
    pub retail_order_no: &'a str,
    pub distribution_time: i64,
    pub install_time: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryPhotosRequest<'a> {
    pub order_no: &'a str,
}

#[derive(Serialize)]
pub(crate) struct OpenplatTokenRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub grant_type: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let body = serde_json::to_value(RescheduleRequest {
            retail_order_no: "SO.20250430.000001",
            distribution_time: 1_746_115_199_000,
            install_time: 1_746_201_599_000,
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"retailOrderNo":"SO.20250430.000001","distributionTime":1_746_115_199_000i64,
                   "installTime":1_746_201_599_000i64})
        );
        let body = serde_json::to_value(DeliveryPhotosRequest { order_no: "SO.1" }).unwrap();
        assert_eq!(body, json!({"orderNo":"SO.1"}));
    }
}
