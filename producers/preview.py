"""Staging validation, the step POS integrators run before go-live (``--dry-run`` of ``poll``, ``files watch`` and
``cdc poll``): a sample of source records side by side with the tickets they map to, and each ticket field's
fill rate, without publishing anything. :func:`fill_rates` and :func:`source_fields` are pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas.models import _PERSONAL_DATA, PosTicket

TICKET_FIELDS = ("ticket_id", "store_id", "terminal_id", "kind", "channel", "occurred_at", "currency",
                 "gross_amount", "net_amount", "tax_amount", "discount_amount", "original_ticket_id")  # fmt: skip
LINE_FIELDS = ("sku", "description", "quantity", "unit_price", "discount_amount", "net_amount", "category")
PAYMENT_FIELDS = ("method", "amount")


@dataclass
class Sample:
    """One source record (a vendor order, a file's rows, a database ticket row) and what it mapped to."""

    source: dict[str, Any]
    tickets: list[PosTicket] = field(default_factory=list)
    error: str | None = None


def _filled(value: Any) -> bool:
    return value not in (None, "", (), [])


def fill_rates(tickets: Sequence[PosTicket]) -> dict[str, float]:
    """Share of tickets (of lines, of payments) where each field is filled: ``net_amount``, ``lines.sku``,
    ``payments.method``. Zero amounts count as filled; empty strings and None do not."""
    rates: dict[str, float] = {}
    for name in TICKET_FIELDS:
        rates[name] = sum(_filled(getattr(t, name)) for t in tickets) / len(tickets) if tickets else 0.0
    lines = [ln for t in tickets for ln in t.lines]
    for name in LINE_FIELDS:
        rates[f"lines.{name}"] = sum(_filled(getattr(ln, name)) for ln in lines) / len(lines) if lines else 0.0
    pays = [p for t in tickets for p in t.payments]
    for name in PAYMENT_FIELDS:
        rates[f"payments.{name}"] = sum(_filled(getattr(p, name)) for p in pays) / len(pays) if pays else 0.0
    rates["tickets with lines"] = sum(bool(t.lines) for t in tickets) / len(tickets) if tickets else 0.0
    rates["tickets with payments"] = sum(bool(t.payments) for t in tickets) / len(tickets) if tickets else 0.0
    return rates


def source_fields(record: Any, prefix: str = "", limit: int = 40) -> dict[str, str]:
    """A record's scalar fields as ``path: value`` (nested objects dotted, lists by index), first ``limit``,
    without anything that looks like customer personal data."""
    out: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and _PERSONAL_DATA.search(k):
                    continue
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value[:3]):
                walk(v, f"{path}[{i}]")
        else:
            out[path] = "" if value is None else str(value)

    walk(record, prefix)
    return out


def _ticket_text(t: PosTicket) -> str:
    head = [f"{name}: {getattr(t, name)}" for name in TICKET_FIELDS if _filled(getattr(t, name))]
    lines = [f"  line {ln.sku} x{ln.quantity:g} {ln.net_amount}" + (f" [{ln.category}]" if ln.category else "")
             for ln in t.lines[:5]]  # fmt: skip
    pays = [f"  pay {p.method.value} {p.amount}" for p in t.payments]
    return "\n".join(head + lines + pays)


def render(console: Console, title: str, samples: Sequence[Sample], tickets: Iterable[PosTicket], n: int = 3) -> None:
    """Print ``n`` samples side by side (source fields | mapped tickets), the errors, then the fill rates."""
    all_tickets = list(tickets)
    errors = [s for s in samples if s.error]
    console.print(f"[bold]{title}[/bold]: {len(samples)} source records, {len(all_tickets)} tickets mapped, "
                  f"{len(errors)} could not be mapped (dry run: nothing published, no checkpoint moved)",
                  soft_wrap=True)  # fmt: skip
    table = Table("source fields", "mapped tickets", show_lines=True, expand=True)
    for s in [s for s in samples if s.tickets][:n]:
        src = "\n".join(f"{k}: {v}" for k, v in source_fields(s.source).items())
        table.add_row(src, "\n\n".join(_ticket_text(t) for t in s.tickets))
    console.print(table)
    for s in errors[:n]:
        console.print(f"[red]not mapped:[/red] {s.error}", highlight=False, soft_wrap=True)
    rates = Table("field", "filled", title="fill rate per field")
    for name, rate in fill_rates(all_tickets).items():
        style = "red" if rate < 0.5 else ("yellow" if rate < 0.95 else "")
        rates.add_row(name, f"[{style}]{rate:.0%}[/{style}]" if style else f"{rate:.0%}")
    console.print(rates)
