-- What Haier's cancel and out-of-stock callbacks (and `haier-sync outbox cancel`) said about an
-- order, beside its push status:
--   cancel_state: requested (a cancel was asked of Haier), local (cancelled before it was pushed),
--                 full (Haier cancelled it), partial (Haier cancelled some items),
--                 refused (Haier could not cancel it)
--   cancel_detail: the reason asked, Haier's FailMsg, or the cancelled items as JSON
--   out_of_stock_at: when Haier reported the order out of stock (the event row holds the message)
ALTER TABLE haier_order_outbox ADD COLUMN cancel_state TEXT
    CHECK (cancel_state IN ('requested', 'local', 'full', 'partial', 'refused'));
ALTER TABLE haier_order_outbox ADD COLUMN cancel_detail TEXT;
ALTER TABLE haier_order_outbox ADD COLUMN out_of_stock_at TIMESTAMP;
