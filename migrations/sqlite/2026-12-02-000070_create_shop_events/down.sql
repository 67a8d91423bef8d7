DROP TABLE haier_shop_events;
