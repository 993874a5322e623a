"""The store-side collector: local POS source -> durable on-disk spool -> central Kafka, outbound only."""
