//! `haier-sync simulate`: runs the stateful Haier simulator in the foreground until Ctrl-C or
//! SIGTERM. Reading the credentials from `jobs.toml` is the caller's job.

use crate::haier::paths::{ylh_token_path, TOKEN_FALLBACK_PATH, TOKEN_PATH};
use crate::simulator::{
    CancelOutcome, Faults, SimCredentials, SimOptions, Simulator, DEFAULT_CALLBACK_URL, DEFAULT_LISTEN,
};
use anyhow::Context;
use std::net::SocketAddr;

/// Serve a stateful Haier simulator (openplat and YLH) on one loopback address.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on [default: host and port of `[haier] base_url`, else 127.0.0.1:18700]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Seed of the catalog: the same seed always gives the same products, prices and stock
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of purchasable products (a few extra codes not placed for the customer are added)
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub products: usize,

    /// Lifetime of the tokens of both systems, in seconds
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_ttl_secs: u64,

    /// Change some prices and stock levels this often, so incremental syncs find something
    #[arg(long, value_name = "MS")]
    pub mutate_every_ms: Option<u64>,

    /// Where to send confirm and cancel callbacks [default: `[callback] listen` + /haier/callback]
    #[arg(long, value_name = "URL", conflicts_with = "no_callbacks")]
    pub callback_url: Option<String>,

    /// Send no callbacks at all
    #[arg(long)]
    pub no_callbacks: bool,

    /// Delay between a push (or cancel) and its callback; Haier confirms the order then
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub callback_delay_ms: u64,

    /// Time from confirmation until the logistics records reach DELIVERED
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub delivery_after_ms: u64,

    /// Requests per second each system admits; past it, HTTP 429 with Retry-After
    #[arg(long, value_name = "Q", value_parser = parse_qps)]
    pub qps: Option<f64>,

    /// Latency added to every reply
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,

    /// Share of business calls answered 500/502/503, some with a non-JSON body (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub fail_rate: f64,

    /// Share of business calls that never answer within a client's timeout (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub hang_rate: f64,

    /// Make every token issued so far invalid this often, to exercise re-authentication
    #[arg(long, value_name = "MS")]
    pub revoke_tokens_every_ms: Option<u64>,

    /// Refuse a repeated soId as real Haier may: errCode null and only a Chinese message
    /// (子订单号已存在 / 重复推送) instead of DUPLICATE_SOID
    #[arg(long)]
    pub duplicate_message_only: bool,

    /// Share of new orders stored whose reply then hangs past any client timeout (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub lost_reply_hang_rate: f64,

    /// Share of new orders stored but answered HTTP 504, as a gateway that gave up (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub lost_reply_504_rate: f64,
    /// Callbacks name the pushed onlineNo in PlatformOrderNo instead of the soId
    #[arg(long)]
    pub callback_names_online_no: bool,

    /// Retries of an unacknowledged callback keep the TimeStamp (and sign) of the first try
    #[arg(long)]
    pub callback_keep_first_timestamp: bool,

    /// Seconds added to every callback's TimeStamp, as if Haier's clock were off (negative: behind)
    #[arg(long, default_value_t = 0, value_name = "SECS", allow_hyphen_values = true)]
    pub callback_clock_offset_secs: i64,
    /// Give logistics times in all three of Haier's shapes (`yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd`,
    /// epoch ms as a number and as a string), one per state, instead of the first alone
    #[arg(long)]
    pub logistics_time_shapes: bool,
    /// Share of taken orders whose customer refuses some or all units at the door (0 to 1);
    /// Haier reports it, with no cancel asked for, in a cancel callback at delivery
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub door_refusal_rate: f64,

    /// Share of taken orders that get an out-of-stock notice before their confirm (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_rate)]
    pub out_of_stock_rate: f64,

    /// Answer every cancel or return request with this outcome [default: by the order's stage:
    /// not shipped → not_shipped, shipped → intercepted, delivered → return_accepted]
    #[arg(long, value_name = "OUTCOME", value_enum)]
    pub cancel_outcome: Option<CancelOutcome>,
}

