"""Pieces of the normalizer loop that need no broker: raw record decoding and the SQLite state store."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro

from producers.cdc.normalize import TicketAssembler
from producers.cdc.service import RawDecoder, SqliteStore
from tests.support.cdc_events import SOURCE, Db, header

# The value schema the AvroConverter registers for the tickets table (nullable row structs, the envelope).
ROW = {"type": "record", "name": "Value", "namespace": "cdc.pos_paris_postgres.public.tickets", "fields": [
    {"name": "id", "type": "long"}, {"name": "till_no", "type": ["null", "int"], "default": None},
    {"name": "status", "type": "string"}, {"name": "closed_at", "type": ["null", "long"], "default": None},
    {"name": "total_gross", "type": "string"}, {"name": "total_net", "type": "string"},
    {"name": "total_tax", "type": "string"}, {"name": "total_discount", "type": "string"}]}  # fmt: skip
ENVELOPE = {"type": "record", "name": "Envelope", "namespace": "cdc.pos_paris_postgres.public.tickets", "fields": [
    {"name": "before", "type": ["null", ROW], "default": None},
    {"name": "after", "type": ["null", "Value"], "default": None},
    {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
                                "fields": [{"name": "ts_ms", "type": "long"},
                                           {"name": "lsn", "type": ["null", "long"]}]}},
    {"name": "op", "type": "string"}, {"name": "ts_ms", "type": ["null", "long"], "default": None}]}  # fmt: skip


def test_avro_and_json_change_events_decode_to_the_same_envelope() -> None:
    value = Db().event("c", None, header(21))
    value["source"] = {"ts_ms": value["source"]["ts_ms"], "lsn": value["source"]["lsn"]}
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, 42))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(ENVELOPE), value)
    asked: list[int] = []
    decoder = RawDecoder(lambda sid: asked.append(sid) or json.dumps(ENVELOPE))  # type: ignore[func-returns-value]
    avro = decoder.decode(buf.getvalue())
    assert avro == decoder.decode(json.dumps(value).encode()) == value
    decoder.decode(buf.getvalue())
    assert asked == [42]  # the writer schema is fetched once
    assert decoder.decode(None) is None
    asm = TicketAssembler(SOURCE, settle_s=1.0)
    asm.apply("tickets", avro, now=0.0)
    (out,) = asm.tick(now=2.0)
    assert out.ticket.gross_amount == 1250  # type: ignore[union-attr]


def test_sqlite_store_keeps_only_committed_states(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    store = SqliteStore(path)
    asm = TicketAssembler(SOURCE, store=store, settle_s=1.0)
    asm.apply("tickets", Db().event("c", None, header(22)), now=0.0)
    assert len(asm.tick(now=2.0)) == 1
    assert store.get("22") is not None  # visible to the running normalizer
    store.close()  # crash before commit: the broker never acknowledged the ticket
    assert SqliteStore(path).get("22") is None
    store = SqliteStore(path)
    asm = TicketAssembler(SOURCE, store=store, settle_s=1.0)
    asm.apply("tickets", Db().event("c", None, header(22)), now=0.0)
    assert len(asm.tick(now=2.0)) == 1  # published again, as it must be
    store.commit()
    store.close()
    state = SqliteStore(path).get("22")
    assert state is not None and state.versions == 1 and state.standing is not None
