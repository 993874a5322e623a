"""The morning briefing: one message per store for its previous local day, from ClickHouse, with a chart."""
