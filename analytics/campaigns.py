"""The campaign calendar: promotions, events and layout changes, each on a store, a zone or a category.

Read from a YAML (or TOML) file beside the catalogue with one top-level list, ``campaigns``. Dates are the stores'
local dates, both ends included. Errors name the file, the key path and the reason, and are checked against the
catalogue. :func:`units` resolves a campaign to the units it treats and the comparable units it is measured
against (same mall and category first).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.catalogue import Catalogue, Store
from tillflow.documents import read_document, validate_checked
from tillflow.errors import ConfigError


class CampaignError(ConfigError):
    """A campaign file that cannot be used; the message names file, key and reason."""


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str | None = None
    kind: Literal["promotion", "event", "layout-change"]
    store: str | None = None
    """A store campaign; with ``zone``, a campaign on that zone of the store."""
    zone: str | None = None
    category: str | None = None
    """A category campaign: every store of the category (in ``mall``, when given)."""
    mall: str | None = None
    start: date
    end: date
    """Last day of the campaign (included)."""
    baseline_days: int = Field(28, ge=7, le=365)
    """Days before ``start`` the stores are compared over."""

    @model_validator(mode="after")
    def _scope(self) -> Campaign:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if (self.store is None) == (self.category is None):
            raise ValueError("give either store (optionally with zone) or category")
        if self.zone is not None and self.store is None:
            raise ValueError("a zone campaign needs the zone's store")
        return self

    @property
    def scope(self) -> str:
        return "zone" if self.zone else "store" if self.store else "category"


class Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    campaigns: tuple[Campaign, ...]

    def campaign(self, campaign_id: str) -> Campaign:
        for c in self.campaigns:
            if c.id == campaign_id:
                return c
        known = ", ".join(c.id for c in self.campaigns) or "none"
        raise KeyError(f"no campaign {campaign_id!r} in the calendar (known: {known})")


class Unit(NamedTuple):
    store_id: str
    zone_id: str
    """'' for the whole store."""


class Units(NamedTuple):
    treated: list[Unit]
    controls: list[Unit]
    comparison: str
    """Which stores the controls are, in words."""


def treated_stores(campaign: Campaign, catalogue: Catalogue) -> set[str]:
    if campaign.store is not None:
        return {campaign.store}
    return {
        s.id
        for s in catalogue.stores
        if s.category == campaign.category and (campaign.mall is None or s.mall_id == campaign.mall)
    }


def units(campaign: Campaign, catalogue: Catalogue, calendar: Calendar | None = None) -> Units:
    """The units a campaign treats and the comparable stores it is measured against: same mall and category
    first, else the same category elsewhere, else the rest of the mall. Stores under the campaign, or under
    another campaign of the calendar overlapping its baseline or campaign days, never serve as controls."""
    mall: str | None
    category: str | None
    if campaign.store is not None:
        store = catalogue.store(campaign.store)
        treated = [Unit(store.id, campaign.zone or "")]
        under = {store.id}
        mall, category = store.mall_id, store.category
    else:
        mall, category = campaign.mall, campaign.category
        chosen = [s for s in catalogue.stores if s.category == category and (mall is None or s.mall_id == mall)]
        treated = [Unit(s.id, "") for s in chosen]
        under = {s.id for s in chosen}
    busy = set(under)
    first = campaign.start - timedelta(days=campaign.baseline_days)
    for other in calendar.campaigns if calendar else ():
        if other.id != campaign.id and other.start <= campaign.end and other.end >= first:
            busy |= treated_stores(other, catalogue)
    others = [s for s in catalogue.stores if s.id not in busy]

    def pick(test: Any, words: str) -> Units | None:
        found = [Unit(s.id, "") for s in others if test(s)]
        return Units(treated, found, words) if found else None

    def same_mall(s: Store) -> bool:
        return mall is not None and s.mall_id == mall

    return (
        pick(lambda s: same_mall(s) and s.category == category, f"{category} stores in mall {mall}")
        or pick(lambda s: s.category == category, f"{category} stores elsewhere")
        or pick(same_mall, f"other stores in mall {mall}")
        or Units(treated, [], "no comparable store")
    )


def _catalogue_problems(calendar: Calendar, catalogue: Catalogue, path: Path) -> list[str]:
    problems = []
    ids: set[str] = set()
    stores = {s.id: s for s in catalogue.stores}
    for i, c in enumerate(calendar.campaigns):
        where = f"{path}: campaigns[{i}]"
        if c.id in ids:
            problems.append(f"{where}.id: duplicate campaign id {c.id!r}")
        ids.add(c.id)
        if c.store is not None:
            store = stores.get(c.store)
            if store is None:
                problems.append(f"{where}.store: no store {c.store!r} in the catalogue")
            elif c.zone is not None and c.zone not in {z.id for z in store.zones}:
                problems.append(f"{where}.zone: store {c.store!r} has no zone {c.zone!r}")
        if c.category is not None and not any(
            s.category == c.category and (c.mall is None or s.mall_id == c.mall) for s in catalogue.stores
        ):
            problems.append(f"{where}.category: no {c.category!r} store" + (f" in mall {c.mall!r}" if c.mall else ""))
    return problems


def parse_calendar(data: Any, catalogue: Catalogue, path: Path = Path("<campaigns>")) -> Calendar:
    return validate_checked(
        Calendar,
        data,
        path,
        CampaignError,
        "a 'campaigns' list",
        lambda calendar: _catalogue_problems(calendar, catalogue, path),
    )


def load_calendar(path: str | Path, catalogue: Catalogue) -> Calendar:
    """Read and validate a campaign calendar (.yaml, .yml or .toml) against the catalogue."""
    return parse_calendar(read_document(path, CampaignError), catalogue, Path(path))
