DROP TABLE haier_job_pauses;
