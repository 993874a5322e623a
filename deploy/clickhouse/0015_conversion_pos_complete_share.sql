-- tillflow ClickHouse schema, version 15: which hours rest on complete POS data too.
-- pos_complete_share: share of the hour's open minutes whose POS data were complete (not inside a FEED_SILENT
-- silence of the till feed, no ticket of the minute arriving after the hour closed); all_complete_share: share
-- complete for every entrance camera and the POS feed (streams/availability.py). NULL for zone hours, hours the
-- store is closed, batch recomputes and rows written before this version.
ALTER TABLE conversion_hourly ADD COLUMN IF NOT EXISTS pos_complete_share Nullable(Float64);
ALTER TABLE conversion_hourly ADD COLUMN IF NOT EXISTS all_complete_share Nullable(Float64);
