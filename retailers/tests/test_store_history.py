"""What the store's "Recent changes" say of each event (retailers.selectors)."""

import pytest
from django.utils import timezone

from portal.tests.factories import make_store
from retailers.models import StoreEvent
from retailers.selectors import store_event_list_for_staff

pytestmark = pytest.mark.django_db


def test_recent_changes_say_roles_stock_and_hours_in_words():
    store = make_store()
    for type, data in [
        ("store.staff_role_changed", {"user_id": 7, "name": "Ari Diaz", "from": "associate", "to": "manager"}),
        ("stock.changed", {"sku": "SA-TEE-001", "from": 3, "to": 5}),
        ("store.settings_changed", {"hours.2": "00:00-00:00", "hours.3": "10:00-21:00", "hours.4": "closed"}),
    ]:
        StoreEvent.objects.create(store=store, type=type, actor_label="Mia Lee", at=timezone.now(), data=data)

    rows = {row.title: row.details for row in store_event_list_for_staff(store=store)}

    assert rows == {
        "Changed a team member's role": ["role: associate → store manager", "name: Ari Diaz"],
        "Changed stock": ["on hand: 3 → 5", "SKU: SA-TEE-001"],
        "Changed settings": ["Wednesday: open around the clock", "Thursday: 10:00–21:00", "Friday: closed"],
    }
