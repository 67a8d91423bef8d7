//! The logistics reply (`getAllLogisticsInfoByOrderCode`, 智汇宝's and the couriers' lists) into
//! [`Logistics`]: every state of the three lists, the newest by its parsed time in any of Haier's
//! three time shapes, and whether any says `DELIVERED`. A payload of the wrong shape is an error.

use super::super::types::{Logistics, LogisticsEvent};
use super::lenient;
use super::times::{format_beijing_time, parse_beijing_time};
use serde::Deserialize;
use serde_json::Value;

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

/// The three lists of the logistics payload.
const LOGISTICS_LISTS: [&str; 3] = [
    "getAllLogisticsInfoByOrderCode",
    "getStockDeliveryLogisticsRecord",
    "getStockDeliveryLogisticsRecordThirdparty",
];

/// The logistics payload: every state from the three record lists, the newest by its parsed
/// `stateTime` (any of Haier's three time shapes), whether any says `DELIVERED`, and the first
/// carrier and tracking number found. Null or `{}` is "nothing known yet"; a list, a scalar or an
/// object with none of the three lists is not a logistics reply: an error, never "no news".
pub(crate) fn logistics_from(order_code: &str, data: Value) -> Result<Logistics, String> {
    let wire: LogisticsWire = match &data {
        Value::Null => LogisticsWire::default(),
        Value::Object(map) if map.is_empty() => LogisticsWire::default(),
        Value::Object(map) if LOGISTICS_LISTS.iter().any(|k| map.contains_key(*k)) => {
            serde_json::from_value(data.clone()).map_err(|e| e.to_string())?
        }
        Value::Object(_) => {
            return Err(format!(
                "the logistics reply has none of {}",
                LOGISTICS_LISTS.join(", ")
            ))
        }
        other => return Err(format!("expected the logistics object, got {other}")),
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
                .map(|s| event(s.state_code, &s.state_time, s.state_description)),
        );
    }
    for state in wire.zhihuibao.into_iter().flat_map(|r| r.logistics_info) {
        events.push(event(
            state.status_code,
            &state.state_time,
            state.state_description,
        ));
    }
    for courier in wire.couriers.into_iter().flat_map(|c| c.logistics_no_list) {
        company_name = company_name.or(courier.logistics_name.filter(|s| !s.is_empty()));
        express_no = express_no.or(courier.logistics_no.filter(|s| !s.is_empty()));
        events.extend(
            courier
                .logistics_info
                .into_iter()
                .map(|n| event(n.node_name, &n.state_time, n.context)),
        );
    }
    let delivered = events
        .iter()
        .any(|(_, e)| e.state_code.trim().eq_ignore_ascii_case(DELIVERED));
    let latest = events
        .into_iter()
        .max_by(|a, b| event_time_key(a).cmp(&event_time_key(b)))
        .map(|(_, e)| e);
    Ok(Logistics {
        order_code: order_code.to_owned(),
        latest,
        delivered,
        company_name,
        express_no,
        raw: data,
    })
}

/// One event with its parsed time; its `state_time` in the stored shape when it parses.
fn event(
    state_code: String,
    state_time: &str,
    description: Option<String>,
) -> (Option<chrono::NaiveDateTime>, LogisticsEvent) {
    let at = parse_beijing_time(state_time);
    let state_time = at.map_or_else(|| state_time.trim().to_owned(), format_beijing_time);
    (
        at,
        LogisticsEvent {
            state_code,
            state_time,
            description,
        },
    )
}

/// Orders events by their parsed time (unparsable times sort first); within the same second a
/// `DELIVERED` state is the newest, since nothing follows a delivery.
fn event_time_key(
    (at, event): &(Option<chrono::NaiveDateTime>, LogisticsEvent),
) -> (Option<chrono::NaiveDateTime>, bool, &str) {
    (
        *at,
        event.state_code.trim().eq_ignore_ascii_case(DELIVERED),
        event.state_time.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::envelope::{open_envelope, Envelope};
    use super::*;
    use serde_json::json;

    fn data(body: Value) -> Value {
        match open_envelope(body.to_string().as_bytes()).unwrap() {
            Envelope::Data(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
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
        let l = logistics_from("SO2", json!({})).unwrap();
        assert!(l.latest.is_none() && !l.delivered);

        // Within one second, the delivery is the newest state, wherever it is listed.
        let d = json!({"getStockDeliveryLogisticsRecordThirdparty":[{"logisticsNoList":[{"logisticsInfo":[
                {"nodeName":"DELIVERED","context":"签收","stateTime":"2026-01-03 18:30:00"},
                {"nodeName":"IN_TRANSIT","context":"运输中","stateTime":"2026-01-03 18:30:00"}]}]}]});
        let l = logistics_from("SO3", d).unwrap();
        assert_eq!(l.latest.unwrap().state_code, "DELIVERED");
    }

    #[test]
    fn logistics_events_order_by_parsed_time_across_the_three_shapes() {
        // By text, "2025-07-01" sorts last; by time, the epoch-ms event (08:00 Beijing on
        // 2025-07-02, as a number and as a string) is the newest.
        let d = json!({"getAllLogisticsInfoByOrderCode":[{"getStoreOutboundLogisticsInfoResultDto":[{
                "deliveryLogisticsDtos":[
                    {"stateCode":"ACCEPTED","stateTime":"2025-07-01"},
                    {"stateCode":"OUTBOUND","stateTime":"2025-07-01 09:00:00"}]}]}],
            "getStockDeliveryLogisticsRecord":[{"logisticsInfo":[
                {"statusCode":"IN_TRANSIT","stateTime":1751414400000i64}]}],
            "getStockDeliveryLogisticsRecordThirdparty":[{"logisticsNoList":[{"logisticsInfo":[
                {"nodeName":"SORTED","stateTime":"1751400000000"}]}]}]});
        let l = logistics_from("SO", d).unwrap();
        let latest = l.latest.unwrap();
        assert_eq!(latest.state_code, "IN_TRANSIT");
        assert_eq!(latest.state_time, "2025-07-02 08:00:00");
        // Alone, the date is read as its midnight and stored in the same shape.
        let d = json!({"getStockDeliveryLogisticsRecord":[{"logisticsInfo":[
            {"statusCode":"A","stateTime":"2025-07-01"},{"statusCode":"B","stateTime":"2025-06-30 23:00:00"}]}]});
        let latest = logistics_from("SO", d).unwrap().latest.unwrap();
        assert_eq!(
            (latest.state_code.as_str(), latest.state_time.as_str()),
            ("A", "2025-07-01 00:00:00")
        );
        // A time in no known shape is kept as sent, and sorts before any parsed one.
        let d = json!({"getStockDeliveryLogisticsRecord":[{"logisticsInfo":[
            {"statusCode":"ODD","stateTime":"yesterday"},{"statusCode":"B","stateTime":"2020-01-01"}]}]});
        assert_eq!(logistics_from("SO", d).unwrap().latest.unwrap().state_code, "B");
    }

    #[test]
    fn a_logistics_payload_of_the_wrong_shape_is_an_error() {
        for broken in [
            json!([]),
            json!([{"stateCode":"DELIVERED"}]),
            json!("x"),
            json!(3),
            json!(true),
            json!({"records":[],"total":0}),
        ] {
            assert!(logistics_from("SO", broken.clone()).is_err(), "{broken}");
        }
    }
}
