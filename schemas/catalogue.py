"""The store catalogue: stores with their time zone and floor area, and the cameras that count them.

Loaded from YAML (or TOML) with two top-level lists, ``stores`` and ``cameras``. Errors name the file, the
key path and the reason.
"""

from __future__ import annotations

import difflib
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.models import Currency

M = TypeVar("M", bound=BaseModel)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


IanaTimezone = Annotated[str, AfterValidator(_iana_zone)]
"""A time zone name zoneinfo knows, such as Europe/Berlin or Asia/Kolkata."""


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names file, key and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpeningHours(_Strict):
    open: time
    close: time

    @model_validator(mode="after")
    def _order(self) -> OpeningHours:
        if self.close <= self.open:
            raise ValueError(f"closes at {self.close} before it opens at {self.open}")
        return self


UNMAPPED_ZONE = "unmapped"
"""The zone of ticket lines whose category no zone of the store lists (and of lines without a category)."""


class Zone(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    area_m2: float = Field(gt=0)
    categories: tuple[str, ...] = ()
    """Product categories sold in this zone (the floor plan): ticket lines of these categories count here."""

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == UNMAPPED_ZONE:
            raise ValueError(f"zone id {UNMAPPED_ZONE!r} is reserved for lines whose category maps to no zone")
        return value


class QueueAlert(_Strict):
    """QUEUE_LONG: the queue at the tills stays over ``people`` for ``minutes`` consecutive minutes."""

    people: float = Field(5, gt=0)
    minutes: int = Field(5, ge=1)


class Store(_Strict):
    id: str = Field(min_length=1)
    name: str
    timezone: IanaTimezone
    area_m2: float = Field(gt=0)
    category: str
    mall_id: str | None = None
    tenant_id: str | None = None
    currency: Currency = "EUR"
    """Active ISO 4217 code, upper case: the currency of the store's tickets."""
    opening_hours: dict[str, OpeningHours] | None = None
    """Per weekday (mon..sun); a missing weekday means closed. None: open all day every day."""
    zones: tuple[Zone, ...] = ()
    queue_alert: QueueAlert = QueueAlert()
    """Threshold of QUEUE_LONG and of the minutes-over-threshold figure (cameras with role queue)."""
    floor_roles: tuple[str, ...] | None = None
    """Shift roles that count as staff on the floor; None: every shift counts."""

    @field_validator("opening_hours")
    @classmethod
    def _weekdays(cls, value: dict[str, OpeningHours] | None) -> dict[str, OpeningHours] | None:
        if value is not None:
            unknown = sorted(set(value) - set(WEEKDAYS))
            if unknown:
                raise ValueError(f"unknown weekday(s) {unknown}; use {', '.join(WEEKDAYS)}")
        return value

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, value: tuple[Zone, ...]) -> tuple[Zone, ...]:
        seen: set[str] = set()
        for zone in value:
            if zone.id in seen:
                raise ValueError(f"duplicate zone id {zone.id!r}")
            seen.add(zone.id)
        owner: dict[str, str] = {}
        for zone in value:
            for category in zone.categories:
                if category in owner:
                    raise ValueError(f"category {category!r} is in zones {owner[category]!r} and {zone.id!r}")
                owner[category] = zone.id
        return value

    def currency_problem(self, currency: str | None) -> str | None:
        """Why a ticket in ``currency`` cannot be counted at this store, or None: a store's figures are in its
        own currency, and a ticket in another one is refused (never summed into it, never converted)."""
        if currency != self.currency:
            return f"currency {currency!r} is not store {self.id!r}'s ({self.currency})"
        return None

    def zone_of_category(self, category: str | None) -> str:
        """The zone whose floor area sells ``category``; ``unmapped`` when no zone lists it."""
        if category:
            for zone in self.zones:
                if category in zone.categories:
                    return zone.id
        return UNMAPPED_ZONE

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, weekday: int) -> OpeningHours | None:
        """Opening hours on a weekday (0 = Monday); None when closed that day."""
        if self.opening_hours is None:
            return OpeningHours(open=time(0, 0), close=time(23, 59, 59))
        return self.opening_hours.get(WEEKDAYS[weekday])

    def zone(self, zone_id: str) -> Zone:
        for zone in self.zones:
            if zone.id == zone_id:
                return zone
        raise KeyError(zone_id)


