//! The callback receiver over HTTP: signature, app key and data checks; what each
//! callback does to an outbox order; replays; every callback stored.

use crate::support::*;
use chrono::{Duration, Utc};
use haier_sync::orders::notices::{METHOD_CANCEL, METHOD_CONFIRM, METHOD_OUT_OF_STOCK};
use haier_sync::orders::{CallbackOutcome, CancelState, OutboxStatus};

const CONFIRM_SO1: &str =
    r#"{"ExtOrderNo":"SO.20261124.000001","PlatformOrderNo":"SO-1","State":1,"FailMsg":""}"#;

/// An app with its receiver, and one order (`SO-1`) in the outbox.
async fn setup() -> TestApp {
    let app = spawn_app_with(Options::default().callbacks(Callbacks::InProcess)).await;
    insert_by_sql(app.db(), "SO-1", "ON-1", &order_json("SO-1", &["P1"])).await;
    app
}

#[tokio::test]
async fn a_confirm_sets_confirmed_once_even_when_sent_twice() {
    let app = setup().await;
    let receiver = app.receiver();
    let form = signed_form(METHOD_CONFIRM, CONFIRM_SO1, Utc::now(), APP_KEY, SECRET);
    let (status, reply) = post_form(&receiver.callback_url(), &form).await;
    assert_eq!(status, 200);
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(reply["code"], "success");
    assert_eq!(reply["data"]["statusCode"], 200);
    assert_eq!(reply["data"]["platformOrderNo"], "SO-1");

    let confirmed = row(app.db(), "SO-1").await;
    assert_eq!(confirmed.status, OutboxStatus::Confirmed);
    assert_eq!(confirmed.haier_order_no.as_deref(), Some("SO.20261124.000001"));
    assert!(confirmed.confirmed_at.is_some());

    // Haier sends it again (a new time stamp and sign, the same data): success, no change.
    let again = signed_form(
        METHOD_CONFIRM,
        CONFIRM_SO1,
        Utc::now() + Duration::seconds(1),
        APP_KEY,
        SECRET,
    );
    let (status, reply) = post_form(&receiver.callback_url(), &again).await;
    assert_eq!((status, reply["success"].clone()), (200, true.into()));
    let after = row(app.db(), "SO-1").await;
    assert_eq!(
        after.confirmed_at, confirmed.confirmed_at,
        "a replay changes nothing"
    );

    let events = events(app.db()).await;
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["applied", "duplicate"]);
    assert_eq!(events[0].so_id.as_deref(), Some("SO-1"));
    assert_eq!(events[0].state.as_deref(), Some("1"));
    assert!(events[0].raw.contains("SO.20261124.000001"));
    assert_eq!(events[0].fingerprint, events[1].fingerprint);
}

#[tokio::test]
async fn bad_callbacks_change_nothing_and_get_a_failure_reply() {
    let app = setup().await;
    let receiver = app.receiver();
    let now = Utc::now();
    let cases = [
        (
            "wrong signature",
            signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, APP_KEY, "not-the-secret"),
            "bad_sign",
        ),
        (
            "wrong AppKey",
            signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, "other-app", SECRET),
            "unknown_app_key",
        ),
        (
            "malformed Data",
            signed_form(
                METHOD_CONFIRM,
                r#"{"PlatformOrderNo":"SO-1","State":"#,
                now,
                APP_KEY,
                SECRET,
            ),
            "malformed_data",
        ),
        (
            "Data without State",
            signed_form(
                METHOD_CONFIRM,
                r#"{"PlatformOrderNo":"SO-1"}"#,
                now,
                APP_KEY,
                SECRET,
            ),
            "malformed_data",
        ),
    ];
    for (what, form, code) in &cases {
        let (status, reply) = post_form(&receiver.callback_url(), form).await;
        assert_eq!(status, 200, "{what}");
        assert_eq!(reply["success"], false, "{what}: {reply}");
        assert_eq!(reply["code"], *code, "{what}: {reply}");
        assert!(
            !reply.to_string().contains(SECRET),
            "{what}: the reply names the secret"
        );
    }
    let order = row(app.db(), "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Pending);
    assert_eq!(order.haier_order_no, None);
    let events = events(app.db()).await;
    assert_eq!(events.len(), cases.len(), "every callback is stored");
    assert!(events
        .iter()
        .all(|e| e.outcome == CallbackOutcome::Rejected && e.so_id.is_none()));
    assert!(events
        .iter()
        .all(|e| e.detail.as_deref().is_some_and(|d| !d.contains(SECRET))));

    // The right one still applies afterwards.
    let (_, reply) = post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true);
    assert_eq!(row(app.db(), "SO-1").await.status, OutboxStatus::Confirmed);
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_recorded() {
    let app = spawn_app_with(
        Options::default()
            .callbacks(Callbacks::InProcess)
            .set("callback.max_body_bytes", 1024),
    )
    .await;
    let receiver = app.receiver();
    let big = format!(
        r#"{{"PlatformOrderNo":"SO-1","State":1,"ExtOrderNo":"X","FailMsg":"{}"}}"#,
        "x".repeat(2_000)
    );
    let (status, reply) = post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, &big, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(reply["success"], false);
    assert_eq!(reply["code"], "body_too_large");
    let events = events(app.db()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, CallbackOutcome::Rejected);
}

