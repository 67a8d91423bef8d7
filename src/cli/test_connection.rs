//! `haier-sync test-connection`: logs in to both Haier systems, runs one cheap call on each and
//! prints one line per system. It changes nothing on either side.

use crate::config::Config;
use crate::haier::{HaierClient, System};
use anyhow::Context;

/// Checks both systems side by side and prints one line each, e.g.
/// `openplat  OK        123 ms  token + balance: 2 accounts`. `Ok(false)` when either failed:
/// the command then exits non-zero.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let client = HaierClient::new(&config.haier, &config.ylh).context("Failed to build the Haier client")?;
    let (openplat, ylh) = tokio::join!(
        client.check_connection(System::Openplat),
        client.check_connection(System::Ylh)
    );
    println!("{openplat}");
    println!("{ylh}");
    Ok(openplat.outcome.is_ok() && ylh.outcome.is_ok())
}
