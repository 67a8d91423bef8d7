-- Fails when a fire time has both a scheduled and a catch-up row; delete the catch-up rows first.
DROP INDEX haier_sync_logs_job_fire_time;
CREATE UNIQUE INDEX haier_sync_logs_job_fire_time ON haier_sync_logs (job_name, scheduled_for) WHERE scheduled_for IS NOT NULL;
