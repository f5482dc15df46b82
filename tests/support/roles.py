"""The PostgreSQL role the faults tier runs ingest_order as: one that owns nothing, so that a fault injected by
the database owner (a revoked privilege, a changed password) reaches it as it would reach a deployed function."""

INGEST_ROLE, INGEST_PASSWORD = "orders_ingest", "ingest-secret"
