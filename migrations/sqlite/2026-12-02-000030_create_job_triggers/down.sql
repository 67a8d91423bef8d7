DROP TABLE haier_job_triggers;
