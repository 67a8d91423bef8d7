//! Domain types the client returns and takes. Wire types (Haier's keys, typos and all) live in
//! `wire/`; nothing outside `haier/` sees them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One product as the openplat "purchasable products" call describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: String,
    /// Haier has no product name: the model is the display name.
    pub model: String,
    /// The product group (`productGroupNamd` on the wire), used as the category.
    pub group_name: Option<String>,
    pub brand_name: Option<String>,
    pub image_url: Option<String>,
    /// `productLageUrls` on the wire.
    pub leaflet_urls: Vec<String>,
    /// `isSales == "1"`: placed for this customer and purchasable.
    pub is_sales: bool,
    pub no_sales_reason: Option<String>,
}

/// The hash of one listing item's raw bytes (xxh3-128, seeded with the version of the item
/// decoding): items with equal bytes decode to equal products, so an item whose hash the
/// receiver already holds need not be decoded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawHash(pub u128);

impl RawHash {
    /// The 16 bytes kept in the database (big-endian).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The hash kept as [`RawHash::to_bytes`] wrote it; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(u128::from_be_bytes(bytes.try_into().ok()?)))
    }
}

/// The raw hashes of listing items the receiver already holds, each with the receiver's own
/// index for it. An item whose hash is here is handed on as [`ListedItem::Known`], undecoded.
pub type KnownItems = std::collections::HashMap<RawHash, u32>;

/// One item of the full listing as it is handed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedItem {
    /// Its raw hash is in the [`KnownItems`] given: not decoded; the index given with it.
    Known(u32),
    /// Decoded: the product and the hash of the raw bytes it was decoded from.
    Product { product: Product, raw_hash: RawHash },
}

/// One product's supply price as Haier sent it. Decimals keep Haier's scale; nothing is recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub code: String,
    pub supply_price: Option<Decimal>,
    pub invoice_price: Option<Decimal>,
    pub rebate_rate: Option<Decimal>,
    pub rebate_money: Option<Decimal>,
    /// Kept as the text Haier sent: a policy number (0, 1, 2, 5), an old-style rate or a type code.
    pub stock_rebate_policy: Option<String>,
    pub reason: Option<String>,
    pub is_sales: bool,
}

/// One warehouse that can ship a product to a county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    pub sec_code: String,
    pub stock: i64,
    /// `"0"` local warehouse, `"1"` upper-level warehouse.
    pub grade: String,
    /// `timelinessData` as Haier sent it, if present.
    pub timeliness: Option<serde_json::Value>,
}

/// Available stock for one product in one county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub product_code: String,
    pub county_code: String,
    pub warehouses: Vec<Warehouse>,
}

impl StockLevel {
    /// Available stock: the sum over the warehouse list (an empty list means none).
    pub fn total(&self) -> i64 {
        self.warehouses.iter().map(|w| w.stock).sum()
    }

    /// The warehouse to show: the one with the most stock, a grade-0 warehouse winning a tie.
    pub fn shown_warehouse(&self) -> Option<&Warehouse> {
        self.warehouses
            .iter()
            .fold(None, |best: Option<&Warehouse>, w| match best {
                None => Some(w),
                Some(b) if w.stock > b.stock || (w.stock == b.stock && w.grade == "0" && b.grade != "0") => {
                    Some(w)
                }
                Some(b) => Some(b),
            })
    }
}

/// One logistics state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticsEvent {
    pub state_code: String,
    /// `yyyy-MM-dd HH:mm:ss`, Beijing time. Haier sends it in that shape, as a date alone
    /// (read as its midnight) or as epoch milliseconds; the text as sent when it is none of them.
    pub state_time: String,
    pub description: Option<String>,
}

/// What Haier knows about the delivery of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistics {
    pub order_code: String,
    /// The newest state over all three record lists, by the parsed `stateTime`.
    pub latest: Option<LogisticsEvent>,
    /// True when any record carries the state code `DELIVERED`.
    pub delivered: bool,
    pub company_name: Option<String>,
    pub express_no: Option<String>,
    /// The whole `data` object, kept for the record.
    pub raw: serde_json::Value,
}

