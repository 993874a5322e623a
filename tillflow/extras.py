"""Optional parts of tillflow and what to install for them.

The core install (``pip install tillflow``) is what a store-side collector or a service pointed at a real Kafka and
ClickHouse needs. Heavier parts are extras, installed by name: ``local`` (the embedded ClickHouse engine chDB and
the development broker noida-db, for ``tillflow demo``, ``dev up`` and a sink or report without a ClickHouse
server), ``camera`` (OpenCV, ultralytics), ``cdc`` (the embedded Debezium engine, database drivers), ``malls``
(fpdf2, for the PDF of ``tillflow statements``).
``make demo`` and ``make test`` install the extras they use from the lock files.
"""

from __future__ import annotations

import importlib.util

# Module a feature imports -> the extra that installs it.
EXTRA_OF = {
    "chdb": "local", "noida_db": "local", "cv2": "camera", "ultralytics": "camera", "pydbzengine": "cdc",
    "fpdf": "malls",
}  # fmt: skip


def missing_extra(purpose: str, *modules: str) -> str | None:
    """None when ``modules`` are importable, else a message naming the extra to install for ``purpose``."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    extras = sorted({EXTRA_OF.get(m, m) for m in missing})
    install = f"pip install 'tillflow[{','.join(extras)}]'"
    return f"{purpose} needs the {' and '.join(extras)} extra ({install}); missing: {', '.join(missing)}"
