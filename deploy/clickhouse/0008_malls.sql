-- tillflow ClickHouse schema, version 8: malls and chains (analytics/): issued tenant statements, the campaign
-- calendar with a difference-in-differences lift view, and hourly forecasts.
-- Money is in minor units (Int64), never floats.

-- One row per tenant statement issued by `tillflow statements`; a re-issue after late data gets the next issue
-- number, and its figures are compared with the previous issue's.
CREATE TABLE IF NOT EXISTS tenant_statements
(
    mall_id          String,
    month            Date,
    tenant_id        String,
    issue            UInt32,
    issued_at        DateTime64(3, 'UTC'),
    currency         LowCardinality(String),
    counted_sales    Int64,
    breakpoint       Int64,
    percentage_rent  Int64,
    base_rent        Int64,
    rent_due         Int64,
    late_tickets     UInt32,
    silent_days      UInt32,
    open_days        UInt32,
    figures          Map(String, Int64)
)
ENGINE = ReplacingMergeTree(issued_at)
ORDER BY (mall_id, month, tenant_id, issue);

-- Net sales per store-local day, channel and ticket kind (latest version of each ticket), for month-to-date
-- panels.
CREATE VIEW IF NOT EXISTS tenant_sales_daily AS
SELECT
    t.store_id                    AS store_id,
    s.mall_id                     AS mall_id,
    s.tenant_id                   AS tenant_id,
    s.category                    AS category,
    t.local_date                  AS local_date,
    t.channel                     AS channel,
    t.kind                        AS kind,
    t.currency                    AS currency,
    count()                       AS tickets,
    sum(t.net_amount)             AS net_amount
FROM tickets AS t FINAL
INNER JOIN stores AS s FINAL ON s.store_id = t.store_id
GROUP BY t.store_id, s.mall_id, s.tenant_id, s.category, t.local_date, t.channel, t.kind, t.currency;
