//! YLH's operations: the order push (with its duplicate refusal read as "Haier has it", and a
//! refusal after an attempt never seen told apart), the cancel request, and the after-sale calls on
//! an order Haier has taken (reschedule, delivery photos, express and serial numbers), all sent
//! through the shared call path.

use super::call::{encode, require};
use super::client::HaierClient;
use super::error::HaierError;
use super::stats::Operation;
use super::types::{CancelRequest, DeliveryPhotos, Order, Shipment};
use super::wire;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A push refusal that means "Haier already has this soId": the code `DUPLICATE_SOID`, or (real
/// Haier names no code) a message that speaks of a repeat (重复, 已存在), whatever the code.
pub fn is_duplicate_refusal(code: &str, message: &str) -> bool {
    code == "DUPLICATE_SOID" || message.contains("重复") || message.contains("已存在")
}

/// What a push's refusal means: a repeat is [`HaierError::DuplicateSoId`]; any other refusal
/// after an attempt whose outcome was never seen (`unseen_before`) is
/// [`HaierError::RefusedAfterUnseen`]; everything else stays as it came.
fn classify_push_refusal(
    result: Result<(), HaierError>,
    so_id: &str,
    unseen_before: bool,
) -> Result<(), HaierError> {
    match result {
        Err(HaierError::Business { code, message, .. }) if is_duplicate_refusal(&code, &message) => {
            Err(HaierError::DuplicateSoId {
                so_id: so_id.to_owned(),
            })
        }
        Err(HaierError::Business {
            system,
            operation,
            code,
            message,
        }) if unseen_before => Err(HaierError::RefusedAfterUnseen {
            system,
            operation,
            code,
            message,
        }),
        other => other,
    }
}

/// The most Haier order numbers one express-numbers call takes.
pub const MAX_ORDERS_PER_EXPRESS_CALL: usize = 100;

/// True when `ms` is 23:59:59 (to the second) Beijing time, the only time of day the reschedule
/// call takes.
fn is_end_of_beijing_day(ms: i64) -> bool {
    use chrono::Timelike as _;
    chrono::DateTime::from_timestamp_millis(ms).is_some_and(|at| {
        let local = at.with_timezone(&wire::beijing());
        (local.hour(), local.minute(), local.second()) == (23, 59, 59)
    })
}

impl HaierClient {
    /// Pushes an order to YLH. A refusal that means "Haier has it" (a repeat) is
    /// [`HaierError::DuplicateSoId`]; any other refusal after an earlier attempt of this call whose
    /// outcome was never seen is [`HaierError::RefusedAfterUnseen`]: Haier may be answering its
    /// own copy.
    pub async fn push_order(&self, order: &Order) -> Result<(), HaierError> {
        let operation = Operation::OrderPush;
        require(operation, !order.so_id.trim().is_empty(), "the order has no soId")?;
        require(operation, !order.item_list.is_empty(), "the order has no items")?;
        let body = encode(operation, order)?;
        let so_id = order.so_id.clone();
        let unseen = Arc::new(AtomicBool::new(false));
        let result = self
            .inner
            .call_noting_unseen(
                operation,
                &self.inner.ylh_params.push_url,
                body,
                move |data| {
                    if data == Value::Bool(false) {
                        tracing::warn!(%so_id, "YLH answered success with data:false; taken as received");
                    }
                    Ok(())
                },
                Some(Arc::clone(&unseen)),
            )
            .await;
        classify_push_refusal(result, &order.so_id, unseen.load(Ordering::Relaxed))
    }

    /// Asks YLH to cancel a pushed order (or to take back a delivered one: a return goes the
    /// same way), with the `sourceSystem` the order was pushed with when the request names it.
    /// `true` when YLH took the request; the outcome comes later in the cancel callback.
    pub async fn cancel_order(&self, request: &CancelRequest) -> Result<bool, HaierError> {
        let operation = Operation::OrderCancel;
        require(
            operation,
            !request.so_id.trim().is_empty(),
            "the cancel request has no soId",
        )?;
        let body = encode(
            operation,
            &wire::CancelOrderRequest {
                so_id: &request.so_id,
                cancel_time: request.cancel_time_ms.to_string(),
                cancel_reason: &request.reason,
                source_system: request
                    .source_system
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or(&self.inner.ylh_params.source_system),
            },
        )?;
        self.inner
            .call(operation, &self.inner.ylh_params.cancel_url, body, |data| {
                Ok(wire::cancel_accepted_from(&data))
            })
            .await
    }

    /// Asks YLH to move the delivery and installation of an order Haier has taken
    /// (`retail_order_no` is its Haier order no., the confirm's `ExtOrderNo`). Both times are
    /// epoch ms at 23:59:59 Beijing time; a time that does not change is sent with its old value.
    /// `true` when YLH took the change.
    pub async fn reschedule(
        &self,
        retail_order_no: &str,
        distribution_ms: i64,
        install_ms: i64,
    ) -> Result<bool, HaierError> {
        let operation = Operation::OrderReschedule;
        require(
            operation,
            !retail_order_no.trim().is_empty(),
            "the Haier order no. is blank",
        )?;
        for (name, ms) in [("distributionTime", distribution_ms), ("installTime", install_ms)] {
            require(
                operation,
                is_end_of_beijing_day(ms),
                &format!("{name} {ms} is not 23:59:59 Beijing time"),
            )?;
        }
        let body = encode(
            operation,
            &wire::RescheduleRequest {
                retail_order_no,
                distribution_time: distribution_ms,
                install_time: install_ms,
            },
        )?;
        self.inner
            .call(operation, &self.inner.ylh_params.reschedule_url, body, |data| {
                wire::accepted_from(&data)
            })
            .await
    }

    /// The delivery and installation photos of an order Haier has taken (by its Haier order no.).
    pub async fn delivery_photos(&self, order_no: &str) -> Result<Vec<DeliveryPhotos>, HaierError> {
        let operation = Operation::DeliveryPhotos;
        require(
            operation,
            !order_no.trim().is_empty(),
            "the Haier order no. is blank",
        )?;
        let body = encode(operation, &wire::DeliveryPhotosRequest { order_no })?;
        let order_no = order_no.to_owned();
        self.inner
            .call(operation, &self.inner.ylh_params.photos_url, body, move |data| {
                wire::delivery_photos_from(&order_no, data)
            })
            .await
    }

    /// The shipments (carrier, express number, serial numbers) of up to
    /// [`MAX_ORDERS_PER_EXPRESS_CALL`] Haier order numbers, one call. Orders Haier has not
    /// shipped yet have none.
    pub async fn express_and_serials(&self, order_nos: &[String]) -> Result<Vec<Shipment>, HaierError> {
        let operation = Operation::ExpressNumbers;
        require(operation, !order_nos.is_empty(), "no Haier order no. given")?;
        require(
            operation,
            order_nos.len() <= MAX_ORDERS_PER_EXPRESS_CALL,
            &format!(
                "{} Haier order numbers given; one call takes at most {MAX_ORDERS_PER_EXPRESS_CALL}",
                order_nos.len()
            ),
        )?;
        require(
            operation,
            order_nos.iter().all(|no| !no.trim().is_empty()),
            "a Haier order no. is blank",
        )?;
        // The body is a bare JSON array of the order numbers.
        let body = encode(operation, &order_nos)?;
        self.inner
            .call(
                operation,
                &self.inner.ylh_params.express_url,
                body,
                wire::shipments_from,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_second_of_a_beijing_day_is_a_reschedule_time() {
        // 2025-05-01 23:59:59 Beijing is 15:59:59 UTC.
        assert!(is_end_of_beijing_day(1_746_115_199_000));
        assert!(!is_end_of_beijing_day(1_746_115_198_000));
        // 23:59:59 UTC is 07:59:59 the next day in Beijing.
        assert!(!is_end_of_beijing_day(1_746_143_999_000));
        assert!(!is_end_of_beijing_day(i64::MAX));
    }

    use crate::haier::System;

    fn refusal(code: &str, message: &str) -> Result<(), HaierError> {
        Err(HaierError::Business {
            system: System::Ylh,
            operation: "order_push",
            code: code.into(),
            message: message.into(),
        })
    }

    #[test]
    fn a_repeat_is_known_by_its_code_or_its_message() {
        for (code, message) in [
            ("DUPLICATE_SOID", "子订单号重复: SO-1"),
            ("", "子订单号已存在"),
            ("null", "重复推送，请勿重复提交"),
            ("SYSTEM_ERROR", "订单已存在"),
        ] {
            let classified = classify_push_refusal(refusal(code, message), "SO-1", false);
            assert!(
                matches!(&classified, Err(HaierError::DuplicateSoId { so_id }) if so_id == "SO-1"),
                "{code} {message}: {classified:?}"
            );
        }
        assert!(!is_duplicate_refusal("PARAM_MISSING", "缺少必填参数: soId"));
    }

    #[test]
    fn another_refusal_is_final_unless_an_earlier_attempt_was_never_seen() {
        let missing = || refusal("PARAM_MISSING", "缺少必填参数: shopName");
        assert!(matches!(
            classify_push_refusal(missing(), "SO-1", false),
            Err(HaierError::Business { .. })
        ));
        let after_unseen = classify_push_refusal(missing(), "SO-1", true);
        assert!(
            matches!(&after_unseen, Err(HaierError::RefusedAfterUnseen { code, .. }) if code == "PARAM_MISSING"),
            "{after_unseen:?}"
        );
        assert!(!after_unseen.unwrap_err().is_retryable());
        // A repeat after an unseen attempt is still a repeat: Haier has it.
        assert!(matches!(
            classify_push_refusal(refusal("", "子订单号已存在"), "SO-1", true),
            Err(HaierError::DuplicateSoId { .. })
        ));
        assert!(classify_push_refusal(Ok(()), "SO-1", true).is_ok());
    }
}
