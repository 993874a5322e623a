"""The registry's state and rules: subjects, versions, global schema ids, compatibility levels.

Every operation either returns the body Confluent Schema Registry returns for it or raises
:class:`RegistryError` with Confluent's HTTP status, error code and message. Each change is written to
``<data_dir>/registry.json`` atomically (temporary file, fsync, rename) before it is acknowledged.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import fastavro

from schemas.compat import LEVELS, SchemaError, check, normalize, parse, schema_key
from tillflow.errors import TillflowError

STATE_FILE = "registry.json"
DEFAULT_LEVEL = "BACKWARD"
SCHEMA_TYPES = ("AVRO",)
MAX_VERSION = 2**31 - 1

# Confluent error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors).
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_COMPATIBILITY_NOT_CONFIGURED = 40408
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
STORE_ERROR = 50001


class RegistryError(TillflowError):
    """A request the registry refuses: HTTP ``status``, Confluent ``code`` and ``message``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error_code": self.code, "message": self.message}


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def _version_not_found(version: int) -> RegistryError:
    return RegistryError(404, VERSION_NOT_FOUND, f"Version {version} not found.")


def parse_version(text: str) -> int | None:
    """A version path parameter: an int in [1, 2^31-1], or ``latest`` / ``-1`` (returned as None)."""
    if text == "latest" or text == "-1":
        return None
    try:
        version = int(text)
    except ValueError:
        version = 0
    if not 1 <= version <= MAX_VERSION:
        raise RegistryError(
            422,
            INVALID_VERSION,
            f"The specified version '{text}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"',
        )
    return version


def parse_level(value: Any) -> str:
    level = value.upper() if isinstance(value, str) else ""
    if level not in LEVELS:
        raise RegistryError(
            422,
            INVALID_COMPATIBILITY_LEVEL,
            "Invalid compatibility level. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive",
        )
    return level


def validate_schema(request: Any, normalize_it: bool = False) -> tuple[str, str]:
    """The stored text and identity key of the schema in a register/lookup/compatibility request body."""
    if not isinstance(request, dict):
        raise RegistryError(422, INVALID_SCHEMA, "Invalid schema: the request body must be a JSON object")
    schema_type = request.get("schemaType") or "AVRO"
    if schema_type not in SCHEMA_TYPES:
        raise RegistryError(
            422,
            INVALID_SCHEMA,
            f"Invalid schema type {schema_type}: the tillflow local registry accepts AVRO schemas only",
        )
    if request.get("references"):
        raise RegistryError(
            422, INVALID_SCHEMA, "Invalid schema: schema references are not supported by the tillflow local registry"
        )
    text = request.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise RegistryError(422, INVALID_SCHEMA, "Empty schema")
    try:
        try:
            value = json.loads(text)
        except ValueError:
            value = text.strip()  # a bare primitive name such as string
        parse(value)
        fastavro.parse_schema(copy.deepcopy(value))
    except SchemaError as exc:
        raise RegistryError(422, INVALID_SCHEMA, f"Invalid schema {text}, details: {exc}") from None
    except Exception as exc:  # fastavro's own checks
        raise RegistryError(422, INVALID_SCHEMA, f"Invalid schema {text}, details: {exc}") from None
    stored = normalize(value) if normalize_it else value
    return json.dumps(stored, separators=(",", ":")), schema_key(value)


