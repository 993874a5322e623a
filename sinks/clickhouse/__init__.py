"""Landing tillflow's topics in ClickHouse: connection, migrations, record-to-row mapping and the sink."""
