-- tillflow ClickHouse schema, version 4: the lines of each ticket's latest version.
-- ticket_lines is keyed by (store_id, ticket_id, line_no): when a ticket is re-polled with fewer lines, the
-- rows of the lines it no longer has stay behind. Every line row carries its ticket's ingested_at, so the
-- current lines are those with the ingested_at of the ticket's latest row.
CREATE VIEW IF NOT EXISTS ticket_lines_current AS
SELECT l.*
FROM ticket_lines AS l FINAL
INNER JOIN (SELECT store_id, ticket_id, ingested_at FROM tickets FINAL) AS t
    ON t.store_id = l.store_id AND t.ticket_id = l.ticket_id AND t.ingested_at = l.ingested_at;
