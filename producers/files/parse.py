"""Parse one export file with its spec into tickets and per-line errors (pure: bytes in, tickets out)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from producers.files.spec import TICKET_FIELDS, FileSpec
from producers.pos.common import MappingError, build, merge_payments, method_from_name, minor_units
from schemas.models import Channel, PaymentMethod, PosTicket, TicketKind, TicketLine, signed_by_kind
from tillflow.errors import ContractError


@dataclass(frozen=True)
class LineError:
    line: int
    reason: str
    ticket: tuple[str, str] | None = field(default=None, compare=False)
    """(store code, ticket number) of a row that could not be read but still names its ticket."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class RowError(MappingError):
    """A problem on one file line of a ticket (a line element, or a row other than the first)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


@dataclass
class Row:
    """One ticket line as raw strings, with the file line it came from."""

    line: int
    values: dict[str, str]
    payments: list[tuple[int, str, str]] = field(default_factory=list)
    lines: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """XML only: the ticket's line elements (a tabular row is itself one line)."""


@dataclass
class ParseResult:
    tickets: list[PosTicket]
    errors: list[LineError]
    rows: int


# --- values ----------------------------------------------------------------------------------------------------


def number_text(raw: str, spec: FileSpec) -> str:
    """A file number as a plain decimal string: thousands removed, decimal point, trailing minus moved."""
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if spec.thousands:
        text = text.replace(spec.thousands, "")
    if spec.decimal != ".":
        if "." in text and spec.thousands != ".":
            raise MappingError(f"{raw!r} uses '.' but the spec's decimal separator is {spec.decimal!r}")
        text = text.replace(spec.decimal, ".")
    if text.endswith("-"):
        text = "-" + text[:-1]
    if not text:
        raise MappingError("empty number")
    return text


def amount(raw: str, spec: FileSpec, currency: str, what: str) -> int:
    try:
        text = number_text(raw, spec)
    except MappingError as exc:
        raise MappingError(f"{what}: {exc}") from None
    if spec.amounts == "minor":
        if not text.lstrip("-").isdigit():
            raise MappingError(f"{what}: {raw!r} is not a whole number of minor units")
        return int(text)
    return minor_units(text, currency, what)


def quantity(raw: str, spec: FileSpec) -> float:
    try:
        return float(number_text(raw, spec))
    except (MappingError, ValueError):
        raise MappingError(f"quantity: {raw!r} is not a number") from None


