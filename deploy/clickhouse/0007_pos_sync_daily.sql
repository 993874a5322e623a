-- The POS sync rate per source, store and local day (`tillflow sync-check`): what the POS says it had (from its
-- API or its database) against what tillflow ingested. A later check of the same day replaces the row.
CREATE TABLE IF NOT EXISTS pos_sync_daily
(
    source            LowCardinality(String),
    store_id          LowCardinality(String),
    local_date        Date,
    expected_tickets  UInt32,
    ingested_tickets  UInt32,
    missing_tickets   UInt32,
    extra_tickets     UInt32,
    expected_net      Int64,
    ingested_net      Int64,
    sync_rate         Float64,
    checked_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(checked_at)
ORDER BY (source, store_id, local_date);
