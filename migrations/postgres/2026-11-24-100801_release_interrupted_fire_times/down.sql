-- Fails when a fire time and trigger have an interrupted row and another one; delete the
-- interrupted rows first.
DROP INDEX haier_sync_logs_job_fire_time;
CREATE UNIQUE INDEX haier_sync_logs_job_fire_time ON haier_sync_logs (job_name, scheduled_for, "trigger") WHERE scheduled_for IS NOT NULL;
