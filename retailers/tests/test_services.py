import datetime as dt

import pytest

from portal.errors import ActionRefused
from portal.tests.factories import make_store
from retailers.models import StoreEvent, StoreStatus
from retailers.services import store_pause, store_resume, store_update_settings

pytestmark = pytest.mark.django_db


def test_store_pause_queues_eligibility_recompute_after_commit(django_capture_on_commit_callbacks):
    store = make_store()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        store_pause(store=store, acting_user=None, reason="Inventory count")

    assert len(callbacks) == 1
    assert store.status == StoreStatus.PAUSED
    assert list(StoreEvent.objects.values_list("type", "reason")) == [("store.paused", "Inventory count")]


def test_store_pause_refused_queues_nothing_and_writes_nothing(django_capture_on_commit_callbacks):
    store = make_store(status=StoreStatus.ONBOARDING)

    with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(ActionRefused):
        store_pause(store=store, acting_user=None, reason="Inventory count")

    assert callbacks == []
    assert StoreEvent.objects.count() == 0


def test_store_resume_queues_eligibility_recompute_after_commit(django_capture_on_commit_callbacks):
    store = make_store()
    store_pause(store=store, acting_user=None, reason="Inventory count")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        store_resume(store=store, acting_user=None)

    assert len(callbacks) == 1
    assert store.status == StoreStatus.LIVE


def test_store_update_settings_queues_recompute_only_when_something_changed(django_capture_on_commit_callbacks):
    store = make_store()
    unchanged = {
        "same_day_cutoff": store.same_day_cutoff,
        "prep_sla_minutes": store.prep_sla_minutes,
        "pickup_instructions": store.pickup_instructions,
        "hours": {},
    }

    with django_capture_on_commit_callbacks(execute=False) as nothing:
        store_update_settings(store=store, acting_user=None, **unchanged)
    with django_capture_on_commit_callbacks(execute=False) as changed:
        store_update_settings(store=store, acting_user=None, **{**unchanged, "same_day_cutoff": dt.time(15, 30)})

    assert (len(nothing), len(changed)) == (0, 1)
    assert StoreEvent.objects.get().data == {"same_day_cutoff": "15:30:00"}
