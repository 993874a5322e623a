"""Behaviour of shoppers by store category and of payments by currency: plain data and small functions.

Rates are typical published retail figures (conversion by category, basket size, refund and void rates);
the docs (docs/simulator.md) list them. Unknown categories use ``DEFAULT``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CategoryProfile:
    visitors_per_m2: float
    """Visitors per m² on an average weekday."""
    conversion: float
    """Share of visitors who buy (SALE, LAYAWAY or DEFERRED)."""
    dwell_median_min: float
    dwell_sigma: float
    items_mean: float
    """Mean number of distinct lines per basket (1 + Poisson)."""
    price_median: float
    """Median unit price in EUR-equivalent major units."""
    price_sigma: float
    discount_share: float
    """Share of lines with a markdown or promotion."""
    discount_range: tuple[float, float]
    refund_rate: float
    """REFUND tickets per sale."""
    void_rate: float
    employee_rate: float
    layaway_rate: float
    deferred_rate: float
    delivery_rate: float
    """Delivery-platform tickets (no visitor) per in-store sale."""
    weekday_curve: tuple[tuple[float, float, float], ...]
    """Gaussian bumps (local hour of the peak, width in hours, weight) over a flat base of weight 0.3."""
    weekend_curve: tuple[tuple[float, float, float], ...]
    weekday_factor: tuple[float, ...] = (0.85, 0.85, 0.9, 0.95, 1.15, 1.4, 1.0)
    products: tuple[str, ...] = field(default=())
    weighed_share: float = 0.0
    """Share of lines sold by weight (fractional quantity)."""


DEFAULT = CategoryProfile(
    visitors_per_m2=2.5,
    conversion=0.22,
    dwell_median_min=14,
    dwell_sigma=0.5,
    items_mean=1.7,
    price_median=30,
    price_sigma=0.7,
    discount_share=0.15,
    discount_range=(0.1, 0.3),
    refund_rate=0.04,
    void_rate=0.01,
    employee_rate=0.015,
    layaway_rate=0.002,
    deferred_rate=0.0,
    delivery_rate=0.0,
    weekday_curve=((13.0, 1.5, 0.6), (17.5, 2.0, 1.0)),
    weekend_curve=((14.5, 3.0, 1.0),),
    products=("Item", "Accessory", "Gift"),
)

PROFILES: dict[str, CategoryProfile] = {
    "fashion": CategoryProfile(
        visitors_per_m2=2.5,
        conversion=0.20,
        dwell_median_min=14,
        dwell_sigma=0.55,
        items_mean=1.8,
        price_median=35,
        price_sigma=0.6,
        discount_share=0.22,
        discount_range=(0.1, 0.4),
        refund_rate=0.07,
        void_rate=0.012,
        employee_rate=0.02,
        layaway_rate=0.003,
        deferred_rate=0.0,
        delivery_rate=0.0,
        weekday_curve=((13.0, 1.5, 0.6), (17.5, 2.0, 1.0)),
        weekend_curve=((14.5, 3.0, 1.0),),
        products=("T-shirt", "Jeans", "Jacket", "Dress", "Sweater", "Shirt", "Scarf", "Belt", "Skirt", "Coat"),
    ),
    "electronics": CategoryProfile(
        visitors_per_m2=1.6,
        conversion=0.11,
        dwell_median_min=18,
        dwell_sigma=0.6,
        items_mean=1.3,
        price_median=40,
        price_sigma=1.2,
        discount_share=0.10,
        discount_range=(0.05, 0.2),
        refund_rate=0.04,
        void_rate=0.01,
        employee_rate=0.01,
        layaway_rate=0.002,
        deferred_rate=0.01,
        delivery_rate=0.0,
        weekday_curve=((13.0, 1.5, 0.5), (18.0, 2.0, 1.0)),
        weekend_curve=((15.0, 3.0, 1.0),),
        products=("USB-C cable", "Headphones", "Phone", "Laptop", "Charger", "Speaker", "Mouse", "Camera"),
    ),
    "grocery": CategoryProfile(
        visitors_per_m2=2.2,
        conversion=0.70,
        dwell_median_min=20,
        dwell_sigma=0.45,
        items_mean=9.0,
        price_median=2.5,
        price_sigma=0.7,
        discount_share=0.12,
        discount_range=(0.1, 0.3),
        refund_rate=0.005,
        void_rate=0.015,
        employee_rate=0.01,
        layaway_rate=0.0,
        deferred_rate=0.0,
        delivery_rate=0.0,
        weekday_curve=((10.5, 1.5, 0.6), (18.0, 1.5, 1.1)),
        weekend_curve=((11.5, 2.5, 1.0),),
        weekday_factor=(0.9, 0.85, 0.9, 0.95, 1.2, 1.35, 0.8),
        products=("Bread", "Milk", "Apples", "Cheese", "Coffee", "Pasta", "Tomatoes", "Eggs", "Yoghurt", "Water"),
        weighed_share=0.15,
    ),
    "food": CategoryProfile(
        visitors_per_m2=8.0,
        conversion=0.80,
        dwell_median_min=22,
        dwell_sigma=0.6,
        items_mean=2.2,
        price_median=3.8,
        price_sigma=0.4,
        discount_share=0.05,
        discount_range=(0.1, 0.2),
        refund_rate=0.003,
        void_rate=0.008,
        employee_rate=0.02,
        layaway_rate=0.0,
        deferred_rate=0.0,
        delivery_rate=0.08,
        weekday_curve=((8.5, 1.0, 0.9), (12.8, 1.2, 1.2), (16.0, 1.2, 0.6)),
        weekend_curve=((10.5, 1.5, 1.0), (15.0, 1.5, 0.9)),
        weekday_factor=(0.95, 0.95, 1.0, 1.0, 1.1, 1.25, 1.1),
        products=("Espresso", "Cappuccino", "Croissant", "Sandwich", "Tea", "Cake", "Juice", "Bagel"),
    ),
    "sports": CategoryProfile(
        visitors_per_m2=3.0,
        conversion=0.18,
        dwell_median_min=16,
        dwell_sigma=0.55,
        items_mean=1.6,
        price_median=45,
        price_sigma=0.7,
        discount_share=0.15,
        discount_range=(0.1, 0.3),
        refund_rate=0.04,
        void_rate=0.01,
        employee_rate=0.015,
        layaway_rate=0.003,
        deferred_rate=0.0,
        delivery_rate=0.0,
        weekday_curve=((12.0, 1.5, 0.6), (17.0, 2.0, 0.8)),
        weekend_curve=((13.5, 3.0, 1.0),),
        products=("Backpack", "Down jacket", "Trekking poles", "Boots", "Gloves", "Beanie", "Socks", "Tent"),
    ),
}


def profile(category: str) -> CategoryProfile:
    return PROFILES.get(category, DEFAULT)


def hour_weight(p: CategoryProfile, weekday: int, local_hour: float) -> float:
    """Relative footfall at a local time of day (hours since midnight) on a weekday (0 = Monday)."""
    bumps = p.weekend_curve if weekday >= 5 else p.weekday_curve
    return 0.3 + sum(w * math.exp(-0.5 * ((local_hour - peak) / width) ** 2) for peak, width, w in bumps)


@dataclass(frozen=True)
class CurrencyProfile:
    scale: float
    """Minor units per EUR-equivalent major unit (prices are drawn in EUR and scaled)."""
    rounding: int
    """Prices are rounded to this many minor units (then .99-style endings where rounding is 100)."""
    tax_rate: float
    reduced_tax_rate: float
    tax_included: bool
    """Shelf prices include tax (EU, India, Nepal) or tax is added at the till (United States)."""
    tender: tuple[tuple[str, float], ...]
    """Payment methods and their shares of tickets."""


_EU_TENDER = (("CASH", 0.35), ("CARD", 0.5), ("MOBILE", 0.12), ("GIFT_CARD", 0.03))
_US_TENDER = (("CASH", 0.1), ("CARD", 0.68), ("MOBILE", 0.19), ("GIFT_CARD", 0.03))
CURRENCIES: dict[str, CurrencyProfile] = {
    "EUR": CurrencyProfile(100, 100, 0.19, 0.07, True, _EU_TENDER),
    "USD": CurrencyProfile(110, 100, 0.08875, 0.0, False, _US_TENDER),
    "INR": CurrencyProfile(3000, 500, 0.18, 0.05, True, (("CASH", 0.25), ("CARD", 0.15), ("MOBILE", 0.6))),
    "NPR": CurrencyProfile(5000, 1000, 0.13, 0.13, True, (("CASH", 0.55), ("CARD", 0.2), ("MOBILE", 0.25))),
}
DEFAULT_CURRENCY = CURRENCIES["EUR"]

REDUCED_TAX_CATEGORIES = frozenset({"grocery", "food"})
CASH_HEAVY_CATEGORIES = frozenset({"grocery", "food"})


def currency_profile(code: str) -> CurrencyProfile:
    return CURRENCIES.get(code, DEFAULT_CURRENCY)
