DROP TABLE haier_order_shipments;
