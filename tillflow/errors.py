"""One base for tillflow's own errors, and the handful of kinds every subsystem's errors belong to.

Every error tillflow raises on purpose derives from :class:`TillflowError`; its message is written for the
operator (it names the file, record or service and the reason), so the CLI catches ``TillflowError`` once
(``tillflow/cli.py``) and prints ``error: <message>``. Subsystems keep their own narrower classes (for
example ``producers/camera/stream.py``'s ``VideoSourceError``) under one of the kinds below. Each kind also
derives from the builtin it replaced (``ValueError`` for bad input, ``RuntimeError`` for a failing
service), so code that catches the builtin keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ContractError",
    "MappingError",
    "SinkError",
    "SourceError",
    "TillflowError",
    "UnavailableError",
]


class TillflowError(Exception):
    """An error tillflow raises on purpose; the message is for the operator."""


class ConfigError(TillflowError, ValueError):
    """A configuration file, spec or setting that cannot be used; the message names it and the reason."""


class ContractError(TillflowError, ValueError):
    """A record that does not fit its contract (schemas/): wrong fields, personal data, undecodable bytes."""


class MappingError(ContractError):
    """A source record (POS API, CDC row, file row, topic record) that cannot be mapped to its contract."""


class SourceError(TillflowError, RuntimeError):
    """A source of data (camera, POS API, POS database, Kafka Connect) failed or cannot be read."""


class UnavailableError(TillflowError, RuntimeError):
    """A service tillflow needs (Kafka, the schema registry, ClickHouse) is not configured or not running."""


class SinkError(TillflowError, RuntimeError):
    """A write to a sink (ClickHouse, an alert channel) failed."""
