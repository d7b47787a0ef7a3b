"""Driver pay (PRODUCT.md "Routes and pay"). A plain module: pure functions on a small settings
dataclass, in whole cents. `drivers.models.MarketPaySettings` holds each market's values."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PayRules:
    base_cents: int = 300
    per_stop_cents: int = 150
    per_mile_cents: int = 60
    hourly_floor_cents: int = 1800
    reoffer_bump_cents: int = 100
    reoffer_bump_cap_cents: int = 800
    wait_grace_minutes: int = 5
    wait_per_minute_cents: int = 30


@dataclass(frozen=True)
class Quote:
    distance_pay_cents: int  # base + stops + miles
    floor_cents: int  # the hourly floor for the estimated time
    bump_cents: int
    total_cents: int

    @property
    def floor_applied(self) -> bool:
        return self.floor_cents > self.distance_pay_cents


def quote(*, rules: PayRules, stops: int, miles: float, minutes: float, reoffers: int = 0) -> Quote:
    """Base + per stop + per mile, raised to the hourly floor for the estimated minutes, plus the
    re-offer bump (per re-offer, up to the cap)."""
    if stops < 0 or miles < 0 or minutes < 0 or reoffers < 0:
        raise ValueError("stops, miles, minutes and reoffers cannot be negative")
    distance_pay = rules.base_cents + rules.per_stop_cents * stops + round(rules.per_mile_cents * miles)
    floor = math.ceil(rules.hourly_floor_cents * minutes / 60)
    bump = min(rules.reoffer_bump_cents * reoffers, rules.reoffer_bump_cap_cents)
    return Quote(
        distance_pay_cents=distance_pay,
        floor_cents=floor,
        bump_cents=bump,
        total_cents=max(distance_pay, floor) + bump,
    )


def wait_pay_cents(*, rules: PayRules, waited_minutes: float) -> int:
    """Pay for waiting at a store that was not ready when the driver checked in: every whole
    minute past the grace period."""
    paid_minutes = max(0, math.floor(waited_minutes) - rules.wait_grace_minutes)
    return paid_minutes * rules.wait_per_minute_cents


def hourly_equivalent_cents(*, total_cents: int, minutes: float) -> int:
    if minutes <= 0:
        return 0
    return round(total_cents * 60 / minutes)
