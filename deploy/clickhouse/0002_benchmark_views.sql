-- tillflow ClickHouse schema, version 2: views for tenant benchmarking and zone productivity.
-- Money is in minor units (cents); revenue_per_m2 is minor units per square metre of the catalogue's floor area.

-- A store's store-local day from its hourly rows (latest revision of each hour).
CREATE VIEW IF NOT EXISTS store_daily AS
SELECT
    h.store_id                                    AS store_id,
    h.local_date                                  AS local_date,
    s.name                                        AS store_name,
    s.mall_id                                     AS mall_id,
    s.tenant_id                                   AS tenant_id,
    s.category                                    AS category,
    s.currency                                    AS currency,
    s.area_m2                                     AS area_m2,
    sum(h.visitors)                               AS day_visitors,
    sum(h.transactions)                           AS day_transactions,
    sum(h.net_revenue)                            AS day_net_revenue,
    if(day_visitors = 0, NULL, day_transactions / day_visitors)      AS conversion,
    day_net_revenue / s.area_m2                                       AS revenue_per_m2,
    if(day_transactions = 0, NULL, day_net_revenue / day_transactions) AS avg_ticket
FROM conversion_hourly AS h FINAL
INNER JOIN stores AS s FINAL ON s.store_id = h.store_id
WHERE h.zone_id = ''
GROUP BY h.store_id, h.local_date, s.name, s.mall_id, s.tenant_id, s.category, s.currency, s.area_m2;

-- Rank (1 = best) and percentile (0 = lowest, 100 = highest) of each store's day among the stores of its mall,
-- and among the stores of its category that trade in the same currency.
CREATE VIEW IF NOT EXISTS tenant_benchmark_daily AS
SELECT
    store_id, local_date, store_name, mall_id, tenant_id, category, currency, area_m2,
    day_visitors AS visitors, day_transactions AS transactions, day_net_revenue AS net_revenue,
    conversion, revenue_per_m2, avg_ticket,
    count() OVER w_mall                                       AS stores_in_mall,
    rank() OVER (w_mall ORDER BY conversion DESC)             AS conversion_rank_mall,
    round(100 * percent_rank() OVER (w_mall ORDER BY conversion ASC), 1)        AS conversion_pct_mall,
    rank() OVER (w_mall ORDER BY revenue_per_m2 DESC)         AS revenue_per_m2_rank_mall,
    round(100 * percent_rank() OVER (w_mall ORDER BY revenue_per_m2 ASC), 1)    AS revenue_per_m2_pct_mall,
    rank() OVER (w_mall ORDER BY avg_ticket DESC)             AS avg_ticket_rank_mall,
    round(100 * percent_rank() OVER (w_mall ORDER BY avg_ticket ASC), 1)        AS avg_ticket_pct_mall,
    count() OVER w_cat                                        AS stores_in_category,
    rank() OVER (w_cat ORDER BY conversion DESC)              AS conversion_rank_category,
    round(100 * percent_rank() OVER (w_cat ORDER BY conversion ASC), 1)         AS conversion_pct_category,
    rank() OVER (w_cat ORDER BY revenue_per_m2 DESC)          AS revenue_per_m2_rank_category,
    round(100 * percent_rank() OVER (w_cat ORDER BY revenue_per_m2 ASC), 1)     AS revenue_per_m2_pct_category,
    rank() OVER (w_cat ORDER BY avg_ticket DESC)              AS avg_ticket_rank_category,
    round(100 * percent_rank() OVER (w_cat ORDER BY avg_ticket ASC), 1)         AS avg_ticket_pct_category
FROM store_daily
WINDOW
    w_mall AS (PARTITION BY mall_id, local_date),
    w_cat AS (PARTITION BY category, currency, local_date);

-- Revenue per square metre of each zone (zone rows of conversion_hourly, zone areas from the catalogue).
CREATE VIEW IF NOT EXISTS zone_revenue_per_m2 AS
SELECT
    h.store_id             AS store_id,
    h.zone_id              AS zone_id,
    h.local_date           AS local_date,
    z.name                 AS zone_name,
    z.area_m2              AS area_m2,
    sum(h.visitors)        AS visitors,
    sum(h.transactions)    AS transactions,
    sum(h.net_revenue)     AS net_revenue,
    sum(h.net_revenue) / z.area_m2 AS revenue_per_m2
FROM conversion_hourly AS h FINAL
INNER JOIN zones AS z FINAL ON z.store_id = h.store_id AND z.zone_id = h.zone_id
WHERE h.zone_id != ''
GROUP BY h.store_id, h.zone_id, h.local_date, z.name, z.area_m2;
