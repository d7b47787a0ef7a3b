import threading

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction

from orders.lifecycle import TRANSITIONS, OrderStatus
from orders.models import LABEL_ALPHABET, Order, OrderEvent, Package
from orders.services import (
    order_accept,
    order_mark_ready,
    order_record_picked,
    order_reject,
    order_report_short,
    order_start_picking,
)
from portal.errors import ActionRefused
from portal.tests.factories import make_listing, make_order, make_staff, make_stock, make_store
from retailers.models import EligibilityRequest, Stock
from retailers.models import EligibilityRequestKind as Kind

S = OrderStatus
pytestmark = pytest.mark.django_db


def _picking_order(lines=None):
    store = make_store()
    staff = make_staff(store=store).user
    order = make_order(store=store, lines=lines(store) if lines else None)
    order_accept(order=order, acting_user=staff)
    order_start_picking(order=order, acting_user=staff)
    return order, staff


def test_lifecycle_table_covers_every_status_exactly():
    assert set(TRANSITIONS) == set(S.values)
    assert TRANSITIONS[S.RECEIVED] == {S.ACCEPTED, S.REJECTED, S.CANCELLED}
    assert TRANSITIONS[S.READY] == {S.PICKED_UP, S.CANCELLED}
    assert TRANSITIONS[S.UNDELIVERABLE] == {S.RETURNING}
    assert TRANSITIONS[S.DELIVERED] == set()


def test_order_receive_reserves_stock_and_records_event():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)

    order = make_order(store=store, lines=[(listing, 2)])

    assert Stock.objects.get(store=store, listing=listing).reserved == 2
    assert list(order.events.values_list("type", "actor_label")) == [("order.received", "marketplace")]


def test_order_receive_out_of_stock_writes_nothing():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=1)

    with pytest.raises(ActionRefused) as refused:
        make_order(store=store, lines=[(listing, 2)])

    assert refused.value.code == "out_of_stock"
    assert Order.objects.count() == 0
    assert Stock.objects.get(store=store, listing=listing).reserved == 0


def test_order_happy_path_records_each_transition_with_actor():
    order, staff = _picking_order()
    line = order.lines.get()

    order_record_picked(order=order, acting_user=staff, picked={line.pk: 1})
    order_mark_ready(order=order, acting_user=staff, package_count=2)

    order.refresh_from_db()
    assert order.status == S.READY
    assert list(order.events.values_list("type", "from_status", "to_status", "actor")) == [
        ("order.received", "", S.RECEIVED, None),
        ("order.accepted", S.RECEIVED, S.ACCEPTED, staff.pk),
        ("order.picking", S.ACCEPTED, S.PICKING, staff.pk),
        ("order.picked_recorded", S.PICKING, S.PICKING, staff.pk),
        ("order.ready", S.PICKING, S.READY, staff.pk),
    ]
    labels = list(order.packages.values_list("label_code", flat=True))
    assert len(labels) == 2
    assert order.events.get(type="order.ready").data == {"package_count": 2, "labels": labels}
    for label in labels:
        assert label.startswith("MR") and len(label) == 8
        assert set(label[2:]) <= set(LABEL_ALPHABET)


def test_order_illegal_transition_is_refused_with_message_and_changes_nothing():
    store = make_store()
    order = make_order(store=store)

    with pytest.raises(ActionRefused) as refused:
        order_start_picking(order=order, acting_user=None)

    assert str(refused.value) == f"Order {order.number} is new and not accepted yet, so it cannot be started."
    order.refresh_from_db()
    assert order.status == S.RECEIVED
    assert order.events.count() == 1


def test_order_stale_instance_loses_to_the_first_click():
    store = make_store()
    order = make_order(store=store)
    stale = Order.objects.get(pk=order.pk)
    order_accept(order=order, acting_user=None)

    with pytest.raises(ActionRefused) as refused:
        order_accept(order=stale, acting_user=None)

    assert refused.value.code == "conflict"
    assert order.events.filter(type="order.accepted").count() == 1


