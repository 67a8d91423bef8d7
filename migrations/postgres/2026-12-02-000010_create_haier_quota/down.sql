DROP TABLE haier_quota_leases;
DROP TABLE haier_quota;
