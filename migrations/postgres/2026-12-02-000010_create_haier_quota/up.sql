-- The Haier quota shared by every process on this database (crate::quota): one row per system
-- holding the theoretical arrival time of its next permit, in microseconds since the Unix epoch
-- on the database's clock. Leasing k permits moves it k intervals on in one statement.
CREATE TABLE haier_quota (
    system TEXT PRIMARY KEY NOT NULL CHECK (system IN ('openplat', 'ylh')),
    tat_us BIGINT NOT NULL
);
INSERT INTO haier_quota (system, tat_us) VALUES ('openplat', 0), ('ylh', 0);

-- Permits each participant (a `host:pid`, as in haier_sync_instances) leased, summed about once
-- a second, for the quota share `status` shows. Rows older than a minute are deleted.
CREATE TABLE haier_quota_leases (
    participant TEXT NOT NULL,
    system TEXT NOT NULL CHECK (system IN ('openplat', 'ylh')),
    leased_at_us BIGINT NOT NULL,
    permits BIGINT NOT NULL,
    PRIMARY KEY (participant, system, leased_at_us)
);
CREATE INDEX haier_quota_leases_at ON haier_quota_leases (leased_at_us);