class SchemaStore:
    """The registry state, loaded from and saved to ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / STATE_FILE
        data_dir.mkdir(parents=True, exist_ok=True)
        self.state: dict[str, Any] = self._load()
        self._keys: dict[str, int] = {}
        self._reindex()

    # --- persistence -----------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": 1, "next_id": 1, "schemas": {}, "subjects": {}, "config": {"subjects": {}}}
        try:
            state: dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON ({exc}); restore or remove it") from None
        missing = [
            k for k in ("next_id", "schemas", "subjects", "config") if not isinstance(state, dict) or k not in state
        ]
        if missing:
            raise ValueError(f"{self.path} is not a tillflow registry state file (no {', '.join(missing)})")
        return state

    def _reindex(self) -> None:
        self._keys = {schema_key(json.loads(s["schema"])): int(i) for i, s in self.state["schemas"].items()}

    def _save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically, then make it current; on failure nothing changes (50001)."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".tmp", dir=self.data_dir)
            os.fchmod(fd, 0o644)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(state, fh, indent=1, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(self.data_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise RegistryError(500, STORE_ERROR, f"Error in the backend data store: {exc}") from exc
        self.state = state
        self._reindex()

    def _draft(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    # --- helpers ---------------------------------------------------------------------------------------

    def _versions(
        self, subject: str, deleted: bool = False, state: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = (state or self.state)["subjects"].get(subject, [])
        return [v for v in entries if deleted or not v["deleted"]]

    def _schema_text(self, schema_id: int) -> str:
        text: str = self.state["schemas"][str(schema_id)]["schema"]
        return text

    def _entry(self, subject: str, version: int | None, deleted: bool) -> dict[str, Any]:
        versions = self._versions(subject, deleted)
        if not versions:
            raise _subject_not_found(subject)
        if version is None:
            return versions[-1]
        for entry in versions:
            if entry["version"] == version:
                return entry
        raise _version_not_found(version)

    def _level(self, subject: str) -> str:
        level: str = self.state["config"]["subjects"].get(subject) or self.global_level
        return level

    @property
    def global_level(self) -> str:
        level: str = self.state["config"].get("global") or DEFAULT_LEVEL
        return level

    def _schema_body(self, subject: str, entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "subject": subject,
            "version": entry["version"],
            "id": entry["id"],
            "schema": self._schema_text(entry["id"]),
        }

    # --- subjects and versions -------------------------------------------------------------------------

    def subjects(self, prefix: str = "", deleted: bool = False, deleted_only: bool = False) -> list[str]:
        out = []
        for subject, entries in self.state["subjects"].items():
            if not subject.startswith(prefix):
                continue
            live = any(not v["deleted"] for v in entries)
            if (deleted_only and not live and entries) or (not deleted_only and (live or (deleted and entries))):
                out.append(subject)
        return sorted(out)

    def versions(self, subject: str, deleted: bool = False, deleted_only: bool = False) -> list[int]:
        entries = self._versions(subject, deleted or deleted_only)
        if not entries:
            raise _subject_not_found(subject)
        return [v["version"] for v in entries if not deleted_only or v["deleted"]]

    def get_version(self, subject: str, version: str, deleted: bool = False) -> dict[str, Any]:
        return self._schema_body(subject, self._entry(subject, parse_version(version), deleted))

    def register(self, subject: str, request: Any, normalize_it: bool = False) -> dict[str, Any]:
        """Register a schema under ``subject``; the same schema again returns its id and adds no version."""
        text, key = validate_schema(request, normalize_it)
        live = self._versions(subject)
        existing_id = self._keys.get(key)
        for entry in live:
            if entry["id"] == existing_id:
                return {"id": entry["id"]}
        level = self._level(subject)
        problems = check(text, [self._schema_text(v["id"]) for v in live], level)
        if problems:
            raise RegistryError(
                409,
                INCOMPATIBLE_SCHEMA,
                f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
                f"details: [{'; '.join(problems)}; compatibility: {level}]",
            )
        state = self._draft()
        if existing_id is None:
            existing_id = state["next_id"]
            state["next_id"] += 1
            state["schemas"][str(existing_id)] = {"schema": text, "schemaType": "AVRO"}
        entries = state["subjects"].setdefault(subject, [])
        version = max((v["version"] for v in entries), default=0) + 1
        entries.append({"version": version, "id": existing_id, "deleted": False})
        self._save(state)
        return {"id": existing_id}

    def lookup(self, subject: str, request: Any, normalize_it: bool = False, deleted: bool = False) -> dict[str, Any]:
        """The version of ``subject`` holding this schema (POST /subjects/{subject})."""
        entries = self._versions(subject, deleted)
        if not entries:
            raise _subject_not_found(subject)
        _text, key = validate_schema(request, normalize_it)
        schema_id = self._keys.get(key)
        for entry in reversed(entries):
            if entry["id"] == schema_id:
                return self._schema_body(subject, entry)
        raise RegistryError(404, SCHEMA_NOT_FOUND, "Schema not found")

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        entries = self._versions(subject, deleted=True)
        if not entries:
            raise _subject_not_found(subject)
        live = [v for v in entries if not v["deleted"]]
        if permanent and live:
            raise RegistryError(
                404,
                SUBJECT_NOT_SOFT_DELETED,
                f"Subject '{subject}' was not deleted first before being permanently deleted",
            )
        if not permanent and not live:
            raise RegistryError(
                404,
                SUBJECT_SOFT_DELETED,
                f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently",
            )
        state = self._draft()
        if permanent:
            removed = [v["version"] for v in state["subjects"].pop(subject)]
            state["config"]["subjects"].pop(subject, None)
            self._collect_garbage(state)
        else:
            removed = []
            for entry in state["subjects"][subject]:
                if not entry["deleted"]:
                    entry["deleted"] = True
                    removed.append(entry["version"])
        self._save(state)
        return removed

    def delete_version(self, subject: str, version: str, permanent: bool = False) -> int:
        number = parse_version(version)
        entries = self._versions(subject, deleted=True)
        if not entries:
            raise _subject_not_found(subject)
        live = [v for v in entries if not v["deleted"]]
        if number is None:
            target = (live or entries)[-1]
        else:
            found = [v for v in entries if v["version"] == number]
            if not found:
                raise _version_not_found(number)
            target = found[0]
        if target["deleted"] and not permanent:
            raise RegistryError(
                404,
                VERSION_SOFT_DELETED,
                f"Subject '{subject}' Version {target['version']} was soft deleted."
                "Set permanent=true to delete permanently",
            )
        if permanent and not target["deleted"]:
            raise RegistryError(
                404,
                VERSION_NOT_SOFT_DELETED,
                f"Subject '{subject}' Version {target['version']} was not deleted first "
                "before being permanently deleted",
            )
        state = self._draft()
        kept = [v for v in state["subjects"][subject] if v["version"] != target["version"]]
        if permanent:
            if kept:
                state["subjects"][subject] = kept
            else:
                del state["subjects"][subject]
            self._collect_garbage(state)
        else:
            for entry in state["subjects"][subject]:
                if entry["version"] == target["version"]:
                    entry["deleted"] = True
        self._save(state)
        return int(target["version"])

    @staticmethod
    def _collect_garbage(state: dict[str, Any]) -> None:
        """Drop schemas no version refers to any more (ids are never reused: next_id only grows)."""
        used = {str(v["id"]) for entries in state["subjects"].values() for v in entries}
        for schema_id in list(state["schemas"]):
            if schema_id not in used:
                del state["schemas"][schema_id]

    # --- schemas by id ---------------------------------------------------------------------------------

    def _require_id(self, schema_id: int) -> None:
        if str(schema_id) not in self.state["schemas"]:
            raise RegistryError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        self._require_id(schema_id)
        return {"schema": self._schema_text(schema_id)}

    def id_versions(self, schema_id: int, deleted: bool = False) -> list[dict[str, Any]]:
        self._require_id(schema_id)
        return [
            {"subject": subject, "version": v["version"]}
            for subject in sorted(self.state["subjects"])
            for v in self._versions(subject, deleted)
            if v["id"] == schema_id
        ]

    def id_subjects(self, schema_id: int, deleted: bool = False) -> list[str]:
        return sorted({item["subject"] for item in self.id_versions(schema_id, deleted)})

    # --- compatibility ---------------------------------------------------------------------------------

    def test_compatibility(
        self, subject: str, version: str | None, request: Any, verbose: bool = False, normalize_it: bool = False
    ) -> dict[str, Any]:
        """POST /compatibility/subjects/{subject}/versions[/{version}]."""
        number = parse_version(version) if version is not None else None
        text, _key = validate_schema(request, normalize_it)
        live = self._versions(subject)
        if version is not None:
            if not live:
                raise _subject_not_found(subject)
            previous = live if number is None else [self._entry(subject, number, False)]
        else:
            previous = live
        level = self._level(subject)
        problems = check(text, [self._schema_text(v["id"]) for v in previous], level)
        body: dict[str, Any] = {"is_compatible": not problems}
        if verbose:
            body["messages"] = [*problems, f"compatibility: {level}"] if problems else []
        return body

    # --- config ----------------------------------------------------------------------------------------

    def get_config(self, subject: str | None = None, default_to_global: bool = False) -> dict[str, Any]:
        if subject is None:
            return {"compatibilityLevel": self.global_level}
        level = self.state["config"]["subjects"].get(subject)
        if level is None:
            if default_to_global:
                return {"compatibilityLevel": self.global_level}
            raise RegistryError(
                404,
                SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return {"compatibilityLevel": level}

    def set_config(self, subject: str | None, request: Any) -> dict[str, Any]:
        value = request.get("compatibility", request.get("compatibilityLevel")) if isinstance(request, dict) else None
        level = parse_level(value)
        state = self._draft()
        if subject is None:
            state["config"]["global"] = level
        else:
            state["config"]["subjects"][subject] = level
        self._save(state)
        return {"compatibility": level}

    def delete_config(self, subject: str | None = None) -> dict[str, Any]:
        state = self._draft()
        if subject is None:
            previous = self.global_level
            state["config"].pop("global", None)
        else:
            previous = state["config"]["subjects"].pop(subject, None)
            if previous is None:
                if not self._versions(subject, deleted=True):
                    raise _subject_not_found(subject)
                previous = self.global_level
        self._save(state)
        return {"compatibilityLevel": previous}
