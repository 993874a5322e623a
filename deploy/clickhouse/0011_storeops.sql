-- tillflow ClickHouse schema, version 11: store operations (staffing, queues at the tills, zones, categories).
-- storeops_hourly holds the stream's storeops.hourly records: one row per store-hour at each grain (STORE,
-- ZONE, CATEGORY), the latest revision winning (version as in conversion_hourly). staff_shifts holds the
-- shifts as last reported (an upsert by shift_id; deleted = 1 retracts one). camera_roles is the catalogue's
-- cameras, so views can tell queue cameras from door and zone cameras.

CREATE TABLE IF NOT EXISTS storeops_hourly
(
    store_id               LowCardinality(String),
    grain                  LowCardinality(String),
    dimension              String,
    tenant_id              String,
    mall_id                String,
    hour_start             DateTime64(3, 'UTC'),
    local_hour             String,
    local_date             Date,
    timezone               LowCardinality(String),
    currency               LowCardinality(String),
    visitors               Nullable(Int64),
    transactions           Int64,
    net_revenue            Int64,
    units                  Float64,
    conversion             Nullable(Float64),
    revenue_per_m2         Nullable(Float64),
    staff_minutes          Float64,
    staff_on_floor         Nullable(Float64),
    visitors_per_staff     Nullable(Float64),
    sales_per_labour_hour  Nullable(Float64),
    queue_minutes          UInt16,
    queue_mean             Nullable(Float64),
    queue_p90              Nullable(Float64),
    queue_max              Nullable(Float64),
    queue_minutes_over     UInt16,
    conversion_revision    UInt32,
    revision               UInt32,
    updated_at             DateTime64(3, 'UTC'),
    version                UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour_start)
ORDER BY (store_id, grain, dimension, hour_start);

CREATE TABLE IF NOT EXISTS staff_shifts
(
    shift_id      String,
    source        LowCardinality(String),
    store_id      LowCardinality(String),
    staff_ref     String,
    role          LowCardinality(String),
    start_at      DateTime64(3, 'UTC'),
    end_at        Nullable(DateTime64(3, 'UTC')),
    break_minutes Float64,
    timezone      LowCardinality(String),
    local_date    Date,
    deleted       UInt8,
    ingested_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_at)
ORDER BY (store_id, shift_id);

CREATE TABLE IF NOT EXISTS camera_roles
(
    camera_id  String,
    store_id   String,
    zone_id    String,
    role       LowCardinality(String),
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (store_id, camera_id);

-- Queue length per store and minute, as the stream defines it: per queue camera the mean people over its
-- frames in the minute, summed over the store's queue cameras (frames counted once per camera and seq).
CREATE VIEW IF NOT EXISTS queue_minute AS
SELECT store_id, any(timezone) AS timezone, minute, sum(camera_mean) AS queue_length, count() AS cameras
FROM
(
    SELECT f.store_id AS store_id, any(f.timezone) AS timezone, toStartOfMinute(f.frame_ts) AS minute,
           f.camera_id AS camera_id, avg(f.people_in_frame) AS camera_mean
    FROM camera_frames AS f FINAL
    INNER JOIN (SELECT store_id, camera_id FROM camera_roles FINAL WHERE role = 'queue') AS q
        ON q.store_id = f.store_id AND q.camera_id = f.camera_id
    GROUP BY store_id, minute, camera_id
)
GROUP BY store_id, minute;

-- How conversion moves with the queue: final store-hours banded by their mean queue length, per store. The
-- short-queue band (under 2 people) is each store's reference; lost_revenue estimates the sales a band's
-- hours missed at the reference conversion and the band's average ticket (0 when the band converts better).
CREATE VIEW IF NOT EXISTS queue_conversion_bands AS
WITH banded AS
(
    SELECT store_id, currency, visitors, transactions, net_revenue,
           multiIf(queue_mean < 2, '0-2', queue_mean < 4, '2-4', queue_mean < 7, '4-7', '7+') AS queue_band
    FROM storeops_hourly FINAL
    WHERE grain = 'STORE' AND queue_minutes > 0 AND visitors > 0
),
bands AS
(
    SELECT store_id, any(currency) AS band_currency, queue_band, count() AS band_hours,
           sum(visitors) AS band_visitors, sum(transactions) AS band_transactions,
           sum(net_revenue) AS band_revenue, band_transactions / band_visitors AS band_conversion,
           if(band_transactions > 0, band_revenue / band_transactions, NULL) AS band_avg_ticket
    FROM banded
    GROUP BY store_id, queue_band
)
SELECT b.store_id AS store_id, b.band_currency AS currency, b.queue_band AS queue_band, b.band_hours AS hours,
       b.band_visitors AS visitors, b.band_transactions AS transactions, b.band_revenue AS net_revenue,
       b.band_conversion AS conversion, r.band_conversion AS reference_conversion,
       greatest(0, (r.band_conversion - b.band_conversion) * b.band_visitors * ifNull(b.band_avg_ticket, 0))
           AS lost_revenue
FROM bands AS b
LEFT JOIN (SELECT store_id, band_conversion FROM bands WHERE queue_band = '0-2') AS r ON r.store_id = b.store_id;
