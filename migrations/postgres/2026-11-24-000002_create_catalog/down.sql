DROP TABLE haier_logistics;
DROP TABLE haier_stocks;
DROP TABLE haier_price_changes;
DROP TABLE haier_prices;
DROP TABLE haier_products;
DROP TABLE haier_brands;
DROP TABLE haier_categories;
