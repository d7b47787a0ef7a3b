"""The embedded default's backend (portal/sqlite/base.py): integers beyond 64 bits find nothing,
as on PostgreSQL, instead of raising OverflowError."""

import pytest
from django.db import connection

from orders.models import Order
from portal.tests.factories import make_order, make_store

pytestmark = pytest.mark.django_db

HUGE = 10**20


def test_lookups_with_an_integer_beyond_64_bits_find_nothing():
    order = make_order(store=make_store())

    assert list(Order.objects.filter(pk__in=[HUGE, order.pk])) == [order]
    assert list(Order.objects.filter(store_id=HUGE)) == []
    assert list(Order.objects.filter(store__mall__market_id__in=[HUGE])) == []
    assert list(Order.objects.filter(pk__lt=HUGE)) == [order]
    assert list(Order.objects.filter(pk__gt=-HUGE, pk__lt=-(2**63) + 1)) == []


def test_raw_parameters_beyond_64_bits_compare_as_numbers():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s > %s, %s = %s", [HUGE, 2**63 - 1, HUGE, 2**63 - 1])
        assert cursor.fetchone() in {(1, 0), (True, False)}
