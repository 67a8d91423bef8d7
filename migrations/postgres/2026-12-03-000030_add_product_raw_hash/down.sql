ALTER TABLE haier_products DROP COLUMN raw_hash;
