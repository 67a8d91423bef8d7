//! `haier_sync_logs` and `haier_sync_instances` rows as tests read and plant them: a job's rows,
//! rows another process left behind, and instance names.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use haier_sync::db::{self, instances, Db};
use haier_sync::runs::log as sync_logs;
use haier_sync::runs::{RunStatus, SyncType, Trigger};

/// A pid no process can have (above Linux's largest pid_max, 2^22).
pub const DEAD_PID: u32 = 4_194_305;

/// The job's rows, by tick then id.
pub async fn rows(db: &Db, job: &str) -> Vec<sync_logs::SyncLog> {
    let job = job.to_owned();
    let mut rows = db
        .run(move |c| {
            Ok(sync_logs::list(
                c,
                &sync_logs::LogFilter {
                    job_name: Some(job),
                    limit: 10_000,
                    ..Default::default()
                },
            )?)
        })
        .await
        .unwrap();
    rows.sort_by_key(|r| (r.scheduled_for, r.id));
    rows
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// A `running` row that another process left behind, with the counts it had reached.
pub async fn orphan_row(db: &Db, job: &str, instance: &str, scheduled_for: NaiveDateTime, success: i64) {
    let (job, instance) = (job.to_owned(), instance.to_owned());
    db.run(move |c| {
        let now = db::now_utc();
        sync_logs::insert(
            c,
            &sync_logs::NewSyncLog {
                job_name: &job,
                sync_type: SyncType::Stock,
                status: RunStatus::Running,
                message: None,
                total_count: 20,
                success_count: success,
                failed_count: 0,
                started_at: now,
                completed_at: None,
                created_at: now,
                scheduled_for: Some(scheduled_for),
                trigger: Trigger::Schedule,
                instance: &instance,
            },
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// A finished row of `status` for a tick.
pub async fn finished_row(db: &Db, job: &str, scheduled_for: NaiveDateTime, status: RunStatus) {
    let job = job.to_owned();
    db.run(move |c| {
        let now = db::now_utc();
        sync_logs::insert(
            c,
            &sync_logs::NewSyncLog {
                job_name: &job,
                sync_type: SyncType::Stock,
                status,
                message: None,
                total_count: 1,
                success_count: 1,
                failed_count: 0,
                started_at: now,
                completed_at: Some(now),
                created_at: now,
                scheduled_for: Some(scheduled_for),
                trigger: Trigger::Schedule,
                instance: "old-host:1",
            },
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// Registers a daemon instance with a heartbeat `age` old.
pub async fn instance_row(db: &Db, instance: &str, age: chrono::Duration) {
    let instance = instance.to_owned();
    db.run(move |c| {
        let at = db::now_utc() - age;
        let (host, pid) = instance.rsplit_once(':').unwrap();
        instances::register(
            c,
            &instances::Instance {
                instance: instance.clone(),
                hostname: host.to_owned(),
                pid: pid.parse().unwrap(),
                version: "0".into(),
                started_at: at,
                heartbeat_at: at,
                stopped_at: None,
                client_stats: None,
                config_hash: None,
            },
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// This host's name as it appears in `instance` columns.
pub fn this_host() -> String {
    let me = db::instance_name();
    me.rsplit_once(':').unwrap().0.to_owned()
}

/// The `instance` of the process `pid` on this host.
pub fn instance_of(pid: u32) -> String {
    format!("{}:{pid}", this_host())
}