# The per-camera settings a catalogue entry may carry besides its identity; the camera producer checks their
# values (producers/camera/config.py, CameraSettings, whose fields these must stay: a test compares them).
CAMERA_SETTING_KEYS = frozenset(
    {
        "source", "live", "detector", "weights", "imgsz", "conf", "nms_iou", "target_fps", "coordinates",
        "door_line", "entering", "inside", "region", "anchor", "hysteresis", "min_area",
        "tracker", "stitch_s", "detect_band",
    }
)  # fmt: skip


class Camera(_Strict):
    """A camera: its identity, and camera settings as extra keys (only the names in CAMERA_SETTING_KEYS)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    store_id: str
    zone_id: str | None = None
    role: Literal["entrance", "zone", "queue"]
    """entrance: counts visitors at a door; zone: counts a zone's visitors; queue: watches the queue at the
    tills and reports its occupancy (people_in_frame), with no door line (entries and exits stay 0)."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = CAMERA_SETTING_KEYS | set(cls.model_fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                hints = []
                for key in unknown:
                    close = difflib.get_close_matches(str(key), sorted(known), n=1)
                    hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                raise ValueError(
                    f"unknown key(s) {', '.join(hints)}; a camera has {', '.join(cls.model_fields)} "
                    f"and camera settings ({', '.join(sorted(CAMERA_SETTING_KEYS))})"
                )
        return data

    @model_validator(mode="after")
    def _role_matches_zone(self) -> Camera:
        if self.role == "entrance" and self.zone_id is not None:
            raise ValueError("an entrance camera has zone_id null")
        if self.role == "zone" and self.zone_id is None:
            raise ValueError("a zone camera needs a zone_id")
        if self.role == "queue" and self.zone_id is not None:
            raise ValueError("a queue camera has zone_id null (it counts people waiting, not visitors)")
        if self.role == "queue" and getattr(self, "door_line", None) is not None:
            raise ValueError("a queue camera has no door_line: it reports occupancy, not entries")
        return self


class Catalogue(_Strict):
    stores: tuple[Store, ...]
    cameras: tuple[Camera, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        problems: list[str] = []
        seen: set[str] = set()
        for i, store in enumerate(self.stores):
            if store.id in seen:
                problems.append(f"stores[{i}].id: duplicate store id {store.id!r}")
            seen.add(store.id)
        by_id = {store.id: store for store in self.stores}
        cam_ids: set[str] = set()
        for i, cam in enumerate(self.cameras):
            if cam.id in cam_ids:
                problems.append(f"cameras[{i}].id: duplicate camera id {cam.id!r}")
            cam_ids.add(cam.id)
            owner = by_id.get(cam.store_id)
            if owner is None:
                problems.append(f"cameras[{i}].store_id: no store {cam.store_id!r} in stores")
            elif cam.zone_id is not None and cam.zone_id not in {z.id for z in owner.zones}:
                problems.append(f"cameras[{i}].zone_id: store {owner.id!r} has no zone {cam.zone_id!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def store(self, store_id: str) -> Store:
        for store in self.stores:
            if store.id == store_id:
                return store
        raise KeyError(f"no store {store_id!r} in the catalogue")

    def cameras_of(self, store_id: str) -> list[Camera]:
        return [cam for cam in self.cameras if cam.store_id == store_id]

    def queue_cameras(self) -> frozenset[str]:
        """Ids of the cameras with role queue (their frames give queue length, never visitors)."""
        return frozenset(cam.id for cam in self.cameras if cam.role == "queue")

    def camera(self, camera_id: str) -> Camera:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(f"no camera {camera_id!r} in the catalogue")


def format_validation_errors(path: Path, exc: ValidationError) -> str:
    """One line per problem: ``file: key.path[0]: reason`` (shared by every validated input file)."""
    lines = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def read_document(path: str | Path, error: type[ValueError] = ValueError) -> Any:
    """The parsed content of a .yaml, .yml or .toml input file; ``error`` names the file and why it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None


def validate_document(model: type[M], data: Any, path: Path, error: type[ValueError], expected: str) -> M:
    """``data`` (a parsed input file) as ``model``; ``error`` names the file, each key path and the reason."""
    if not isinstance(data, dict):
        raise error(f"{path}: (top level): expected a mapping with {expected}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_errors(path, exc)) from None


def parse_catalogue(data: Any, path: Path = Path("<catalogue>")) -> Catalogue:
    return validate_document(Catalogue, data, path, CatalogueError, "'stores' and 'cameras'")


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate a catalogue file (.yaml, .yml or .toml)."""
    return parse_catalogue(read_document(path, CatalogueError), Path(path))
