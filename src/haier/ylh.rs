//! YLH's operations: the order push (with its duplicate refusal read as "Haier has it") and the
//! cancel request, sent through the shared call path.

use super::call::{encode, require};
use super::client::HaierClient;
use super::error::HaierError;
use super::stats::Operation;
use super::types::{CancelRequest, Order};
use super::wire;
use serde_json::Value;

/// A push refusal that means "Haier already has this soId": the code `DUPLICATE_SOID`, or (real
/// Haier names no code) a message that speaks of a repeat (重复, 已存在).
fn is_duplicate_refusal(code: &str, message: &str) -> bool {
    code == "DUPLICATE_SOID" || message.contains("重复") || message.contains("已存在")
}

impl HaierClient {
    /// Pushes an order to YLH. A repeated `soId` is [`HaierError::DuplicateSoId`]: Haier has it.
    pub async fn push_order(&self, order: &Order) -> Result<(), HaierError> {
        let operation = Operation::OrderPush;
        require(operation, !order.so_id.trim().is_empty(), "the order has no soId")?;
        require(operation, !order.item_list.is_empty(), "the order has no items")?;
        let body = encode(operation, order)?;
        let so_id = order.so_id.clone();
        let result = self
            .inner
            .call(operation, &self.inner.ylh_params.push_url, body, move |data| {
                if data == Value::Bool(false) {
                    tracing::warn!(%so_id, "YLH answered success with data:false; taken as received");
                }
                Ok(())
            })
            .await;
        match result {
            Err(HaierError::Business { code, message, .. }) if is_duplicate_refusal(&code, &message) => {
                Err(HaierError::DuplicateSoId {
                    so_id: order.so_id.clone(),
                })
            }
            other => other,
        }
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
}
