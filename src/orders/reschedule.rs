//! What an operator asks Haier about one order it has taken (`outbox reschedule`, `outbox
//! photos`): move its delivery and installation dates, and read its delivery and installation
//! photos. Both need Haier's order no. (from the confirm callback): an order without one is
//! refused here, before anything is sent.

use super::outbox::{self, OutboxRow};
use super::state::OutboxStatus;
use crate::db::{self, Db};
use crate::haier::{DeliveryPhotos, HaierClient};
use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde_json::Value;

/// Why an order cannot be asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAsked {
    NotFound,
    /// Haier has not taken the order (no Haier order no. yet, or refused or cancelled).
    NotTaken {
        status: OutboxStatus,
    },
}

impl NotAsked {
    /// A sentence naming the order.
    pub fn describe(&self, so_id: &str) -> String {
        match self {
            NotAsked::NotFound => format!("no outbox order has soId {so_id}"),
            NotAsked::NotTaken { status } => format!(
                "Haier has not taken {so_id} (it is {status}, with no Haier order no. from a confirm callback); \
                 only an order Haier has taken can be rescheduled or has photos"
            ),
        }
    }
}

/// What [`reschedule_order`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rescheduled {
    /// Haier took the new times (epoch ms, 23:59:59 Beijing time); the order's payload has them.
    Done {
        haier_order_no: String,
        distribution_ms: i64,
        install_ms: i64,
    },
    /// Haier answered `data:false`.
    Declined,
    NotAsked(NotAsked),
    /// A time was not given and the order has no old value of it to send again.
    NoOldTime {
        field: &'static str,
    },
}

/// Beijing time, UTC+8 all year.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is within a day of UTC")
}

/// 23:59:59 Beijing time on `date`, as epoch ms: the time of day the reschedule call takes.
fn end_of_beijing_day_ms(date: NaiveDate) -> Option<i64> {
    let local = date.and_hms_opt(23, 59, 59)?;
    Some(local.and_local_timezone(beijing()).single()?.timestamp_millis())
}

/// The Beijing date of a time in the order's payload: epoch ms (a number or digits in a
/// string), `yyyy-MM-dd` or `yyyy-MM-dd HH:mm:ss`.
fn payload_date(value: &Value) -> Option<NaiveDate> {
    let from_ms =
        |ms: i64| DateTime::from_timestamp_millis(ms).map(|at| at.with_timezone(&beijing()).date_naive());
    match value {
        Value::Number(n) => from_ms(n.as_i64()?),
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                return from_ms(text.parse().ok()?);
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().or_else(|| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .map(|t| t.date())
            })
        }
        _ => None,
    }
}

/// The order and its Haier order no., or why it cannot be asked about.
async fn taken_order(db: &Db, so_id: &str) -> anyhow::Result<Result<(OutboxRow, String), NotAsked>> {
    let id = so_id.to_owned();
    let row = db
        .run(move |conn| Ok(outbox::find_by_so_id(conn, &id)?))
        .await
        .context("Failed to read the order")?;
    let Some(row) = row else {
        return Ok(Err(NotAsked::NotFound));
    };
    match &row.haier_order_no {
        Some(no) if OutboxStatus::TRACKED.contains(&row.status) && !no.trim().is_empty() => {
            let no = no.clone();
            Ok(Ok((row, no)))
        }
        _ => Ok(Err(NotAsked::NotTaken { status: row.status })),
    }
}

