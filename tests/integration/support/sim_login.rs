//! A YLH token straight from the simulator, for tests that call its endpoints by hand.

use haier_sync::haier::paths;
use haier_sync::simulator::SimHandle;
use reqwest::StatusCode;
use serde_json::Value;

/// Logs in to the simulator's YLH with the demo credentials (`suffix` picks the environment:
/// `-dev`, `-pre` or none) and returns the bearer token.
pub async fn ylh_token(client: &reqwest::Client, sim: &SimHandle, suffix: &str) -> String {
    let reply = client
        .post(format!("{}{}", sim.base_url(), paths::ylh_token_path(suffix)))
        .basic_auth("demo-ylh-client", Some("demo-ylh-secret"))
        .header("system-name", "ylh-open-api")
        .form(&[
            ("grant_type", "password"),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    body["access_token"].as_str().unwrap().to_owned()
}
