"""tillflow's local Schema Registry: a small Confluent-compatible stand-in for development and tests.

**Not for production.** In production point ``TILLFLOW_REGISTRY_URL`` at Confluent Schema Registry,
Karapace, Apicurio (its ``/apis/ccompat/v7`` API) or Redpanda's registry; tillflow talks to all of them
through ``confluent_kafka.schema_registry``. No Confluent-compatible server installs on this machine, so
``tillflow dev up`` and the tests start this one: ``python -m tillflow.registry --host H --port P --data-dir D``
(or ``tillflow registry serve``).

It serves the REST subset clients use, with Confluent's bodies, status codes and error codes: subjects and
versions (register, look up, soft and permanent delete), schemas by global id, compatibility checks
(``verbose`` too) and global/subject compatibility config (default BACKWARD, enforced on registration by
:mod:`schemas.compat`). AVRO only (no references). One process, one JSON state file written atomically
under the data directory, so ids and versions survive restarts. See docs/schemas.md.
"""

from tillflow.registry.store import RegistryError, SchemaStore

__all__ = ["RegistryError", "SchemaStore"]
