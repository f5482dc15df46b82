-- The four tables of the original service, normalised. Orders are immutable: a row is written once.
CREATE TABLE orders (
    order_uid          text PRIMARY KEY,
    track_number       text        NOT NULL,
    entry              text        NOT NULL,
    locale             text        NOT NULL,
    internal_signature text        NOT NULL,
    customer_id        text        NOT NULL,
    delivery_service   text        NOT NULL,
    shardkey           text        NOT NULL,
    sm_id              integer     NOT NULL,
    date_created       timestamptz NOT NULL,
    oof_shard          text        NOT NULL,
    -- SHA-256 of the canonical JSON: tells a harmless redelivery from a conflicting order cheaply.
    content_sha256     bytea       NOT NULL,
    ingested_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    order_uid text PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    name      text NOT NULL,
    phone     text NOT NULL,
    zip       text NOT NULL,
    city      text NOT NULL,
    address   text NOT NULL,
    region    text NOT NULL,
    email     text NOT NULL
);

CREATE TABLE payments (
    order_uid     text PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    transaction   text   NOT NULL,
    request_id    text   NOT NULL,
    currency      char(3) NOT NULL,
    provider      text   NOT NULL,
    amount        bigint NOT NULL CHECK (amount >= 0),
    payment_dt    bigint NOT NULL,
    bank          text   NOT NULL,
    delivery_cost bigint NOT NULL CHECK (delivery_cost >= 0),
    goods_total   bigint NOT NULL CHECK (goods_total >= 0),
    custom_fee    bigint NOT NULL CHECK (custom_fee >= 0)
);

CREATE TABLE items (
    order_uid    text    NOT NULL REFERENCES orders (order_uid) ON DELETE CASCADE,
    position     integer NOT NULL,
    chrt_id      bigint  NOT NULL,
    track_number text    NOT NULL,
    price        bigint  NOT NULL,
    rid          text    NOT NULL,
    name         text    NOT NULL,
    sale         integer NOT NULL,
    size         text    NOT NULL,
    total_price  bigint  NOT NULL,
    nm_id        bigint  NOT NULL,
    brand        text    NOT NULL,
    status       integer NOT NULL,
    PRIMARY KEY (order_uid, position)
);

-- The page lists the newest orders.
CREATE INDEX orders_date_created_idx ON orders (date_created DESC, order_uid);
