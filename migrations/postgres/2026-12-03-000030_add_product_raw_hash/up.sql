-- Hash of the listing item's raw bytes the row was last decoded from (xxh3-128, 16 bytes): an
-- item whose bytes hash the same is not decoded again. NULL when the row was not written from a
-- listing item (a query by code), or before the first listing that wrote it.
ALTER TABLE haier_products ADD COLUMN raw_hash BYTEA;