impl SimulateArgs {
    /// The simulator options these flags give, with the callback URL already resolved.
    pub fn options(&self, default_callback_url: Option<String>) -> SimOptions {
        let callback_url = if self.no_callbacks {
            None
        } else {
            self.callback_url
                .clone()
                .or(default_callback_url)
                .or_else(|| Some(DEFAULT_CALLBACK_URL.to_owned()))
        };
        SimOptions {
            seed: self.seed,
            products: self.products,
            token_ttl_secs: self.token_ttl_secs,
            mutate_every_ms: self.mutate_every_ms,
            callback_url,
            callback_delay_ms: self.callback_delay_ms,
            delivery_after_ms: self.delivery_after_ms,
            faults: Faults {
                qps: self.qps,
                latency_ms: self.latency_ms,
                fail_rate: self.fail_rate,
                hang_rate: self.hang_rate,
                revoke_tokens_every_ms: self.revoke_tokens_every_ms,
                duplicate_message_only: self.duplicate_message_only,
                lost_reply_hang_rate: self.lost_reply_hang_rate,
                lost_reply_504_rate: self.lost_reply_504_rate,
                callback_names_online_no: self.callback_names_online_no,
                callback_keep_first_timestamp: self.callback_keep_first_timestamp,
                callback_clock_offset_secs: self.callback_clock_offset_secs,
                logistics_time_shapes: self.logistics_time_shapes,
                door_refusal_rate: self.door_refusal_rate,
                out_of_stock_rate: self.out_of_stock_rate,
                cancel_outcome: self.cancel_outcome,
            },
            ..SimOptions::default()
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

fn parse_qps(text: &str) -> Result<f64, String> {
    let qps: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if qps.is_finite() && qps > 0.0 {
        Ok(qps)
    } else {
        Err(format!("{qps} is not above 0"))
    }
}

/// Starts the simulator and serves until Ctrl-C or SIGTERM. `default_listen` is the host and
/// port of `[haier] base_url`; `default_callback_url` is `[callback] listen` with the receiver's
/// path (each falls back to the demo value when `None`).
pub async fn run(
    args: SimulateArgs,
    creds: SimCredentials,
    default_listen: Option<SocketAddr>,
    default_callback_url: Option<String>,
) -> anyhow::Result<()> {
    let listen = match args.listen.or(default_listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .context("Failed to parse the default listen address")?,
    };
    let options = args.options(default_callback_url);
    let callback_url = options.callback_url.clone();
    let sim = Simulator::start(listen, options, creds).await?;
    let base = sim.base_url();
    println!(
        "haier-sync simulator listening on {base} (seed {}, {} products)",
        args.seed, args.products
    );
    println!("  openplat token: POST {base}{TOKEN_PATH} (or {TOKEN_FALLBACK_PATH})");
    println!(
        "  ylh token:      POST {base}{} (also -pre and no suffix)",
        ylh_token_path("-dev")
    );
    match &callback_url {
        Some(url) => println!("  callbacks to:   {url}"),
        None => println!("  callbacks:      off"),
    }
    println!("  inspect:        GET {base}/_sim/stats, GET {base}/_sim/orders, POST {base}/_sim/faults, POST {base}/_sim/reset");
    wait_for_stop_signal().await?;
    println!("stopping the simulator");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("Failed to listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("Failed to listen for Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn flags_become_options_and_callbacks_fall_back_to_the_config() {
        let cli = Cli::parse_from(["x", "--products", "1000", "--qps", "100", "--fail-rate", "0.1"]);
        let options = cli.args.options(Some("http://127.0.0.1:9/cb".into()));
        assert_eq!(options.products, 1000);
        assert_eq!(options.faults.qps, Some(100.0));
        assert_eq!(options.faults.fail_rate, 0.1);
        assert_eq!(options.callback_url.as_deref(), Some("http://127.0.0.1:9/cb"));
        let cli = Cli::parse_from([
            "x",
            "--duplicate-message-only",
            "--lost-reply-hang-rate",
            "0.2",
            "--lost-reply-504-rate",
            "0.1",
        ]);
        let faults = cli.args.options(None).faults;
        assert!(faults.duplicate_message_only);
        assert_eq!(
            (faults.lost_reply_hang_rate, faults.lost_reply_504_rate),
            (0.2, 0.1)
        );
        let cli = Cli::parse_from(["x", "--no-callbacks"]);
        assert_eq!(cli.args.options(None).callback_url, None);
        assert!(Cli::try_parse_from(["x", "--fail-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["x", "--qps", "0"]).is_err());
        let cli = Cli::parse_from([
            "x",
            "--door-refusal-rate",
            "0.2",
            "--cancel-outcome",
            "restocking",
        ]);
        let faults = cli.args.options(None).faults;
        assert_eq!(faults.door_refusal_rate, 0.2);
        assert_eq!(faults.cancel_outcome, Some(CancelOutcome::Restocking));
        assert!(Cli::try_parse_from(["x", "--cancel-outcome", "maybe"]).is_err());
    }

    #[test]
    fn callback_fault_flags_become_faults() {
        let cli = Cli::parse_from([
            "x",
            "--callback-names-online-no",
            "--callback-keep-first-timestamp",
            "--callback-clock-offset-secs",
            "-7200",
        ]);
        let faults = cli.args.options(None).faults;
        assert!(faults.callback_names_online_no && faults.callback_keep_first_timestamp);
        assert_eq!(faults.callback_clock_offset_secs, -7_200);
    }
}
