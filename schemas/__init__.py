"""tillflow's data contracts: Avro schemas, their pydantic mirrors, topics and the store catalogue."""