def test_order_mark_ready_refuses_unpicked_lines():
    order, staff = _picking_order()

    with pytest.raises(ActionRefused) as refused:
        order_mark_ready(order=order, acting_user=staff, package_count=1)

    assert "has 0 of 1 picked" in str(refused.value)
    assert Package.objects.count() == 0


@pytest.mark.parametrize("count", [0, 21])
def test_order_mark_ready_package_count_bounds(count):
    order, staff = _picking_order()
    line = order.lines.get()
    order_record_picked(order=order, acting_user=staff, picked={line.pk: 1})

    with pytest.raises(ActionRefused) as refused:
        order_mark_ready(order=order, acting_user=staff, package_count=count)

    assert str(refused.value) == "Package count must be between 1 and 20."
    order.refresh_from_db()
    assert order.status == S.PICKING


def test_order_short_then_send_rest_releases_missing_units():
    def two_lines(store):
        self_listing = make_listing(seller=store.seller)
        other = make_listing(seller=store.seller)
        make_stock(store=store, listing=self_listing, on_hand=5)
        make_stock(store=store, listing=other, on_hand=5)
        return [(self_listing, 2), (other, 1)]

    order, staff = _picking_order(two_lines)
    first, second = order.lines.order_by("pk")
    order_record_picked(order=order, acting_user=staff, picked={first.pk: 1, second.pk: 1})

    order_report_short(order=order, acting_user=staff, reason="Only one tee left on the shelf")
    order_mark_ready(order=order, acting_user=staff, package_count=1)

    order.refresh_from_db()
    assert order.status == S.READY
    assert order.problem_reason == "Only one tee left on the shelf"
    first_stock = Stock.objects.get(listing=first.listing)
    assert (first_stock.on_hand, first_stock.reserved) == (4, 1)
    second_stock = Stock.objects.get(listing=second.listing)
    assert (second_stock.on_hand, second_stock.reserved) == (5, 1)


def test_order_send_rest_refused_when_partial_not_allowed():
    order, staff = _picking_order()
    Order.objects.filter(pk=order.pk).update(allows_partial=False)
    order.refresh_from_db()
    order_report_short(order=order, acting_user=staff, reason="Missing")

    with pytest.raises(ActionRefused) as refused:
        order_mark_ready(order=order, acting_user=staff, package_count=1)

    assert refused.value.code == "partial-not-allowed"


def test_order_reject_releases_all_reserved_stock():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=3)
    order = make_order(store=store, lines=[(listing, 3)])

    order_reject(order=order, acting_user=None, reason="Damaged stock")

    stock = Stock.objects.get(listing=listing)
    assert (stock.on_hand, stock.reserved) == (3, 0)
    assert order.events.last().reason == "Damaged stock"


def test_order_reject_needs_a_reason():
    store = make_store()
    order = make_order(store=store)

    with pytest.raises(ActionRefused):
        order_reject(order=order, acting_user=None, reason="   ")

    order.refresh_from_db()
    assert order.status == S.RECEIVED


def test_stock_constraint_refuses_reserved_above_on_hand():
    store = make_store()
    listing = make_listing(seller=store.seller)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_stock(store=store, listing=listing, on_hand=1, reserved=2)


def test_package_label_codes_are_unique_in_the_database():
    store = make_store()
    order = make_order(store=store)
    Package.objects.create(order=order, label_code="MR222222", sequence=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        Package.objects.create(order=make_order(store=store), label_code="MR222222", sequence=1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_concurrent_accepts_one_wins_on_postgres():
    store = make_store()
    order = make_order(store=store)
    staff = [make_staff(store=store).user for _ in range(8)]
    barrier = threading.Barrier(len(staff))
    outcomes: list[str] = []
    lock = threading.Lock()

    def click(user):
        try:
            mine = Order.objects.get(pk=order.pk)
            barrier.wait()
            order_accept(order=mine, acting_user=user)
            result = "won"
        except ActionRefused as refused:
            result = refused.code
        finally:
            close_old_connections()
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=click, args=(user,)) for user in staff]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    assert OrderEvent.objects.filter(order=order, type="order.accepted").count() == 1
    order.refresh_from_db()
    assert order.status == S.ACCEPTED