/// One payer account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub sale_group_code: Option<String>,
    pub sale_group_name: Option<String>,
    pub payer_account_code: Option<String>,
    pub payer_account_name: Option<String>,
    pub balance: Option<Decimal>,
}

/// An order in YLH's push format (the outbox `payload`). Field names are the wire names, since the
/// shop writes this JSON itself. Amounts are passed through untouched as JSON numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub source_system: String,
    pub shop_name: String,
    pub seller_code: String,
    pub consignee_name: String,
    pub consignee_mobile: String,
    pub online_no: String,
    pub so_id: String,
    pub total_qty: i64,
    pub total_amt: serde_json::Number,
    /// Milliseconds since the epoch.
    pub create_time: i64,
    pub province: String,
    pub city: String,
    pub area: String,
    pub detail_address: String,
    /// `"true"` or `"false"`, as a string on the wire.
    pub delivery_install: String,
    pub item_list: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    /// Epoch milliseconds, sent as a JSON number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_time: Option<i64>,
    /// Epoch milliseconds, sent as a JSON number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub government_order: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_code: String,
    pub item_qty: i64,
    pub retail_price: serde_json::Number,
    pub discount_amount: serde_json::Number,
    pub actual_price: serde_json::Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_gift: Option<bool>,
}

/// A request to cancel a pushed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub so_id: String,
    /// Milliseconds since the epoch; sent as a string.
    pub cancel_time_ms: i64,
    pub reason: String,
    /// The `sourceSystem` the order was pushed with (the contract wants the same one);
    /// `None` sends the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
}

/// Where a delivery photo was taken (`scene` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoScene {
    /// `scene: 1`.
    Delivery,
    /// `scene: 2`.
    Installation,
    /// A scene the contract does not name, as Haier sent it.
    Other(String),
}

impl std::fmt::Display for PhotoScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhotoScene::Delivery => f.write_str("delivery"),
            PhotoScene::Installation => f.write_str("installation"),
            PhotoScene::Other(scene) => write!(f, "scene {scene}"),
        }
    }
}

/// One delivery or installation photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub scene: PhotoScene,
    /// `imgDesc`.
    pub description: Option<String>,
    /// `imgUrl`.
    pub url: String,
    pub row_id: Option<String>,
}

/// The photos of one delivery of a Haier order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPhotos {
    /// Haier's order no. (`orderNo`).
    pub order_no: String,
    /// The delivery no. (`orderCode`).
    pub delivery_no: Option<String>,
    /// YLH's own code of the delivery (`ylhOrderCode`, e.g. `SO.20250430.000001.F1`).
    pub ylh_order_code: Option<String>,
    /// `snNo`.
    pub serial_number: Option<String>,
    pub photos: Vec<Photo>,
}

/// One parcel of a Haier order: its delivery record, carrier, express number and the serial
/// numbers of the units in it (one per unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// Haier's order no. (`orderCode`).
    pub order_code: String,
    /// `deliveryRecordCode`; empty when Haier sent none.
    pub delivery_record_code: String,
    /// `logisticsCode`.
    pub carrier_code: Option<String>,
    /// `logisticsName`.
    pub carrier_name: Option<String>,
    /// `expNo`; empty when Haier sent none.
    pub express_no: String,
    /// `barCodes`: one SN per unit.
    pub serial_numbers: Vec<String>,
}

/// Which of Haier's two systems a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Openplat,
    Ylh,
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            System::Openplat => "openplat",
            System::Ylh => "ylh",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(sec: &str, stock: i64, grade: &str) -> Warehouse {
        Warehouse {
            sec_code: sec.into(),
            stock,
            grade: grade.into(),
            timeliness: None,
        }
    }

    #[test]
    fn shown_warehouse_prefers_most_stock_then_grade_zero() {
        let level = StockLevel {
            product_code: "P".into(),
            county_code: "110101".into(),
            warehouses: vec![wh("A", 5, "1"), wh("B", 9, "1"), wh("C", 9, "0"), wh("D", 2, "0")],
        };
        assert_eq!(level.total(), 25);
        assert_eq!(level.shown_warehouse().unwrap().sec_code, "C");
        let empty = StockLevel {
            warehouses: vec![],
            ..level
        };
        assert_eq!(empty.total(), 0);
        assert!(empty.shown_warehouse().is_none());
    }
}
