"""Malls and chains: tenant revenue statements, campaign lift and hourly forecasts, computed from what the sinks
land in ClickHouse (pure calculations in statements, lift and forecast; ClickHouse reads in warehouse)."""
