-- tillflow ClickHouse schema, version 12: the morning briefings, an audit trail of every generated insight.
-- One row per store and local date (a re-generated briefing replaces the row: version generated_at). hour_ids
-- are the storeops/conversion hours it read ('store|hour_start ISO'), alert_ids the alerts it cites.
CREATE TABLE IF NOT EXISTS briefings
(
    store_id      LowCardinality(String),
    local_date    Date,
    timezone      LowCardinality(String),
    generated_at  DateTime64(3, 'UTC'),
    template      LowCardinality(String),
    text          String,
    figures       String,
    hour_ids      Array(String),
    alert_ids     Array(String),
    chart_sha256  String,
    delivered_to  Array(String)
)
ENGINE = ReplacingMergeTree(generated_at)
ORDER BY (store_id, local_date);
