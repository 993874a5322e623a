"""HTTP layer of the local registry: Confluent's REST paths on aiohttp, mapped onto :class:`SchemaStore`."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tillflow.registry.store import RegistryError, SchemaStore

log = logging.getLogger("tillflow.registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
STORE_KEY: web.AppKey[SchemaStore] = web.AppKey("store", SchemaStore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reply(body: Any, status: int = 200) -> web.Response:
    return _text(json.dumps(body, separators=(",", ":")), status)


def _text(text: str, status: int = 200) -> web.Response:
    """A response with Confluent's content type, exactly (no charset parameter)."""
    return web.Response(status=status, body=text.encode(), content_type=CONTENT_TYPE)


def _error(status: int, code: int, message: str) -> web.Response:
    return _reply({"error_code": code, "message": message}, status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as Confluent's ``{"error_code", "message"}`` body."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return _reply(exc.body(), exc.status)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
        raise
    except Exception:
        log.exception("error handling %s %s", request.method, request.path)
        return _error(500, 500, "Internal Server Error")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").strip().lower() == "true"


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        return default


def _page(request: web.Request, items: list[Any]) -> list[Any]:
    """``offset`` and ``limit`` query parameters, as Confluent's list endpoints take them."""
    offset = max(_int(request, "offset", 0), 0)
    limit = _int(request, "limit", -1)
    return items[offset:] if limit < 0 else items[offset : offset + limit]


def _schema_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def _body(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text) if text.strip() else None
    except ValueError as exc:
        raise RegistryError(400, 400, f"Unrecognized JSON body: {exc}") from None


def _store(request: web.Request) -> SchemaStore:
    return request.app[STORE_KEY]


async def root(request: web.Request) -> web.Response:
    return _reply({})


async def list_subjects(request: web.Request) -> web.Response:
    subjects = _store(request).subjects(
        request.query.get("subjectPrefix", ""),
        deleted=_flag(request, "deleted"),
        deleted_only=_flag(request, "deletedOnly") or _flag(request, "deleted_only"),
    )
    return _reply(_page(request, subjects))


async def list_versions(request: web.Request) -> web.Response:
    versions = _store(request).versions(
        request.match_info["subject"],
        deleted=_flag(request, "deleted"),
        deleted_only=_flag(request, "deletedOnly") or _flag(request, "deleted_only"),
    )
    return _reply(_page(request, versions))


async def register(request: web.Request) -> web.Response:
    body = await _body(request)
    return _reply(_store(request).register(request.match_info["subject"], body, _flag(request, "normalize")))


async def lookup(request: web.Request) -> web.Response:
    body = await _body(request)
    return _reply(
        _store(request).lookup(
            request.match_info["subject"], body, _flag(request, "normalize"), deleted=_flag(request, "deleted")
        )
    )


async def delete_subject(request: web.Request) -> web.Response:
    return _reply(_store(request).delete_subject(request.match_info["subject"], _flag(request, "permanent")))


async def get_version(request: web.Request) -> web.Response:
    return _reply(
        _store(request).get_version(
            request.match_info["subject"], request.match_info["version"], deleted=_flag(request, "deleted")
        )
    )


async def get_version_schema(request: web.Request) -> web.Response:
    body = _store(request).get_version(
        request.match_info["subject"], request.match_info["version"], deleted=_flag(request, "deleted")
    )
    return _text(body["schema"])


async def referenced_by(request: web.Request) -> web.Response:
    """Ids of schemas that reference this version: always none, references are not supported."""
    _store(request).get_version(request.match_info["subject"], request.match_info["version"], deleted=True)
    return _reply([])


async def delete_version(request: web.Request) -> web.Response:
    return _reply(
        _store(request).delete_version(
            request.match_info["subject"], request.match_info["version"], _flag(request, "permanent")
        )
    )


async def schema_by_id(request: web.Request) -> web.Response:
    return _reply(_store(request).schema_by_id(_schema_id(request)))


async def schema_text_by_id(request: web.Request) -> web.Response:
    body = _store(request).schema_by_id(_schema_id(request))
    return _text(body["schema"])


async def id_versions(request: web.Request) -> web.Response:
    return _reply(_page(request, _store(request).id_versions(_schema_id(request), _flag(request, "deleted"))))


async def id_subjects(request: web.Request) -> web.Response:
    return _reply(_page(request, _store(request).id_subjects(_schema_id(request), _flag(request, "deleted"))))


async def schema_types(request: web.Request) -> web.Response:
    return _reply(["AVRO"])


async def compatibility(request: web.Request) -> web.Response:
    body = await _body(request)
    return _reply(
        _store(request).test_compatibility(
            request.match_info["subject"],
            request.match_info.get("version"),
            body,
            verbose=_flag(request, "verbose"),
            normalize_it=_flag(request, "normalize"),
        )
    )


async def get_config(request: web.Request) -> web.Response:
    subject = request.match_info.get("subject")
    return _reply(_store(request).get_config(subject, _flag(request, "defaultToGlobal")))


async def put_config(request: web.Request) -> web.Response:
    body = await _body(request)
    return _reply(_store(request).set_config(request.match_info.get("subject"), body))


async def delete_config(request: web.Request) -> web.Response:
    return _reply(_store(request).delete_config(request.match_info.get("subject")))


async def get_mode(request: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


async def contexts(request: web.Request) -> web.Response:
    return _reply(["."])


def make_app(data_dir: Path) -> web.Application:
    """The aiohttp application serving the registry kept in ``data_dir``."""
    app = web.Application(middlewares=[_errors], client_max_size=16 * 1024 * 1024)
    app[STORE_KEY] = SchemaStore(data_dir)
    add = app.router.add_route
    add("GET", "/", root)
    add("GET", "/subjects", list_subjects)
    add("GET", "/subjects/{subject}/versions", list_versions)
    add("POST", "/subjects/{subject}/versions", register)
    add("GET", "/subjects/{subject}/versions/{version}", get_version)
    add("DELETE", "/subjects/{subject}/versions/{version}", delete_version)
    add("GET", "/subjects/{subject}/versions/{version}/schema", get_version_schema)
    add("GET", "/subjects/{subject}/versions/{version}/referencedby", referenced_by)
    add("POST", "/subjects/{subject}", lookup)
    add("DELETE", "/subjects/{subject}", delete_subject)
    add("GET", "/schemas/types", schema_types)
    add("GET", "/schemas/ids/{id}", schema_by_id)
    add("GET", "/schemas/ids/{id}/schema", schema_text_by_id)
    add("GET", "/schemas/ids/{id}/versions", id_versions)
    add("GET", "/schemas/ids/{id}/subjects", id_subjects)
    add("POST", "/compatibility/subjects/{subject}/versions", compatibility)
    add("POST", "/compatibility/subjects/{subject}/versions/{version}", compatibility)
    for path in ("/config", "/config/{subject}"):
        add("GET", path, get_config)
        add("PUT", path, put_config)
        add("DELETE", path, delete_config)
    add("GET", "/mode", get_mode)
    add("GET", "/mode/{subject}", get_mode)
    add("GET", "/contexts", contexts)
    return app


def lock_data_dir(data_dir: Path) -> int:
    """Hold an exclusive lock on ``data_dir`` for this process; a second registry on it is refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"another registry is using {data_dir} (lock {data_dir / '.lock'} is held)") from None
    return fd


async def _serve(host: str, port: int, data_dir: Path) -> None:
    app = make_app(data_dir)
    runner = web.AppRunner(app, access_log=log)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    log.info("tillflow local schema registry on http://%s:%d (data in %s)", host, port, data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: signal received")
    await runner.cleanup()
    log.info("stopped")


def serve(host: str, port: int, data_dir: Path) -> None:
    """Run the registry in the foreground until SIGTERM or SIGINT; every acknowledged change is on disk."""
    data_dir = data_dir.resolve()
    lock_data_dir(data_dir)
    try:
        asyncio.run(_serve(host, port, data_dir))
    except ValueError as exc:  # an unreadable state file
        raise SystemExit(str(exc)) from None
