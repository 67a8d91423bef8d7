//! YLH's after-sale replies into domain types: the reschedule answer, delivery and installation
//! photos, and express numbers with serial numbers. Read leniently (numbers as strings, unknown
//! fields ignored), but a payload of the wrong shape is an error, never an empty list.

use super::super::types::{DeliveryPhotos, Photo, PhotoScene, Shipment};
use super::lenient::{self, list_of, to_bool};
use serde::Deserialize;
use serde_json::Value;

/// A yes/no answer (`data:true|false`, lenient); null counts as yes, as the push and cancel
/// take it. An object or a list is not an answer.
pub(crate) fn accepted_from(data: &Value) -> Result<bool, String> {
    match data {
        Value::Null => Ok(true),
        Value::Array(_) | Value::Object(_) => Err(format!("expected true or false, got {data}")),
        other => to_bool(other).ok_or_else(|| format!("expected true or false, got {other}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryImgWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    order_no: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    order_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    ylh_order_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    sn_no: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    photos_delivery: Vec<PhotoWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhotoWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    img_desc: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    img_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    row_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    scene: Option<String>,
}

fn scene_of(text: Option<String>) -> PhotoScene {
    match text.as_deref().map(str::trim) {
        Some("1") => PhotoScene::Delivery,
        Some("2") => PhotoScene::Installation,
        other => PhotoScene::Other(other.unwrap_or_default().to_owned()),
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The photos payload: a list of deliveries, each with its photos. A photo without a URL is
/// dropped; a delivery without `orderNo` is taken as the order asked about.
pub(crate) fn delivery_photos_from(order_no: &str, data: Value) -> Result<Vec<DeliveryPhotos>, String> {
    Ok(list_of::<DeliveryImgWire>(data)?
        .into_iter()
        .map(|d| DeliveryPhotos {
            order_no: non_empty(d.order_no).unwrap_or_else(|| order_no.to_owned()),
            delivery_no: non_empty(d.order_code),
            ylh_order_code: non_empty(d.ylh_order_code),
            serial_number: non_empty(d.sn_no),
            photos: d
                .photos_delivery
                .into_iter()
                .filter_map(|p| {
                    Some(Photo {
                        url: non_empty(p.img_url)?,
                        scene: scene_of(p.scene),
                        description: non_empty(p.img_desc),
                        row_id: non_empty(p.row_id),
                    })
                })
                .collect(),
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoreLogisticsWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    order_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    delivery_record_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    logistics_list: Vec<ParcelWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParcelWire {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    logistics_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    logistics_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    exp_no: Option<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    bar_codes: Vec<String>,
}

/// The express-numbers payload: one [`Shipment`] per parcel of every delivery record. A record
/// without `orderCode` cannot be told apart from the others of the batch: an error. A record
/// with no parcel yet gives no shipment.
pub(crate) fn shipments_from(data: Value) -> Result<Vec<Shipment>, String> {
    let mut shipments = Vec::new();
    for record in list_of::<StoreLogisticsWire>(data)? {
        let order_code =
            non_empty(record.order_code).ok_or_else(|| "a delivery record has no `orderCode`".to_owned())?;
        let delivery_record_code = non_empty(record.delivery_record_code).unwrap_or_default();
        for parcel in record.logistics_list {
            shipments.push(Shipment {
                order_code: order_code.clone(),
                delivery_record_code: delivery_record_code.clone(),
                carrier_code: non_empty(parcel.logistics_code),
                carrier_name: non_empty(parcel.logistics_name),
                express_no: non_empty(parcel.exp_no).unwrap_or_default(),
                serial_numbers: parcel
                    .bar_codes
                    .into_iter()
                    .map(|sn| sn.trim().to_owned())
                    .filter(|sn| !sn.is_empty())
                    .collect(),
            });
        }
    }
    Ok(shipments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reschedule_answers_are_lenient_booleans_but_not_objects() {
        assert_eq!(accepted_from(&json!(true)), Ok(true));
        assert_eq!(accepted_from(&json!("false")), Ok(false));
        assert_eq!(accepted_from(&json!(0)), Ok(false));
        assert_eq!(accepted_from(&Value::Null), Ok(true));
        assert!(accepted_from(&json!({"ok": true})).is_err());
        assert!(accepted_from(&json!([])).is_err());
        assert!(accepted_from(&json!("maybe")).is_err());
    }

    #[test]
    fn photos_read_scenes_and_drop_photos_without_a_url() {
        let data = json!([{
            "orderNo": "SO.20250430.000001", "orderCode": 880001, "ylhOrderCode": "SO.20250430.000001.F1",
            "snNo": "SN1", "somethingNew": 1,
            "photosDelivery": [
                {"imgDesc": "签收照片", "imgUrl": "http://img/1.jpg", "rowId": 7, "scene": 1},
                {"imgDesc": "安装照片", "imgUrl": "http://img/2.jpg", "scene": "2"},
                {"imgDesc": "no url", "scene": 1},
                {"imgUrl": "http://img/3.jpg", "scene": 9}
            ]
        }, {"photosDelivery": null}]);
        let found = delivery_photos_from("SO.20250430.000001", data).unwrap();
        assert_eq!(found.len(), 2);
        let first = &found[0];
        assert_eq!(first.delivery_no.as_deref(), Some("880001"));
        assert_eq!(first.serial_number.as_deref(), Some("SN1"));
        let scenes: Vec<String> = first.photos.iter().map(|p| p.scene.to_string()).collect();
        assert_eq!(scenes, ["delivery", "installation", "scene 9"]);
        assert_eq!(first.photos[0].row_id.as_deref(), Some("7"));
        assert_eq!(found[1].order_no, "SO.20250430.000001");
        assert!(found[1].photos.is_empty());
        assert!(delivery_photos_from("SO", Value::Null).unwrap().is_empty());
        assert!(delivery_photos_from("SO", json!("[]")).is_err());
    }

    #[test]
    fn shipments_have_one_row_per_parcel_with_its_serial_numbers() {
        let data = json!([
            {"orderCode": "SO.1", "deliveryRecordCode": "DR1", "logisticsList": [
                {"logisticsCode": "RRS", "logisticsName": "日日顺物流", "expNo": "RRS1", "barCodes": ["SN1", "SN2"]},
                {"logisticsCode": "SF", "logisticsName": "顺丰", "expNo": 12345, "barCodes": "SN3"}
            ]},
            {"orderCode": "SO.2", "deliveryRecordCode": null, "logisticsList": []},
            {"orderCode": "SO.3", "logisticsList": {"expNo": "E3", "barCodes": null}}
        ]);
        let shipments = shipments_from(data).unwrap();
        assert_eq!(shipments.len(), 3);
        assert_eq!(shipments[0].serial_numbers, ["SN1", "SN2"]);
        assert_eq!(shipments[1].express_no, "12345");
        assert_eq!(shipments[1].serial_numbers, ["SN3"]);
        assert_eq!(shipments[2].order_code, "SO.3");
        assert_eq!(shipments[2].delivery_record_code, "");
        assert!(shipments[2].serial_numbers.is_empty());
        assert!(shipments_from(json!([{"logisticsList": []}])).is_err());
        assert!(shipments_from(json!(7)).is_err());
        assert!(shipments_from(Value::Null).unwrap().is_empty());
    }
}
