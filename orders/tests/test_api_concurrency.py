"""The API under concurrency, on the real PostgreSQL: racing idempotent creates, and an event
feed poller that must see every committed event exactly once while writers commit out of order."""

import random
import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction

from orders.models import FeedEvent, Order
from orders.services import order_accept, order_cancel, order_start_picking
from orders.tests.api_helpers import make_api_client, make_world, order_document, signed
from portal.errors import ActionRefused
from portal.tests.factories import make_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_threads(target, count: int) -> list:
    results: list = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            result = target(index)
        finally:
            close_old_connections()
            connection.close()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_create_order_twenty_concurrent_identical_creates_give_one_201_and_nineteen_200():
    world = make_world(on_hand=2)
    issued = make_api_client()
    document = order_document()
    barrier = threading.Barrier(20)

    def create(_index: int) -> int:
        barrier.wait()
        return signed(issued, "POST", "/api/v1/orders", document).status_code

    statuses = _run_threads(create, 20)

    world["stock"].refresh_from_db()
    assert sorted(statuses) == [200] * 19 + [201]
    assert Order.objects.count() == 1
    assert world["stock"].reserved == 2


def test_event_feed_poller_sees_every_committed_event_once_while_writers_commit_out_of_order():
    world = make_world(on_hand=500)
    issued = make_api_client()
    orders = [make_order(store=world["store"], lines=[(world["listing"], 1)]) for _ in range(30)]
    Order.objects.update(api_client=issued.client)
    writers_done = threading.Event()
    seen: list[tuple[int, str]] = []

    def write(index: int) -> int:
        changed = 0
        rng = random.Random(index)
        for order in orders[index::6]:
            for step in (order_accept, order_start_picking, order_cancel):
                mine = Order.objects.get(pk=order.pk)
                try:
                    with transaction.atomic():
                        if step is order_cancel:
                            step(order=mine, acting_user=None, reason="test")
                        else:
                            step(order=mine, acting_user=None)
                        # Hold the transaction open a moment so commits land out of seq order.
                        time.sleep(rng.uniform(0, 0.02))
                    changed += 1
                except ActionRefused:
                    pass
        return changed

    def poll() -> None:
        after = 0
        while True:
            finished = writers_done.is_set()
            page = signed(issued, "GET", f"/api/v1/events?after={after}&limit=7").json()
            seen.extend((event["seq"], event["id"]) for event in page["events"])
            after = page["next_after"]
            if finished and not page["events"]:
                return
            time.sleep(0.005)

    poller = threading.Thread(target=lambda: (poll(), connection.close()))
    poller.start()
    changes = _run_threads(write, 6)
    writers_done.set()
    poller.join()

    committed = list(FeedEvent.objects.order_by("seq").values_list("seq", "event_id"))
    assert sum(changes) == 90
    assert len(committed) == 90
    assert seen == committed
    assert [seq for seq, _ in seen] == sorted({seq for seq, _ in seen})


def test_create_answers_carry_their_seq_and_the_poller_still_sees_each_event_once_while_writers_race():
    """Creates number their events at commit (the 201 carries the seq) while store actions on
    other orders commit out of order and leave theirs to the poll: the poller still sees every
    committed event exactly once, in seq order."""
    world = make_world(on_hand=500)
    issued = make_api_client()
    orders = [make_order(store=world["store"], lines=[(world["listing"], 1)]) for _ in range(12)]
    Order.objects.update(api_client=issued.client)
    writers_done = threading.Event()
    seen: list[tuple[int, str]] = []
    answers: dict[str, int] = {}

    def write(index: int) -> int:
        changed = 0
        rng = random.Random(index)
        if index < 3:  # API creates
            for number in range(6):
                order_id = f"113-{index:07d}-{number:07d}"
                response = signed(issued, "POST", "/api/v1/orders", order_document(marketplace_order_id=order_id))
                assert response.status_code == 201
                answers[order_id] = response.json()["last_event_seq"]
                changed += 1
            return changed
        for order in orders[index - 3 :: 3]:
            for step in (order_accept, order_start_picking, order_cancel):
                mine = Order.objects.get(pk=order.pk)
                with transaction.atomic():
                    if step is order_cancel:
                        step(order=mine, acting_user=None, reason="test")
                    else:
                        step(order=mine, acting_user=None)
                    time.sleep(rng.uniform(0, 0.02))
                changed += 1
        return changed

    def poll() -> None:
        after = 0
        while True:
            finished = writers_done.is_set()
            page = signed(issued, "GET", f"/api/v1/events?after={after}&limit=7").json()
            seen.extend((event["seq"], event["id"]) for event in page["events"])
            after = page["next_after"]
            if finished and not page["events"]:
                return
            time.sleep(0.005)

    poller = threading.Thread(target=lambda: (poll(), connection.close()))
    poller.start()
    changes = _run_threads(write, 6)
    writers_done.set()
    poller.join()

    committed = list(FeedEvent.objects.order_by("seq").values_list("seq", "event_id"))
    received = dict(
        FeedEvent.objects.filter(type="order.received", order__marketplace_order_id__in=list(answers)).values_list(
            "order__marketplace_order_id", "seq"
        )
    )
    assert sum(changes) == 18 + 36
    assert len(committed) == 18 + 36
    assert seen == committed
    assert [seq for seq, _ in seen] == sorted({seq for seq, _ in seen})
    assert answers == received
