"""Alerts to on-call channels: payload builders, routing, a durable outbox and the delivery loop."""
