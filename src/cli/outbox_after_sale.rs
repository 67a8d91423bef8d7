//! `haier-sync outbox reschedule` and `outbox photos`: the after-sale questions an operator asks
//! Haier about one order it has taken. `crate::orders::reschedule` does the work; this parses
//! dates and prints.

use crate::config::Config;
use crate::db::Db;
use crate::haier::DeliveryPhotos;
use crate::orders::reschedule::{order_photos, reschedule_order, Rescheduled};
use anyhow::Context as _;
use chrono::NaiveDate;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

/// Reads a `YYYY-MM-DD` date.
pub(super) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date in the form YYYY-MM-DD (e.g. 2026-12-24)"))
}

/// An epoch-ms time as `yyyy-MM-dd HH:mm:ss` Beijing time.
fn beijing_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| {
            at.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub(super) async fn reschedule(
    db: &Db,
    config: &Config,
    so_id: &str,
    delivery: NaiveDate,
    install: Option<NaiveDate>,
) -> anyhow::Result<i32> {
    let client = crate::quota::shared_client(config, db).context("Failed to build the Haier client")?;
    match reschedule_order(db, &client, so_id, Some(delivery), install).await? {
        Rescheduled::Done {
            haier_order_no,
            distribution_ms,
            install_ms,
        } => {
            println!(
                "Haier took the new dates of {so_id} (Haier order {haier_order_no}): delivery {}, installation {} (Beijing time)",
                beijing_text(distribution_ms),
                beijing_text(install_ms)
            );
            Ok(0)
        }
        Rescheduled::Declined => {
            eprintln!("error: Haier declined to reschedule {so_id}");
            Ok(1)
        }
        Rescheduled::NotAsked(not) => {
            eprintln!("error: {}", not.describe(so_id));
            Ok(1)
        }
        Rescheduled::NoOldTime { field } => {
            eprintln!("error: {so_id} has no {field} in its payload to send again; give --install DATE");
            Ok(1)
        }
    }
}

pub(super) async fn photos(db: &Db, config: &Config, so_id: &str, json: bool) -> anyhow::Result<i32> {
    let client = crate::quota::shared_client(config, db).context("Failed to build the Haier client")?;
    match order_photos(db, &client, so_id).await? {
        Ok(deliveries) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&deliveries)?);
            } else {
                print!("{}", render_photos(so_id, &deliveries));
            }
            Ok(0)
        }
        Err(not) => {
            eprintln!("error: {}", not.describe(so_id));
            Ok(1)
        }
    }
}

fn render_photos(so_id: &str, deliveries: &[DeliveryPhotos]) -> String {
    if deliveries.iter().all(|d| d.photos.is_empty()) {
        return format!("no photos of {so_id} yet\n");
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["scene", "description", "URL", "delivery no", "SN"]);
    for delivery in deliveries {
        for photo in &delivery.photos {
            table.add_row([
                photo.scene.to_string(),
                photo.description.clone().unwrap_or_default(),
                photo.url.clone(),
                delivery.delivery_no.clone().unwrap_or_default(),
                delivery.serial_number.clone().unwrap_or_default(),
            ]);
        }
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_as_year_month_day_only() {
        assert_eq!(
            parse_date("2026-12-24"),
            Ok(NaiveDate::from_ymd_opt(2026, 12, 24).unwrap())
        );
        for bad in ["24.12.2026", "2026-13-01", "2026-12-24 10:00:00", ""] {
            assert!(parse_date(bad).unwrap_err().contains("YYYY-MM-DD"), "{bad}");
        }
        assert_eq!(beijing_text(1_746_115_199_000), "2025-05-01 23:59:59");
    }
}
