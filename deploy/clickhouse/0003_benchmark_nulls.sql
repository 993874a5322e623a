-- tillflow ClickHouse schema, version 3: benchmark ranks and percentiles leave out stores without a value.
-- A store's day without visitors has no conversion (NULL), one without transactions no average ticket. In
-- version 2 such a store ranked last but got percentile 100 (NULLs sort last in ascending order too). Now
-- each metric is ranked among the stores of the mall (category) that have it, and a store without it gets
-- NULL rank and percentile. stores_in_mall / stores_in_category still count every store.
CREATE OR REPLACE VIEW tenant_benchmark_daily AS
SELECT
    store_id, local_date, store_name, mall_id, tenant_id, category, currency, area_m2,
    day_visitors AS visitors, day_transactions AS transactions, day_net_revenue AS net_revenue,
    conversion, revenue_per_m2, avg_ticket,
    count() OVER w_mall                               AS stores_in_mall,
    if(isNull(conversion), NULL, rank() OVER (w_mall_conversion ORDER BY conversion DESC)) AS conversion_rank_mall,
    if(isNull(conversion), NULL, round(100 * percent_rank() OVER (w_mall_conversion ORDER BY conversion ASC), 1)) AS conversion_pct_mall,
    if(isNull(revenue_per_m2), NULL, rank() OVER (w_mall_revenue_per_m2 ORDER BY revenue_per_m2 DESC)) AS revenue_per_m2_rank_mall,
    if(isNull(revenue_per_m2), NULL, round(100 * percent_rank() OVER (w_mall_revenue_per_m2 ORDER BY revenue_per_m2 ASC), 1)) AS revenue_per_m2_pct_mall,
    if(isNull(avg_ticket), NULL, rank() OVER (w_mall_avg_ticket ORDER BY avg_ticket DESC)) AS avg_ticket_rank_mall,
    if(isNull(avg_ticket), NULL, round(100 * percent_rank() OVER (w_mall_avg_ticket ORDER BY avg_ticket ASC), 1)) AS avg_ticket_pct_mall,
    count() OVER w_cat                                AS stores_in_category,
    if(isNull(conversion), NULL, rank() OVER (w_cat_conversion ORDER BY conversion DESC)) AS conversion_rank_category,
    if(isNull(conversion), NULL, round(100 * percent_rank() OVER (w_cat_conversion ORDER BY conversion ASC), 1)) AS conversion_pct_category,
    if(isNull(revenue_per_m2), NULL, rank() OVER (w_cat_revenue_per_m2 ORDER BY revenue_per_m2 DESC)) AS revenue_per_m2_rank_category,
    if(isNull(revenue_per_m2), NULL, round(100 * percent_rank() OVER (w_cat_revenue_per_m2 ORDER BY revenue_per_m2 ASC), 1)) AS revenue_per_m2_pct_category,
    if(isNull(avg_ticket), NULL, rank() OVER (w_cat_avg_ticket ORDER BY avg_ticket DESC)) AS avg_ticket_rank_category,
    if(isNull(avg_ticket), NULL, round(100 * percent_rank() OVER (w_cat_avg_ticket ORDER BY avg_ticket ASC), 1)) AS avg_ticket_pct_category
FROM store_daily
WINDOW
    w_mall AS (PARTITION BY mall_id, local_date),
    w_mall_conversion AS (PARTITION BY mall_id, local_date, isNull(conversion)),
    w_mall_revenue_per_m2 AS (PARTITION BY mall_id, local_date, isNull(revenue_per_m2)),
    w_mall_avg_ticket AS (PARTITION BY mall_id, local_date, isNull(avg_ticket)),
    w_cat AS (PARTITION BY category, currency, local_date),
    w_cat_conversion AS (PARTITION BY category, currency, local_date, isNull(conversion)),
    w_cat_revenue_per_m2 AS (PARTITION BY category, currency, local_date, isNull(revenue_per_m2)),
    w_cat_avg_ticket AS (PARTITION BY category, currency, local_date, isNull(avg_ticket));
