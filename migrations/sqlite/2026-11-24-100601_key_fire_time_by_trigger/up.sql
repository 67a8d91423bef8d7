-- A fire time is taken once per trigger: the scheduled run and, when that run was interrupted
-- (a crash, a shutdown), one catch-up run for the same fire time at the next start.
DROP INDEX haier_sync_logs_job_fire_time;
CREATE UNIQUE INDEX haier_sync_logs_job_fire_time ON haier_sync_logs (job_name, scheduled_for, "trigger") WHERE scheduled_for IS NOT NULL;