def timestamp(values: dict[str, str], spec: FileSpec) -> datetime:
    if "occurred_at" in values:
        text, fmt = values["occurred_at"].strip(), spec.date_format
    else:
        text = values.get("date", "").strip()
        fmt = spec.date_format
        if values.get("time"):
            text, fmt = f"{text} {values['time'].strip()}", f"{fmt} {spec.time_format}"
    try:
        ts = datetime.strptime(text, fmt)
    except ValueError:
        raise MappingError(f"time {text!r} does not match the format {fmt!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=spec.zone)


def _code(raw: str | None, table: dict[str, Any], kind: Any, what: str) -> Any:
    value = (raw or "").strip()
    if value in table:
        return table[value]
    try:
        return kind(value.upper())
    except ValueError:
        known = ", ".join(sorted(table)) or ", ".join(k.value for k in kind)
        raise MappingError(f"{what} code {value!r} is unknown (known: {known})") from None


# --- records ---------------------------------------------------------------------------------------------------


def _key(values: dict[str, str]) -> tuple[str, str] | None:
    """(store code, ticket number) of a row, or None when it has no ticket number."""
    number = values.get("ticket", "").strip()
    return (values.get("store", "").strip(), number) if number else None


def _tabular(text: str, spec: FileSpec) -> Iterator[Row | LineError]:
    lines = text.splitlines()
    start = spec.skip_lines
    if spec.format == "fixed":
        for n, line in enumerate(lines[start:], start + 1):
            if not line.strip():
                continue
            fixed: dict[str, str] = {}
            short = [k for k, loc in spec.fields.items() if isinstance(loc, list) and len(line) < loc[0] + 1]
            if short:
                known = {k: line[loc[0] : loc[1]] for k, loc in spec.fields.items() if isinstance(loc, list)}
                reason = f"line is {len(line)} characters, too short for {', '.join(short)}"
                yield LineError(n, reason, _key(known) if "ticket" not in short else None)
                continue
            for key, loc in spec.fields.items():
                assert isinstance(loc, list)
                fixed[key] = line[loc[0] : loc[1]].strip()
            yield Row(n, fixed)
        return
    delimiter = spec.delimiter or ("\t" if spec.format == "txt" else ",")
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=delimiter)
    header: list[str] | None = None
    for cols in reader:
        n = start + reader.line_num
        if not any(c.strip() for c in cols):
            continue
        if spec.header and header is None:
            header = [c.strip() for c in cols]
            missing = [str(v) for v in spec.fields.values() if isinstance(v, str) and v not in header]
            if missing:
                yield LineError(n, f"header has no column(s) {', '.join(missing)}")
                return
            continue
        values: dict[str, str] = {}
        problem = None
        for key, loc in spec.fields.items():
            idx = header.index(loc) if isinstance(loc, str) and header else loc
            if not isinstance(idx, int):
                problem = f"column {loc!r} cannot be found without a header"
                break
            if idx >= len(cols):
                problem = problem or f"{len(cols)} columns, {key} is in column {idx + 1}"
                continue
            values[key] = cols[idx]
        yield LineError(n, problem, _key(values)) if problem else Row(n, values)


_DECLARED = re.compile(rb"^<\?xml[^>]*\bencoding\s*=", re.ASCII)
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def xml_encoding(data: bytes, spec: FileSpec) -> str | None:
    """The spec's encoding for a file that does not state its own (no BOM, no ``encoding=`` declaration)."""
    if data.startswith(_BOMS) or _DECLARED.match(data.lstrip()):
        return None
    return spec.encoding


def _xml(data: bytes, spec: FileSpec) -> Iterator[Row | LineError]:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, encoding=xml_encoding(data, spec))
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        yield LineError(exc.lineno or 0, f"not well-formed XML: {exc.msg}")
        return

    def text(el: Any, path: Any) -> str | None:
        result = el.xpath(f"string({path})") if isinstance(path, str) else None
        return str(result) if result not in (None, "") else None

    for ticket in root.xpath(spec.ticket_xpath or "."):
        values = {k: v for k, p in spec.fields.items() if k not in _LINE and (v := text(ticket, p)) is not None}
        row = Row(ticket.sourceline or 0, values)
        for el in ticket.xpath(spec.line_xpath) if spec.line_xpath else ():
            lv = {k: v for k, p in spec.fields.items() if k in _LINE and (v := text(el, p)) is not None}
            row.lines.append((el.sourceline or row.line, lv))
        for el in ticket.xpath(spec.payment_xpath) if spec.payment_xpath else ():
            method = text(el, spec.payment_fields.get("method", "@method")) or ""
            amt = text(el, spec.payment_fields.get("amount", "@amount")) or ""
            row.payments.append((el.sourceline or row.line, method, amt))
        yield row


_LINE = {"sku", "description", "quantity", "unit_price", "line_discount", "line_net", "category"}


# --- tickets ---------------------------------------------------------------------------------------------------


def _line(values: dict[str, str], spec: FileSpec, currency: str) -> TicketLine:
    qty = quantity(values.get("quantity") or "1", spec)
    price = amount(values["unit_price"], spec, currency, "unit_price") if values.get("unit_price") else 0
    disc = amount(values["line_discount"], spec, currency, "line_discount") if values.get("line_discount") else 0
    if values.get("line_net"):
        net = amount(values["line_net"], spec, currency, "line_net")
    else:
        net = round(qty * price) - disc
    sku = (values.get("sku") or "").strip()
    if not sku:
        raise MappingError("sku is empty")
    return TicketLine(sku=sku, description=(values.get("description") or "").strip() or None, quantity=qty,
                      unit_price=price, discount_amount=disc, net_amount=net,
                      category=(values.get("category") or "").strip() or None)  # fmt: skip


