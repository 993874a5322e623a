"""POS change-data-capture: Debezium connectors as code, the embedded engine, the ticket normalizer, pollers."""
