-- tillflow ClickHouse schema, version 14: data availability per source and minute, complete (replaces the
-- version-6 view). One row per (source, minute) with status
--   on_time  records of the minute arrived within 10 minutes (the streams' allowed lateness) of its end;
--   delayed  they arrived later; delay_s = seconds from the end of the minute to the first arrival (camera)
--            or the largest delay of the minute's tickets (POS);
--   missing  camera: no frame in a minute between two minutes it sent, at most 3 hours apart (a longer gap is
--            the store being closed); POS: a minute of a FEED_SILENT alert that is still FIRING (no ticket
--            while the cameras counted visitors), from the start of the silence to the next ticket, only in
--            minutes the store's cameras sent frames (the store open). A silence that late tickets filled is
--            RESOLVED by the streams: its minutes are then those tickets' minutes, delayed.
-- Arrival: POS tickets carry ingested_at; camera frames get it here, the time the row reached ClickHouse
-- (rows written before this version have none and count as on time).
ALTER TABLE camera_frames ADD COLUMN IF NOT EXISTS ingested_at Nullable(DateTime64(3, 'UTC')) DEFAULT NULL;
ALTER TABLE camera_frames MATERIALIZE COLUMN ingested_at SETTINGS mutations_sync = 2;
ALTER TABLE camera_frames MODIFY COLUMN ingested_at Nullable(DateTime64(3, 'UTC')) DEFAULT now64(3);
CREATE OR REPLACE VIEW source_minutes AS
WITH camera_minutes AS
(
    SELECT store_id, camera_id, any(timezone) AS timezone, toStartOfMinute(frame_ts) AS minute, count() AS frames,
           min(ingested_at) AS arrived
    FROM camera_frames
    GROUP BY store_id, camera_id, minute
),
store_minutes AS
(
    SELECT DISTINCT store_id, toDateTime(toStartOfMinute(frame_ts)) AS minute FROM camera_frames
),
silences AS
(
    SELECT store_id, any(timezone) AS timezone, alert_id, min(fired_at) AS fired,
           fired + toIntervalSecond(60 - 60 * toInt64OrZero(any(details['silent_minutes']))) AS since
    FROM alerts
    WHERE kind = 'FEED_SILENT' AND state = 'FIRING'
      AND alert_id NOT IN (SELECT alert_id FROM alerts WHERE kind = 'FEED_SILENT' AND state = 'RESOLVED')
    GROUP BY store_id, alert_id
),
silence_spans AS
(
    SELECT s.store_id AS store_id, s.timezone AS timezone, toStartOfMinute(s.since) AS first_minute,
           if(t.occurred_at > s.fired, toStartOfMinute(t.occurred_at),
              toStartOfMinute(least(now64(3), s.since + toIntervalHour(12)))) AS end_minute
    FROM silences AS s
    ASOF LEFT JOIN (SELECT store_id, occurred_at FROM tickets) AS t
        ON t.store_id = s.store_id AND t.occurred_at > s.fired
),
pos_sources AS
(
    SELECT store_id, argMax(source, occurred_at) AS source FROM tickets GROUP BY store_id
)
SELECT toString(store_id) AS store_id, 'camera' AS source_kind, toString(camera_id) AS source_id,
       toString(timezone) AS timezone, minute, toUInt64(frames) AS records,
       if(arrived IS NOT NULL AND dateDiff('second', minute + toIntervalMinute(1), arrived) > 600,
          'delayed', 'on_time') AS status,
       toInt64(greatest(ifNull(dateDiff('second', minute + toIntervalMinute(1), arrived), 0), 0)) AS delay_s
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
GROUP BY store_id, source, timezone, minute
UNION ALL
SELECT toString(sp.store_id), 'pos', toString(ps.source), toString(sp.timezone), m.minute, toUInt64(0), 'missing',
       toInt64(0)
FROM
(
    SELECT store_id, timezone, toDateTime(first_minute) + toIntervalMinute(k) AS minute
    FROM silence_spans
    ARRAY JOIN range(toUInt64(greatest(dateDiff('minute', first_minute, end_minute), 0))) AS k
) AS sp
INNER JOIN store_minutes AS m ON m.store_id = sp.store_id AND m.minute = sp.minute
LEFT JOIN pos_sources AS ps ON ps.store_id = sp.store_id;
