-- tillflow ClickHouse schema, version 1: dimensions and fact tables.
-- Times are UTC (DateTime64(3, 'UTC') / DateTime('UTC')); each fact row carries the store's IANA time zone and
-- its local date so dashboards can group by store-local days. Optional ids are '' when absent.
-- Every fact table is a ReplacingMergeTree keyed by the record's identity: replaying a topic from its start
-- leaves the same rows (read with FINAL, or after background merges).

CREATE TABLE IF NOT EXISTS stores
(
    store_id   String,
    name       String,
    timezone   LowCardinality(String),
    area_m2    Float64,
    category   LowCardinality(String),
    mall_id    String,
    tenant_id  String,
    currency   LowCardinality(String),
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY store_id;

CREATE TABLE IF NOT EXISTS zones
(
    store_id   String,
    zone_id    String,
    name       String,
    area_m2    Float64,
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (store_id, zone_id);

-- One row per POS ticket; a re-polled or updated ticket replaces the older row (version: ingested_at).
CREATE TABLE IF NOT EXISTS tickets
(
    ticket_id           String,
    source              LowCardinality(String),
    store_id            LowCardinality(String),
    tenant_id           String,
    terminal_id         String,
    kind                LowCardinality(String),
    channel             LowCardinality(String),
    occurred_at         DateTime64(3, 'UTC'),
    timezone            LowCardinality(String),
    local_date          Date,
    local_hour          UInt8,
    currency            LowCardinality(String),
    gross_amount        Int64,
    net_amount          Int64,
    tax_amount          Int64,
    discount_amount     Int64,
    cash_amount         Int64,
    card_amount         Int64,
    payment_methods     Array(LowCardinality(String)),
    payment_amounts     Array(Int64),
    line_count          UInt32,
    units               Float64,
    original_ticket_id  String,
    ingested_at         DateTime64(3, 'UTC'),
    -- Data-quality rules: ClickHouse rejects such a row and the sink sends it to pos.tickets.dlq with the reason.
    CONSTRAINT occurred_after_2000 CHECK occurred_at >= toDateTime64('2000-01-01 00:00:00', 3, 'UTC'),
    CONSTRAINT not_from_the_future CHECK occurred_at <= ingested_at + INTERVAL 1 DAY
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (store_id, ticket_id);

CREATE TABLE IF NOT EXISTS ticket_lines
(
    ticket_id        String,
    line_no          UInt16,
    store_id         LowCardinality(String),
    kind             LowCardinality(String),
    occurred_at      DateTime64(3, 'UTC'),
    timezone         LowCardinality(String),
    local_date       Date,
    sku              String,
    description      String,
    category         LowCardinality(String),
    quantity         Float64,
    unit_price       Int64,
    discount_amount  Int64,
    net_amount       Int64,
    ingested_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (store_id, ticket_id, line_no);

-- Raw per-frame people counts, one row per (camera, frame_seq); kept 35 days.
CREATE TABLE IF NOT EXISTS camera_frames
(
    camera_id        LowCardinality(String),
    store_id         LowCardinality(String),
    zone_id          String,
    frame_ts         DateTime64(3, 'UTC'),
    timezone         LowCardinality(String),
    frame_seq        UInt64,
    people_in_frame  UInt32,
    entries          UInt32,
    exits            UInt32,
    detector         LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(frame_ts)
ORDER BY (store_id, camera_id, frame_seq)
TTL toDateTime(frame_ts) + INTERVAL 35 DAY;

-- Per-minute counts, fed by a materialized view over camera_frames. The state keeps the distinct
-- (frame_seq, entries, exits, people) tuples of each camera-minute, so a frame inserted twice (a replay, a
-- retried batch) is counted once: a plain SummingMergeTree would count it twice.
CREATE TABLE IF NOT EXISTS camera_counts_minute_state
(
    store_id   LowCardinality(String),
    zone_id    String,
    camera_id  LowCardinality(String),
    timezone   LowCardinality(String),
    minute     DateTime('UTC'),
    frames     AggregateFunction(groupUniqArray, Tuple(UInt64, UInt32, UInt32, UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (store_id, camera_id, minute, zone_id, timezone);

CREATE MATERIALIZED VIEW IF NOT EXISTS camera_counts_minute_mv TO camera_counts_minute_state AS
SELECT
    store_id, zone_id, camera_id, timezone,
    toStartOfMinute(frame_ts) AS minute,
    groupUniqArrayState((frame_seq, entries, exits, people_in_frame)) AS frames
FROM camera_frames
GROUP BY store_id, zone_id, camera_id, timezone, minute;

CREATE VIEW IF NOT EXISTS camera_counts_minute AS
SELECT
    store_id, zone_id, camera_id, timezone, minute,
    arraySum(f -> f.2, uniq_frames) AS entries,
    arraySum(f -> f.3, uniq_frames) AS exits,
    length(uniq_frames) AS frames,
    arrayMax(f -> f.4, uniq_frames) AS max_people
FROM
(
    SELECT store_id, zone_id, camera_id, timezone, minute, groupUniqArrayMerge(frames) AS uniq_frames
    FROM camera_counts_minute_state
    GROUP BY store_id, zone_id, camera_id, timezone, minute
);

-- Hourly conversion per store (zone_id '') and zone. version orders revision first, then final over live,
-- then updated_at: the highest revision wins, and within a revision the final record wins over live ones.
CREATE TABLE IF NOT EXISTS conversion_hourly
(
    store_id               LowCardinality(String),
    zone_id                String,
    tenant_id              String,
    mall_id                String,
    category               LowCardinality(String),
    hour_start             DateTime('UTC'),
    local_hour             String,
    local_date             Date,
    timezone               LowCardinality(String),
    currency               LowCardinality(String),
    visitors               Int64,
    exits                  Int64,
    transactions           Int64,
    net_revenue            Int64,
    gross_revenue          Int64,
    discount_amount        Int64,
    units                  Float64,
    refunds                Int64,
    refund_amount          Int64,
    voids                  Int64,
    employee_sales         Int64,
    cash_amount            Int64,
    conversion             Nullable(Float64),
    avg_ticket             Nullable(Float64),
    units_per_transaction  Nullable(Float64),
    revenue_per_visitor    Nullable(Float64),
    revenue_per_m2         Nullable(Float64),
    void_rate              Nullable(Float64),
    discount_rate          Nullable(Float64),
    cash_share             Nullable(Float64),
    quality_flags          Array(LowCardinality(String)),
    is_final               Bool,
    revision               UInt32,
    updated_at             DateTime64(3, 'UTC'),
    version                UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour_start)
ORDER BY (store_id, zone_id, hour_start);

-- Alerts: one row per alert and state (FIRING, RESOLVED); a re-emission replaces the older row.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id    String,
    kind        LowCardinality(String),
    state       LowCardinality(String),
    severity    LowCardinality(String),
    store_id    LowCardinality(String),
    tenant_id   String,
    mall_id     String,
    hour_start  DateTime('UTC'),
    timezone    LowCardinality(String),
    observed    Nullable(Float64),
    expected    Nullable(Float64),
    message     String,
    fired_at    DateTime64(3, 'UTC'),
    details     Map(String, String)
)
ENGINE = ReplacingMergeTree(fired_at)
PARTITION BY toYYYYMM(hour_start)
ORDER BY (store_id, alert_id, state);