def _line_at(n: int, values: dict[str, str], spec: FileSpec, currency: str) -> TicketLine:
    try:
        return _line(values, spec, currency)
    except (MappingError, ValueError) as exc:
        raise RowError(n, str(exc)) from None


def _same_ticket_fields(rows: list[Row]) -> None:
    """Rows of one ticket must agree on its ticket-level fields (an empty cell is no disagreement)."""
    first = rows[0].values
    for row in rows[1:]:
        for key in sorted(TICKET_FIELDS & row.values.keys()):
            value, expected = row.values[key].strip(), first.get(key, "").strip()
            if value and expected and value != expected:
                raise RowError(row.line, f"{key} {value!r} differs from {expected!r} on line {rows[0].line}")


def _ticket(rows: list[Row], spec: FileSpec, ingested_at: datetime) -> PosTicket:
    first = rows[0].values
    currency = (first.get("currency") or spec.currency or "").strip().upper()
    raw_store = (first.get("store") or "").strip()
    if "store" in spec.fields:
        if spec.stores:
            if raw_store not in spec.stores:
                raise MappingError(f"store code {raw_store!r} is not in the spec's stores")
            store = spec.stores[raw_store]
        else:
            store = raw_store
    else:
        store = spec.store or ""
    number = first["ticket"].strip()
    kind = _code(first.get("kind"), spec.kinds, TicketKind, "kind") if first.get("kind") else TicketKind.SALE
    if spec.format == "xml":
        line_values = [(n, lv) for r in rows for n, lv in r.lines]
    else:
        line_values = [(r.line, r.values) for r in rows]
        _same_ticket_fields(rows)
    lines = tuple(_line_at(n, v, spec, currency) for n, v in line_values if v.get("sku") or v.get("unit_price"))
    tax = amount(first["tax_amount"], spec, currency, "tax_amount") if first.get("tax_amount") else 0
    discount = sum(ln.discount_amount for ln in lines)
    if lines:
        net = sum(ln.net_amount for ln in lines) - (tax if spec.prices_include_tax else 0)
        if first.get("total"):
            total = amount(first["total"], spec, currency, "total")
            if abs(net + tax - total) > len(lines):
                raise MappingError(f"lines ({net}) + tax ({tax}) = {net + tax} minor units, but total is {total}")
    elif first.get("total"):
        net = amount(first["total"], spec, currency, "total") - tax
    else:
        raise MappingError("ticket has neither lines nor a total")
    payments: list[tuple[PaymentMethod, int]] = []
    for r in rows:
        for _, method, amt in r.payments:
            payments.append((_method(method, spec), amount(amt, spec, currency, "payment amount")))
    if not payments and first.get("payment_method"):
        paid = (
            amount(first["payment_amount"], spec, currency, "payment_amount")
            if first.get("payment_amount")
            else net + tax
        )
        payments.append((_method(first["payment_method"], spec), paid))
    original = (first.get("original_ticket") or "").strip()
    channel = (
        _code(first.get("channel"), spec.channels, Channel, "channel") if first.get("channel") else Channel.IN_STORE
    )
    fields = dict(
        ticket_id=f"{spec.name}:{store}:{number}", source=spec.name, store_id=store, tenant_id=spec.tenant_id,
        terminal_id=(first.get("terminal") or "").strip() or None, kind=kind, occurred_at=timestamp(first, spec),
        currency=currency, gross_amount=net + discount, net_amount=net, tax_amount=tax, discount_amount=discount,
        payments=merge_payments(payments), channel=channel, lines=lines,
        original_ticket_id=f"{spec.name}:{store}:{original}" if original else None, ingested_at=ingested_at,
    )  # fmt: skip
    # Exports write refunds and voids as positive figures with a type code; the contract signs them.
    return build(f"ticket {number}", **signed_by_kind(fields))


