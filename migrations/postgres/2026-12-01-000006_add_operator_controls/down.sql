DROP TABLE haier_audit_log;
DROP TABLE haier_job_pauses;
