"""Producers: everything that puts events into Kafka (POS sources, cameras, the simulator, files)."""