def test_order_receive_and_reject_write_the_listings_eligibility_requests():
    store = make_store()
    first, second = make_listing(seller=store.seller), make_listing(seller=store.seller)
    make_stock(store=store, listing=first, on_hand=5)
    make_stock(store=store, listing=second, on_hand=5)
    EligibilityRequest.objects.all().delete()

    order = make_order(store=store, lines=[(second, 1), (first, 2)])
    received = sorted(EligibilityRequest.objects.values_list("kind", "object_id"))
    EligibilityRequest.objects.all().delete()
    order_reject(order=order, acting_user=None, reason="Damaged")
    rejected = sorted(EligibilityRequest.objects.values_list("kind", "object_id"))

    expected = [(Kind.LISTING, first.pk), (Kind.LISTING, second.pk)]
    assert (received, rejected) == (expected, expected)


def test_order_receive_burst_on_one_listing_is_one_request_row():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)
    EligibilityRequest.objects.all().delete()

    for _ in range(3):
        make_order(store=store, lines=[(listing, 1)])

    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [(Kind.LISTING, listing.pk)]


def test_order_refused_for_stock_requests_no_recompute():
    store = make_store()
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=0)
    EligibilityRequest.objects.all().delete()

    with pytest.raises(ActionRefused):
        make_order(store=store, lines=[(listing, 1)])

    assert EligibilityRequest.objects.count() == 0


def _wait_until_a_query_waits_for_a_lock() -> None:
    """Returns once another session of this database waits for a row lock (PostgreSQL)."""
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        threading.Event().wait(0.05)
    raise AssertionError("no query waited for the lock")


def _race_with_an_uncommitted_pick(order, staff, *, picked, act):
    """Runs `act` while another staff member's pick change of `order` is written but not yet
    committed, then commits it: `act` waits for the order row and must see the change."""
    line = order.lines.get()
    written, commit = threading.Event(), threading.Event()
    outcome: list[str] = []

    def pick():
        try:
            with transaction.atomic():
                order_record_picked(order=Order.objects.get(pk=order.pk), acting_user=staff, picked={line.pk: picked})
                written.set()
                commit.wait(10)
        finally:
            connection.close()

    def other():
        try:
            act(Order.objects.get(pk=order.pk))
            outcome.append("done")
        except ActionRefused as refused:
            outcome.append(refused.code)
        finally:
            connection.close()

    picker = threading.Thread(target=pick)
    picker.start()
    written.wait(10)
    actor = threading.Thread(target=other)
    actor.start()
    _wait_until_a_query_waits_for_a_lock()
    commit.set()
    picker.join()
    actor.join()
    return outcome


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_mark_ready_racing_a_pick_change_sees_the_new_quantities_on_postgres():
    order, staff = _picking_order()
    order_record_picked(order=order, acting_user=staff, picked={order.lines.get().pk: 1})

    outcome = _race_with_an_uncommitted_pick(
        order,
        staff,
        picked=0,
        act=lambda mine: order_mark_ready(order=mine, acting_user=staff, package_count=1),
    )

    order.refresh_from_db()
    assert outcome == ["validation"]
    assert (order.status, order.packages.count(), order.lines.get().picked) == (S.PICKING, 0, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_report_short_racing_a_pick_change_sees_the_new_quantities_on_postgres():
    order, staff = _picking_order()

    outcome = _race_with_an_uncommitted_pick(
        order,
        staff,
        picked=1,
        act=lambda mine: order_report_short(order=mine, acting_user=staff, reason="Not on the shelf"),
    )

    order.refresh_from_db()
    assert outcome == ["validation"]
    assert (order.status, order.lines.get().picked) == (S.PICKING, 1)
