-- An interrupted run no longer holds its fire time: when a catch-up run is itself interrupted (a
-- crash, a shutdown), the next start catches the tick up again, as the catch-up rule says ("no
-- row, or only an interrupted one"). Two runs that are not interrupted still never share a fire
-- time and trigger.
DROP INDEX haier_sync_logs_job_fire_time;
CREATE UNIQUE INDEX haier_sync_logs_job_fire_time ON haier_sync_logs (job_name, scheduled_for, "trigger") WHERE scheduled_for IS NOT NULL AND status <> 'interrupted';
