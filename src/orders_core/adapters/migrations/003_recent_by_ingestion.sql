-- "Recent orders" are the ones stored last: an order's date_created is the client's, and may lie anywhere
-- in the past (a generator's, a late delivery's), so the newest by date need not be the newest arrival.
DROP INDEX orders_date_created_idx;
CREATE INDEX orders_ingested_at_idx ON orders (ingested_at DESC, date_created DESC, order_uid);
