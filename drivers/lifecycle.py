"""The driver and offer lifecycles of PRODUCT.md, declared once. Every status change goes through
`drivers.services`, which checks it against these tables."""

from django.db import models


class DriverStatus(models.TextChoices):
    APPLICANT = "applicant", "Applicant"
    SCREENING = "screening", "Screening"
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Paused"
    DEACTIVATED = "deactivated", "Deactivated"


D = DriverStatus

DRIVER_TRANSITIONS: dict[str, frozenset[str]] = {
    D.APPLICANT: frozenset({D.SCREENING, D.DEACTIVATED}),
    D.SCREENING: frozenset({D.ACTIVE, D.DEACTIVATED}),
    D.ACTIVE: frozenset({D.INACTIVE, D.DEACTIVATED}),
    D.INACTIVE: frozenset({D.ACTIVE, D.DEACTIVATED}),
    D.DEACTIVATED: frozenset(),
}


class OfferStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    FORFEITED = "forfeited", "Forfeited"
    # Withdrawn: the route went away before anyone took it (its orders were cancelled).
    WITHDRAWN = "withdrawn", "Withdrawn"


OS = OfferStatus

OFFER_TRANSITIONS: dict[str, frozenset[str]] = {
    OS.OPEN: frozenset({OS.ACCEPTED, OS.EXPIRED, OS.WITHDRAWN}),
    OS.ACCEPTED: frozenset({OS.COMPLETED, OS.FORFEITED}),
    OS.COMPLETED: frozenset(),
    OS.EXPIRED: frozenset(),
    OS.FORFEITED: frozenset(),
    OS.WITHDRAWN: frozenset(),
}


def sources_of(table: dict[str, frozenset[str]], target: str) -> frozenset[str]:
    return frozenset(source for source, targets in table.items() if target in targets)
