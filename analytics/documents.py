"""Issued statements as documents: one CSV for the mall's month, and a PDF the mall can send (one page per
tenant, fpdf2). Amounts are printed from integer minor units, exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analytics.statements import EvidenceRow
from schemas.models import format_minor

if TYPE_CHECKING:
    from analytics.warehouse import Issued

CSV_COLUMNS = [
    "mall_id", "month", "tenant_id", "issue", "section", "item", "channel", "kind", "counted", "tickets",
    "amount_minor", "amount", "currency", "note",
]  # fmt: skip


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if metric.startswith("visitors") else f"{value:.1%}"


def evidence_note(row: EvidenceRow) -> str:
    """Plain words for an evidence row: how far the month sits from the tenant's history and its peers."""
    parts = []
    if row.vs_history is not None:
        months = "month" if row.history_months == 1 else "months"
        parts.append(f"{row.vs_history:.0%} of own median ({row.history_months} {months})")
    if row.vs_peers is not None:
        parts.append(f"{row.vs_peers:.0%} of peer median ({row.peer_stores} stores)")
    return "; ".join(parts) or "no history or peers to compare"


def csv_rows(issued: Sequence[Issued]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for item in issued:
        st = item.statement
        base: dict[str, object] = {"mall_id": st.mall_id, "month": st.month.strftime("%Y-%m"),
                                   "tenant_id": st.tenant_id, "issue": item.issue, "currency": st.currency}  # fmt: skip

        def add(
            section: str, name: str, amount: int | None = None, *, _base: dict[str, object] = base,
            _currency: str = st.currency, **extra: object,
        ) -> None:  # fmt: skip
            row = dict.fromkeys(CSV_COLUMNS, "") | _base | {"section": section, "item": name} | extra
            if amount is not None:
                row["amount_minor"] = amount
                row["amount"] = format_minor(amount, _currency)
            rows.append(row)

        for line in st.lines:
            add("sales", "net sales", line.net_amount, channel=line.channel, kind=line.kind,
                counted="yes" if line.counted else "no", tickets=line.tickets,
                note=f"{line.late_tickets} tickets after month end" if line.late_tickets else "")  # fmt: skip
        add("rent", "counted sales", st.counted_sales, note=st.lease.describe())
        add("rent", "breakpoint", st.breakpoint, note=str(st.lease.breakpoint))
        add("rent", "percentage rent", st.percentage_rent, note=f"{st.lease.percentage}% above the breakpoint")
        add("rent", "base rent", st.base_rent)
        add("rent", "rent due", st.rent_due)
        c = st.completeness
        add("completeness", "open days", tickets=c.open_days)
        add("completeness", "days with a silent feed", tickets=len(c.silent_days),
            note=" ".join(f"{s} {d}" for s, d in c.silent_days))  # fmt: skip
        add("completeness", "days without any data", tickets=len(c.days_without_data),
            note=" ".join(f"{s} {d}" for s, d in c.days_without_data))  # fmt: skip
        add("completeness", "tickets after month end", c.late_counted_amount, tickets=c.late_tickets)
        add("completeness", "days checked against the POS (sync-check)", tickets=len(c.sync))
        for sync in c.days_below_sync_target:
            add("completeness", f"sync rate {sync['local_date']}", tickets=sync["missing_tickets"],
                note=f"{sync['store_id']} {_pct(sync['sync_rate'])} of {sync['expected_tickets']} POS sales; "
                f"{sync['missing_tickets']} missing")  # fmt: skip
        for day in c.days:
            if day.pos_coverage is not None and day.pos_coverage < 1:
                add("completeness", f"POS coverage {day.local_date}", channel="", note=f"{day.store_id} "
                    f"{_pct(day.pos_coverage)} of {day.open_hours} hours with visitors")  # fmt: skip
        for ev in st.evidence:
            add("evidence", ev.metric, note=f"{_num(ev.value, ev.metric)}: {evidence_note(ev)}")
        for change in item.changes:
            before = _fig(change["item"], change["before"], st.currency)
            after = _fig(change["item"], change["after"], st.currency)
            note = f"issue {item.previous_issue}: {before}, issue {item.issue}: {after}"
            delta = change["after"] - change["before"]
            if _is_money(change["item"]):
                add("change", change["item"], delta, note=note)
            else:
                add("change", change["item"], tickets=delta, note=note)
    return rows


def write_csv(issued: Sequence[Issued], path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(issued))
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def write_pdf(issued: Sequence[Issued], path: Path, mall_name: str | None = None) -> Path:
    """One page per tenant: sales by channel and kind, the rent calculation, completeness, what changed since
    the previous issue, and the underreporting evidence."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(f"Tenant revenue statements {mall_name or ''}".strip())
    for item in issued:
        st = item.statement
        cur = st.currency
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 15)
        pdf.cell(0, 9, _latin1(f"Revenue statement {st.month:%Y-%m}: tenant {st.tenant_id}"), new_x="LMARGIN",
                 new_y="NEXT")  # fmt: skip
        pdf.set_font("Helvetica", "", 9)
        issue = f"Issue {item.issue}" + (f" (replaces issue {item.previous_issue})" if item.changes else "")
        pdf.cell(0, 5, _latin1(f"Mall {mall_name or st.mall_id}. Stores: {', '.join(st.stores)}. {issue}."),
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        terms = (f"Lease: base rent {format_minor(st.base_rent, cur)} {cur}, {st.lease.percentage}% above the "
                 f"breakpoint; {st.lease.describe()}.")  # fmt: skip
        pdf.multi_cell(0, 5, _latin1(terms), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        _heading(pdf, f"Net sales by channel and kind ({cur})")
        table = [("Channel", "Kind", "Tickets", "Net sales", "Counts")]
        for line in st.lines:
            table.append((line.channel, line.kind, f"{line.tickets:,}", format_minor(line.net_amount, cur),
                          "yes" if line.counted else "no"))  # fmt: skip
        _table(pdf, table, (40, 40, 25, 45, 20))
        pdf.ln(2)
        _heading(pdf, f"Percentage rent ({cur})")
        _table(pdf, [
            ("Counted sales", format_minor(st.counted_sales, cur)),
            (f"Breakpoint ({st.lease.breakpoint})", format_minor(st.breakpoint, cur)),
            (f"Percentage rent ({st.lease.percentage}% above breakpoint)", format_minor(st.percentage_rent, cur)),
            ("Base rent", format_minor(st.base_rent, cur)),
            ("Rent due", format_minor(st.rent_due, cur)),
        ], (110, 45), header=False)  # fmt: skip
        pdf.ln(2)
        c = st.completeness
        _heading(pdf, "Data completeness")
        low = [d for d in c.days if d.pos_coverage is not None and d.pos_coverage < 1]
        lines = [
            f"Open days (catalogue): {c.open_days}. Days without any data: {len(c.days_without_data)}"
            + (f" ({', '.join(f'{d:%d}' for _, d in c.days_without_data)})" if c.days_without_data else "") + ".",
            f"Days with a silent POS feed: {len(c.silent_days)}"
            + (f" ({', '.join(f'{s} {d}' for s, d in c.silent_days)})" if c.silent_days else "") + ".",
            f"Tickets received after month end: {c.late_tickets} "
            f"(counted sales {format_minor(c.late_counted_amount, cur)} {cur}).",
            (f"Sync rate against the POS (tillflow sync-check): {len(c.sync)} days checked, "
             f"{len(c.days_below_sync_target)} below {c.sync_target:.0%}"
             + (": " + ", ".join(f"{d['store_id']} {d['local_date']:%d %b} {_pct(d['sync_rate'])}"
                                 for d in c.days_below_sync_target[:10]) if c.days_below_sync_target else "")
             + "." if c.sync else "Sync rate against the POS: not checked (tillflow sync-check has not run)."),
            "POS coverage (hours with tickets / hours with visitors) below 100%: "
            + (", ".join(f"{d.local_date:%d %b} {_pct(d.pos_coverage)}" for d in low[:20]) or "none")
            + (f" and {len(low) - 20} more" if len(low) > 20 else "") + ".",
        ]  # fmt: skip
        for text in lines:
            pdf.multi_cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        if item.changes:
            pdf.ln(2)
            _heading(pdf, f"Changed since issue {item.previous_issue}")
            _table(pdf, [("Item", f"Issue {item.previous_issue}", f"Issue {item.issue}", "Change")] + [
                (ch["item"], _fig(ch["item"], ch["before"], cur), _fig(ch["item"], ch["after"], cur),
                 _fig(ch["item"], ch["after"] - ch["before"], cur))
                for ch in item.changes
            ], (70, 35, 35, 35))  # fmt: skip
        pdf.ln(2)
        _heading(pdf, "Underreporting evidence (against own history and category peers in the mall)")
        _table(pdf, [("Metric", "This month", "Own median", "Peer median", "Reading")] + [
            (ev.metric, _num(ev.value, ev.metric), _num(ev.history, ev.metric), _num(ev.peers, ev.metric),
             evidence_note(ev))
            for ev in st.evidence
        ], (38, 22, 22, 22, 86), size=7)  # fmt: skip
    pdf.output(str(path))
    return path


def _is_money(item: str) -> bool:
    return item.startswith(("sales", "counted", "breakpoint", "percentage", "base", "rent"))


def _fig(item: str, value: int, currency: str) -> str:
    return format_minor(value, currency) if _is_money(item) else str(value)


def _latin1(text: str) -> str:
    """The PDF's core fonts cover Latin-1 only: other characters (a store name in Devanagari) print as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _heading(pdf: object, text: str) -> None:
    pdf.set_font("Helvetica", "B", 11)  # type: ignore[attr-defined]
    pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")  # type: ignore[attr-defined]


def _table(pdf: object, rows: Sequence[Sequence[str]], widths: Sequence[int], header: bool = True,
           size: int = 9) -> None:  # fmt: skip
    for i, row in enumerate(rows):
        pdf.set_font("Helvetica", "B" if header and i == 0 else "", size)  # type: ignore[attr-defined]
        for j, (text, width) in enumerate(zip(row, widths, strict=True)):
            align = "R" if (j > 0 and text[:1].isdigit()) or (text[:1] == "-" and text[1:2].isdigit()) else "L"
            pdf.cell(width, 5, _latin1(text), border=1, align=align)  # type: ignore[attr-defined]
        pdf.ln(5)  # type: ignore[attr-defined]
