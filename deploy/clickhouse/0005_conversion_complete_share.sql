-- tillflow ClickHouse schema, version 5: which hours rest on complete camera data.
-- complete_share: share of the hour's open minutes in which every entrance camera sent a frame
-- (streams/availability.py); NULL for zone hours, hours the store is closed, and rows written before it.
ALTER TABLE conversion_hourly ADD COLUMN IF NOT EXISTS complete_share Nullable(Float64);
