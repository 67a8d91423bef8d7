DROP TABLE haier_job_missed_fires;
