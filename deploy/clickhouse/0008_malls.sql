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

-- The campaign calendar as loaded by `tillflow lift` (from TILLFLOW_CAMPAIGNS): one row per campaign, and one
-- per unit it treats or is compared against (role 'treated' / 'control'; zone_id '' is the whole store).
CREATE TABLE IF NOT EXISTS campaigns
(
    campaign_id    String,
    name           String,
    kind           LowCardinality(String),
    scope          LowCardinality(String),
    mall_id        String,
    starts         Date,
    ends           Date,
    baseline_days  UInt16,
    treated_units  UInt16,
    control_units  UInt16,
    comparison     String,
    loaded_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY campaign_id;

CREATE TABLE IF NOT EXISTS campaign_units
(
    campaign_id  String,
    store_id     String,
    zone_id      String,
    role         LowCardinality(String),
    loaded_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (campaign_id, store_id, zone_id);

-- Per campaign, metric and day of its baseline or campaign window: mean log value of the treated units less
-- that of the controls. A day counts only when every unit has a positive value (analytics/lift.py does the same).
CREATE VIEW IF NOT EXISTS campaign_lift_daily AS
WITH
    daily AS
    (
        SELECT store_id, zone_id, local_date, sum(visitors) AS v, sum(transactions) AS tx, sum(net_revenue) AS net
        FROM conversion_hourly FINAL
        GROUP BY store_id, zone_id, local_date
    ),
    cur AS
    (
        SELECT campaign_id, argMax(starts, loaded_at) AS starts, argMax(ends, loaded_at) AS ends,
               argMax(baseline_days, loaded_at) AS baseline_days, argMax(treated_units, loaded_at) AS treated_units,
               argMax(control_units, loaded_at) AS control_units
        FROM campaigns
        GROUP BY campaign_id
    ),
    units AS
    (
        SELECT campaign_id, store_id, zone_id, argMax(role, loaded_at) AS role
        FROM campaign_units
        GROUP BY campaign_id, store_id, zone_id
    )
SELECT
    u.campaign_id                                                   AS campaign_id,
    m.1                                                             AS metric,
    d.local_date                                                    AS local_date,
    if(d.local_date >= any(c.starts), 'campaign', 'baseline')       AS period,
    avgIf(log(m.2), u.role = 'treated') - avgIf(log(m.2), u.role = 'control') AS difference
FROM units AS u
INNER JOIN cur AS c ON c.campaign_id = u.campaign_id
INNER JOIN daily AS d ON d.store_id = u.store_id AND d.zone_id = u.zone_id
ARRAY JOIN [('visitors', toFloat64(d.v)), ('conversion', if(d.v > 0, d.tx / d.v, 0.)), ('sales', toFloat64(d.net))] AS m
WHERE d.local_date >= c.starts - c.baseline_days AND d.local_date <= c.ends
GROUP BY u.campaign_id, metric, d.local_date
HAVING countIf(u.role = 'treated' AND m.2 > 0) = any(c.treated_units)
   AND countIf(u.role = 'control' AND m.2 > 0) = any(c.control_units);

-- The difference-in-differences per campaign and metric, with Welch's 95% interval (on the log scale; lift_pct
-- and its bounds are exp(.) - 1 in percent) and the same verdict rules as `tillflow lift`. Every campaign of the
-- calendar has a row per metric, also when no day could be compared.
CREATE VIEW IF NOT EXISTS campaign_lift AS
SELECT
    k.campaign_id AS campaign_id, k.metric AS metric, k.name AS name, k.kind AS kind, k.starts AS starts,
    k.ends AS ends, k.comparison AS comparison,
    e.baseline_days AS baseline_days, e.campaign_days AS campaign_days,
    if(e.baseline_days >= 7 AND e.campaign_days >= 3, e.estimate, NULL) AS estimate,
    if(e.baseline_days >= 7 AND e.campaign_days >= 3, e.low, NULL) AS low,
    if(e.baseline_days >= 7 AND e.campaign_days >= 3, e.high, NULL) AS high,
    round(100 * (exp(estimate) - 1), 2) AS lift_pct,
    round(100 * (exp(low) - 1), 2)      AS lift_low_pct,
    round(100 * (exp(high) - 1), 2)     AS lift_high_pct,
    multiIf(
        k.control_units = 0, 'cannot tell: no comparable store',
        e.baseline_days < 7, concat('cannot tell: ', toString(e.baseline_days), ' comparable days before the campaign (at least 7)'),
        e.campaign_days < 3, concat('cannot tell: ', toString(e.campaign_days), ' comparable campaign days (at least 3)'),
        low > 0, 'lift (95% interval above zero)',
        high < 0, 'drop (95% interval below zero)',
        greatest(-(exp(low) - 1), exp(high) - 1) > 0.25, 'cannot tell: the 95% interval is too wide',
        'no detectable effect (95% interval includes zero)'
    ) AS verdict
FROM
(
    SELECT campaign_id, name, kind, starts, ends, comparison, control_units, metric
    FROM
    (
        SELECT campaign_id, argMax(name, loaded_at) AS name, argMax(kind, loaded_at) AS kind,
               argMax(starts, loaded_at) AS starts, argMax(ends, loaded_at) AS ends,
               argMax(comparison, loaded_at) AS comparison, argMax(control_units, loaded_at) AS control_units
        FROM campaigns
        GROUP BY campaign_id
    )
    ARRAY JOIN ['visitors', 'conversion', 'sales'] AS metric
) AS k
LEFT JOIN
(
    SELECT
        campaign_id, metric,
        countIf(period = 'baseline') AS baseline_days,
        countIf(period = 'campaign') AS campaign_days,
        avgIf(difference, period = 'campaign') - avgIf(difference, period = 'baseline') AS estimate,
        if(baseline_days >= 2 AND campaign_days >= 2, welchTTest(0.95)(difference, period = 'baseline'),
           (nan, nan, nan, nan)) AS test,
        test.3 AS low,
        test.4 AS high
    FROM campaign_lift_daily
    GROUP BY campaign_id, metric
) AS e ON e.campaign_id = k.campaign_id AND e.metric = k.metric;

-- Hourly forecasts from topic forecast.hourly (tillflow forecast): every issue is kept, so forecast error per
-- horizon can be measured later; dashboards read the latest issue of each hour (argMax on issued_at).
CREATE TABLE IF NOT EXISTS forecast_hourly
(
    store_id       LowCardinality(String),
    tenant_id      String,
    mall_id        String,
    hour_start     DateTime('UTC'),
    local_hour     String,
    local_date     Date,
    timezone       LowCardinality(String),
    currency       LowCardinality(String),
    issued_at      DateTime64(3, 'UTC'),
    horizon_hours  UInt16,
    visitors       Float64,
    net_revenue    Int64,
    method         LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(hour_start)
ORDER BY (store_id, hour_start, issued_at)
TTL toDateTime(hour_start) + INTERVAL 400 DAY;