/// Asks Haier to deliver on `delivery` and install on `install` (each at 23:59:59 Beijing time).
/// A date not given is sent with its old value from the order's payload (moved to 23:59:59 of
/// its day). When Haier takes it, the payload keeps the new times for the next reschedule.
pub async fn reschedule_order(
    db: &Db,
    client: &HaierClient,
    so_id: &str,
    delivery: Option<NaiveDate>,
    install: Option<NaiveDate>,
) -> anyhow::Result<Rescheduled> {
    let (row, haier_order_no) = match taken_order(db, so_id).await? {
        Ok(found) => found,
        Err(not) => return Ok(Rescheduled::NotAsked(not)),
    };
    let mut payload: Value = serde_json::from_str(&row.payload)
        .with_context(|| format!("Failed to read the payload of {so_id} as JSON"))?;
    let date = |given: Option<NaiveDate>, field: &'static str| {
        given
            .or_else(|| payload.get(field).and_then(payload_date))
            .ok_or(field)
    };
    let (delivery, install) = match (date(delivery, "distributionTime"), date(install, "installTime")) {
        (Ok(d), Ok(i)) => (d, i),
        (Err(field), _) | (_, Err(field)) => return Ok(Rescheduled::NoOldTime { field }),
    };
    let out_of_range = |date: NaiveDate| anyhow::anyhow!("{date} cannot be written as epoch milliseconds");
    let distribution_ms = end_of_beijing_day_ms(delivery).ok_or_else(|| out_of_range(delivery))?;
    let install_ms = end_of_beijing_day_ms(install).ok_or_else(|| out_of_range(install))?;
    let accepted = client
        .reschedule(&haier_order_no, distribution_ms, install_ms)
        .await
        .with_context(|| format!("Failed to reschedule {so_id} (Haier order {haier_order_no})"))?;
    if !accepted {
        return Ok(Rescheduled::Declined);
    }
    if let Some(order) = payload.as_object_mut() {
        order.insert("distributionTime".into(), distribution_ms.into());
        order.insert("installTime".into(), install_ms.into());
    }
    let (id, text) = (so_id.to_owned(), payload.to_string());
    db.run(move |conn| {
        use diesel::Connection as _;
        Ok(conn.transaction(|conn| {
            let now = db::now_utc();
            let recorded = outbox::record_reschedule(conn, &id, &text, now)?;
            crate::shop::record(conn, &id, crate::shop::EventSource::Operator, now)?;
            diesel::QueryResult::Ok(recorded)
        })?)
    })
    .await
    .context("Haier took the new times, but they could not be written to the order's payload")?;
    Ok(Rescheduled::Done {
        haier_order_no,
        distribution_ms,
        install_ms,
    })
}

/// The delivery and installation photos of an order Haier has taken.
pub async fn order_photos(
    db: &Db,
    client: &HaierClient,
    so_id: &str,
) -> anyhow::Result<Result<Vec<DeliveryPhotos>, NotAsked>> {
    let haier_order_no = match taken_order(db, so_id).await? {
        Ok((_, no)) => no,
        Err(not) => return Ok(Err(not)),
    };
    let photos = client
        .delivery_photos(&haier_order_no)
        .await
        .with_context(|| format!("Failed to read the photos of {so_id} (Haier order {haier_order_no})"))?;
    Ok(Ok(photos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_date_is_the_last_second_of_its_beijing_day() {
        let date = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
        // 2025-05-01 23:59:59 +08:00 is 15:59:59 UTC.
        assert_eq!(end_of_beijing_day_ms(date), Some(1_746_115_199_000));
    }

    #[test]
    fn payload_times_are_read_in_every_shape_the_shop_writes() {
        let may_first = NaiveDate::from_ymd_opt(2025, 5, 1);
        assert_eq!(payload_date(&json!(1_746_115_199_000i64)), may_first);
        assert_eq!(payload_date(&json!("1746115199000")), may_first);
        assert_eq!(payload_date(&json!("2025-05-01")), may_first);
        assert_eq!(payload_date(&json!("2025-05-01 10:00:00")), may_first);
        // 2025-04-30 20:00 UTC is already May 1st in Beijing.
        assert_eq!(payload_date(&json!(1_746_043_200_000i64)), may_first);
        assert_eq!(payload_date(&json!("soon")), None);
        assert_eq!(payload_date(&Value::Null), None);
    }
}
