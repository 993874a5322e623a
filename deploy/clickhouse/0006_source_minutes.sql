-- tillflow ClickHouse schema, version 6: data availability per source and minute, as footfall vendors report
-- it (streams/availability.py has the same rules for the hourly records' complete_share).
-- One row per (source, minute): source_kind 'camera' (source_id = camera_id) or 'pos' (source_id = the
-- ticket source, e.g. a connector instance), status
--   on_time  records arrived for the minute (cameras; POS tickets ingested within 10 minutes of the sale),
--   delayed  POS tickets of the minute ingested more than 10 minutes (the streams' allowed lateness) after
--            they happened; delay_s is the largest delay in the minute,
--   missing  a camera sent no frame in a minute between two minutes it did, at most 3 hours apart (a longer
--            gap is the store being closed, not a camera fault).
-- Camera frames carry no arrival time, so a camera minute is on time or missing; frames arriving late still
-- count in their minute (the streams apply them as corrections).
CREATE VIEW IF NOT EXISTS source_minutes AS
WITH camera_minutes AS
(
    SELECT store_id, camera_id, any(timezone) AS timezone, toStartOfMinute(frame_ts) AS minute, count() AS frames
    FROM camera_frames
    GROUP BY store_id, camera_id, minute
)
SELECT toString(store_id) AS store_id, 'camera' AS source_kind, toString(camera_id) AS source_id,
       toString(timezone) AS timezone, minute, toUInt64(frames) AS records, 'on_time' AS status, toInt64(0) AS delay_s
FROM camera_minutes
UNION ALL
SELECT toString(store_id), 'camera', toString(camera_id), toString(timezone), prev + toIntervalMinute(k), toUInt64(0),
       'missing', toInt64(0)
FROM
(
    SELECT store_id, camera_id, timezone, minute,
           lagInFrame(minute) OVER (PARTITION BY store_id, camera_id ORDER BY minute
                                    ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev,
           dateDiff('minute', prev, minute) AS gap
    FROM camera_minutes
)
ARRAY JOIN if(prev > toDateTime(0) AND gap BETWEEN 2 AND 180, range(1, toUInt64(gap)), []) AS k
UNION ALL
SELECT toString(store_id), 'pos', toString(source), toString(timezone), toStartOfMinute(occurred_at) AS minute,
       toUInt64(count()), if(max(dateDiff('second', occurred_at, ingested_at)) > 600, 'delayed', 'on_time'),
       toInt64(greatest(max(dateDiff('second', occurred_at, ingested_at)), 0))
FROM tickets FINAL
GROUP BY store_id, source, timezone, minute;
