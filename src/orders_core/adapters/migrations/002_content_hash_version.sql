-- Which canonical form content_sha256 was computed from (orders_core.model.CANONICAL_VERSION). When the form
-- changes, orders stored under an older version are compared by re-canonicalising them, not by hash, so a
-- redelivery is never mistaken for a conflict. Every order stored so far was hashed in form 1.
ALTER TABLE orders ADD COLUMN content_hash_version smallint NOT NULL DEFAULT 1;
ALTER TABLE orders ALTER COLUMN content_hash_version DROP DEFAULT;