def _method(raw: str, spec: FileSpec) -> PaymentMethod:
    value = raw.strip()
    if value in spec.payment_methods:
        return spec.payment_methods[value]
    try:
        return PaymentMethod(value.upper())
    except ValueError:
        return method_from_name(value)


class UndecodableFile(ContractError):
    """A file that is not in the spec's encoding; ``error`` names the first bad byte's line."""

    def __init__(self, error: LineError) -> None:
        super().__init__(str(error))
        self.error = error


def parse_rows(data: bytes, spec: FileSpec) -> list[Row | LineError]:
    """One complete file's rows as raw strings (or the error of each line that cannot be read)."""
    if spec.format == "xml":
        return list(_xml(data, spec))
    try:
        text = data.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UndecodableFile(LineError(line, f"not valid {spec.encoding}: byte {data[exc.start]:#04x}")) from None
    return list(_tabular(text.lstrip("\ufeff"), spec))


def row_ticket_key(row: Row) -> tuple[str, str] | None:
    """(store code, ticket number) of a row: the ticket it belongs to."""
    return _key(row.values)


def parse_file(data: bytes, spec: FileSpec, ingested_at: datetime) -> ParseResult:
    """Tickets from one complete file, and an error for every line or ticket that could not be used."""
    errors: list[LineError] = []
    try:
        records = parse_rows(data, spec)
    except UndecodableFile as exc:
        return ParseResult([], [exc.error], 0)
    tickets, more = rows_to_tickets(records, spec, ingested_at)
    errors.extend(more)
    return ParseResult(tickets, sorted(errors, key=lambda e: e.line), len(records))


def rows_to_tickets(
    records: list[Row | LineError], spec: FileSpec, ingested_at: datetime
) -> tuple[list[PosTicket], list[LineError]]:
    """Group rows by store and ticket number into tickets.

    A ticket with any bad row is not sent at all (never with some of its lines): the bad row's error names its
    line and reason, and every other row of that ticket is reported as not sent.
    """
    errors: list[LineError] = []
    groups: dict[tuple[str, str], list[Row]] = {}
    bad: dict[tuple[str, str], list[LineError]] = {}
    for rec in records:
        if isinstance(rec, LineError):
            if rec.ticket is None:
                errors.append(rec)
            else:
                bad.setdefault(rec.ticket, []).append(rec)
            continue
        key = _key(rec.values)
        if key is None:
            errors.append(LineError(rec.line, "ticket number is empty"))
            continue
        groups.setdefault(key, []).append(rec)
    tickets = []
    for key in dict.fromkeys([*groups, *bad]):
        rows = groups.get(key, [])
        problems = [(e.line, e.reason) for e in bad.get(key, [])]
        if not problems:
            try:
                tickets.append(_ticket(rows, spec, ingested_at))
                continue
            except RowError as exc:
                problems = [(exc.line, str(exc))]
            except (MappingError, ValueError) as exc:
                problems = [(rows[0].line, str(exc))]
        errors.extend(_not_sent(key[1], problems, [r.line for r in rows]))
    return tickets, errors


def _not_sent(number: str, problems: list[tuple[int, str]], lines: list[int]) -> list[LineError]:
    """One error per bad line with its reason, and one per other line of the ticket pointing at them."""
    out = [LineError(n, f"ticket {number} not sent: {reason}") for n, reason in problems]
    seen = sorted({n for n, _ in problems})
    where = f"line {seen[0]} is bad" if len(seen) == 1 else f"lines {', '.join(map(str, seen))} are bad"
    out += [LineError(n, f"ticket {number} not sent: {where}") for n in lines if n not in seen]
    return out
