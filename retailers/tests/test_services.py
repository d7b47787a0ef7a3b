import datetime as dt
import threading

import pytest
from django.db import connection

from portal.errors import ActionRefused
from portal.tests.factories import make_staff, make_store
from retailers.models import EligibilityRequest, StaffRole, Store, StoreEvent, StoreHours, StoreStatus
from retailers.models import EligibilityRequestKind as Kind
from retailers.services import store_pause, store_resume, store_update_settings

pytestmark = pytest.mark.django_db


def _requests() -> list[tuple[int, int]]:
    """The eligibility recompute requests (the hooks' outbox rows) as (kind, object id)."""
    return sorted(EligibilityRequest.objects.values_list("kind", "object_id"))


def test_store_pause_writes_the_store_eligibility_request():
    store = make_store()
    EligibilityRequest.objects.all().delete()

    store_pause(store=store, acting_user=None, reason="Inventory count")

    assert _requests() == [(Kind.STORE, store.pk)]
    assert store.status == StoreStatus.PAUSED
    assert list(StoreEvent.objects.values_list("type", "reason")) == [("store.paused", "Inventory count")]


def test_store_pause_refused_requests_nothing_and_writes_nothing():
    store = make_store(status=StoreStatus.ONBOARDING)
    EligibilityRequest.objects.all().delete()

    with pytest.raises(ActionRefused):
        store_pause(store=store, acting_user=None, reason="Inventory count")

    assert _requests() == []
    assert StoreEvent.objects.count() == 0


def test_store_resume_writes_the_store_eligibility_request():
    store = make_store()
    store_pause(store=store, acting_user=None, reason="Inventory count")
    EligibilityRequest.objects.all().delete()

    store_resume(store=store, acting_user=None)

    assert _requests() == [(Kind.STORE, store.pk)]
    assert store.status == StoreStatus.LIVE


def test_store_update_settings_requests_recompute_only_when_something_changed():
    store = make_store()
    unchanged = {
        "same_day_cutoff": store.same_day_cutoff,
        "prep_sla_minutes": store.prep_sla_minutes,
        "pickup_instructions": store.pickup_instructions,
        "hours": {},
    }

    EligibilityRequest.objects.all().delete()

    store_update_settings(store=store, acting_user=None, **unchanged)
    nothing = _requests()
    store_update_settings(store=store, acting_user=None, **{**unchanged, "same_day_cutoff": dt.time(15, 30)})

    assert (nothing, _requests()) == ([], [(Kind.STORE, store.pk)])
    assert StoreEvent.objects.get().data == {"same_day_cutoff": "15:30:00"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_store_update_settings_two_managers_opening_a_closed_day_at_once_both_save():
    store = make_store()
    StoreHours.objects.filter(store=store, weekday=6).delete()  # Sunday closed
    managers = [make_staff(store=store, role=StaffRole.MANAGER).user for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def save(user, closes: dt.time) -> None:
        try:
            page_store = Store.objects.get(pk=store.pk)  # what each manager's request loaded
            barrier.wait(timeout=30)
            store_update_settings(
                store=page_store,
                acting_user=user,
                same_day_cutoff=page_store.same_day_cutoff,
                prep_sla_minutes=page_store.prep_sla_minutes,
                pickup_instructions=page_store.pickup_instructions,
                hours={6: (dt.time(11, 0), closes)},
            )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=save, args=(user, closes))
        for user, closes in zip(managers, (dt.time(17, 0), dt.time(18, 0)), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    sunday = StoreHours.objects.get(store=store, weekday=6)
    assert (sunday.opens_at, sunday.closes_at) in ((dt.time(11, 0), dt.time(17, 0)), (dt.time(11, 0), dt.time(18, 0)))
    assert StoreEvent.objects.filter(store=store, type="store.settings_changed").count() == 2