#[tokio::test]
async fn a_refusal_sets_refused_with_the_fail_message() {
    let app = setup().await;
    let receiver = app.receiver();
    let data = r#"{"ExtOrderNo":"","PlatformOrderNo":"SO-1","State":0,"FailMsg":"商品不可采（未投放或不存在）: P1"}"#;
    let (_, reply) = post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, data, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true);
    let order = row(app.db(), "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Refused);
    assert_eq!(
        order.last_error.as_deref(),
        Some("refused by Haier: 商品不可采（未投放或不存在）: P1")
    );
}

#[tokio::test]
async fn an_order_is_found_by_online_no_when_no_so_id_matches() {
    let app = setup().await;
    let receiver = app.receiver();
    let data = r#"{"ExtOrderNo":"SO.20261124.000009","PlatformOrderNo":"ON-1","State":1}"#;
    let (_, reply) = post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, data, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(
        row(app.db(), "SO-1").await.haier_order_no.as_deref(),
        Some("SO.20261124.000009")
    );
}

#[tokio::test]
async fn a_callback_for_an_unknown_order_is_kept_as_unmatched_and_refused() {
    let app = setup().await;
    let receiver = app.receiver();
    let data = r#"{"ExtOrderNo":"X","PlatformOrderNo":"SO-404","State":1}"#;
    let (_, reply) = post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, data, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], false);
    assert_eq!(reply["code"], "unmatched");
    assert_eq!(
        reply["description"],
        "no order has soId SO-404; none has Haier order no. X; none has onlineNo SO-404"
    );
    let events = events(app.db()).await;
    assert_eq!(events[0].outcome, CallbackOutcome::Unmatched);
    assert_eq!(events[0].ext_order_no.as_deref(), Some("X"));
    assert_eq!(events[0].platform_order_no.as_deref(), Some("SO-404"));
    assert_eq!(row(app.db(), "SO-1").await.status, OutboxStatus::Pending);
}

#[tokio::test]
async fn cancels_and_out_of_stock_notices_are_recorded() {
    let app = setup().await;
    // Two item lines of one product: one line of two units.
    insert_by_sql(app.db(), "SO-2", "ON-2", &order_json("SO-2", &["P1", "P1"])).await;
    let receiver = app.receiver();
    let url = receiver.callback_url();
    post_form(
        &url,
        &signed_form(METHOD_CONFIRM, CONFIRM_SO1, Utc::now(), APP_KEY, SECRET),
    )
    .await;

    let oos = r#"{"ExtOrderNo":"SO.20261124.000001","PlatformOrderNo":"SO-1","State":1,"FailMsg":"缺货"}"#;
    let (_, reply) = post_form(
        &url,
        &signed_form(METHOD_OUT_OF_STOCK, oos, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true);
    let order = row(app.db(), "SO-1").await;
    assert!(order.out_of_stock_at.is_some());
    assert_eq!(order.status, OutboxStatus::OutOfStock);

    let partial = r#"{"ExtOrderNo":"SO.20261124.000002","PlatformOrderNo":"SO-2","State":2,"itemList":[{"productCode":"P1","totalQty":2,"receiveQty":1,"returnQty":0,"rejectQty":1}]}"#;
    let (_, reply) = post_form(
        &url,
        &signed_form(METHOD_CANCEL, partial, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true, "{reply}");
    let order = row(app.db(), "SO-2").await;
    assert_eq!(
        order.status,
        OutboxStatus::Pending,
        "a partial cancel keeps the status"
    );
    assert_eq!(order.cancel_state, Some(CancelState::PartlyCancelled));
    assert_eq!(
        order.cancel_detail.as_deref(),
        Some("P1: 2 ordered, 1 received, 1 refused, 0 returned")
    );

    let full = r#"{"ExtOrderNo":"SO.20261124.000002","PlatformOrderNo":"SO-2","State":1,"FailMsg":""}"#;
    let (_, reply) = post_form(
        &url,
        &signed_form(METHOD_CANCEL, full, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(reply["success"], true);
    let order = row(app.db(), "SO-2").await;
    assert_eq!(
        order.status,
        OutboxStatus::Returned,
        "one unit was received: the order is returned"
    );
    assert_eq!(order.cancel_state, Some(CancelState::Returned));

    // A cancel of the out-of-stock order with no itemList cancels it whole.
    let cancel_so1 = r#"{"ExtOrderNo":"SO.20261124.000001","PlatformOrderNo":"SO-1","State":1,"FailMsg":""}"#;
    post_form(
        &url,
        &signed_form(METHOD_CANCEL, cancel_so1, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    let order = row(app.db(), "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Cancelled);
    assert_eq!(order.cancel_state, Some(CancelState::Full));

    // A late copy of the first confirm does not undo the cancel.
    post_form(
        &url,
        &signed_form(METHOD_CONFIRM, CONFIRM_SO1, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    assert_eq!(row(app.db(), "SO-1").await.status, OutboxStatus::Cancelled);
    let outcomes: Vec<String> = events(app.db())
        .await
        .into_iter()
        .map(|e| e.outcome.to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["applied", "applied", "applied", "applied", "applied", "duplicate"]
    );
}

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let app = setup().await;
    let receiver = app.receiver();
    let health = reqwest::get(format!("{}/healthz", receiver.base_url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    post_form(
        &receiver.callback_url(),
        &signed_form(METHOD_CONFIRM, CONFIRM_SO1, Utc::now(), APP_KEY, SECRET),
    )
    .await;
    let metrics = reqwest::get(format!("{}/metrics", receiver.base_url))
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("haier_order_outbox_rows{status=\"confirmed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("haier_order_outbox_rows{status=\"pending\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("haier_sync_callbacks_total{outcome=\"applied\"} 1"),
        "{text}"
    );
    drop(app);
}
