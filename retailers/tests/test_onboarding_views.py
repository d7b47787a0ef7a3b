"""/store/onboarding: the checklist with its progress, the agreement, the training order buttons;
managers act, associates read, other stores' people get nothing."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.hashers import make_password
from django.urls import reverse
from django.utils import timezone

from orders.lifecycle import OrderStatus
from orders.models import Order
from orders.services import order_accept, order_mark_ready, order_record_picked, order_start_picking
from portal.tests.factories import make_mall, make_market, make_staff, make_store, make_user
from retailers import onboarding
from retailers.models import (
    AgreementAcceptance,
    ProgramAgreement,
    StaffRole,
    Store,
    StoreEvent,
    StoreHours,
    StoreStatus,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("store:onboarding")
AGREEMENT = reverse("store:onboarding-agreement")
TRAINING = reverse("store:onboarding-training")
DRIVER = reverse("store:onboarding-training-driver")
HTMX = {"HTTP_HX_REQUEST": "true"}
NOW = dt.datetime(2026, 11, 23, 18, 30, tzinfo=dt.UTC)


@pytest.fixture
def agreement() -> ProgramAgreement:
    ProgramAgreement.objects.all().delete()
    return ProgramAgreement.objects.create(
        version="2026.1",
        text="Pack orders on time.\n\nHand packages only to the right driver.",
        published_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )


@pytest.fixture
def store() -> Store:
    market = make_market(name="Chandler")
    mall = make_mall(market=market, name="Chandler Fashion Center", time_zone="America/Phoenix")
    return make_store(
        name="Sole Mates", unit="L1-120", mall=mall, status=StoreStatus.ONBOARDING, around_the_clock=False
    )


@pytest.fixture
def manager(store):
    return make_staff(
        store=store, role=StaffRole.MANAGER, user=make_user("mia", first_name="Mia", last_name="Lee")
    ).user


@pytest.fixture
def associate(store):
    return make_staff(store=store, role=StaffRole.ASSOCIATE).user


def _complete_all_but(store: Store, manager, *, skip: str = "") -> None:
    """Does every checklist item except `skip`."""
    if skip != "hours":
        StoreHours.objects.create(store=store, weekday=0, opens_at=dt.time(10), closes_at=dt.time(21))
    if skip != "pickup":
        Store.objects.filter(pk=store.pk).update(pickup_instructions="Back counter, ring the bell.")
    if skip != "team":
        user = make_user("ari")
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        make_staff(store=store, role=StaffRole.ASSOCIATE, user=user)
    if skip != "agreement":
        onboarding.agreement_accept(store=store, agreement=ProgramAgreement.current(), acting_user=manager)
    if skip != "training":
        order = onboarding.training_order_create(store=store, acting_user=manager)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.DELIVERED)
    store.refresh_from_db()


def test_checklist_of_new_store_has_nothing_done(store, agreement) -> None:
    checklist = onboarding.checklist_for(store)

    assert [(item.key, item.done) for item in checklist.items] == [
        ("hours", False),
        ("pickup", False),
        ("team", False),
        ("agreement", False),
        ("training", False),
    ]
    assert (checklist.done_count, checklist.total, checklist.complete, checklist.percent) == (0, 5, False, 0)


def test_checklist_counts_only_associates_who_set_password_and_logged_in(store, agreement) -> None:
    invited = make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user("invited")).user
    invited.password = make_password(None)  # an invitation not accepted yet
    invited.last_login = timezone.now()
    invited.save()
    never_logged_in = make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user("new")).user
    deactivated = make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user("gone", last_login=timezone.now()))
    deactivated.is_active = False
    deactivated.save(update_fields=["is_active"])
    manager_only = make_user("boss", last_login=timezone.now())
    make_staff(store=store, role=StaffRole.MANAGER, user=manager_only)

    team = onboarding.checklist_for(store).items[2]

    assert never_logged_in.last_login is None
    assert (team.done, team.detail) == (False, "2 invited; waiting for one to set a password and log in.")

    active = make_user("ari", last_login=timezone.now())
    make_staff(store=store, role=StaffRole.ASSOCIATE, user=active)
    team = onboarding.checklist_for(store).items[2]
    assert (team.done, team.detail) == (True, "1 associate active.")
    assert [row.user for row in onboarding.active_associates(store)] == [active]


def test_checklist_complete_when_every_item_done(store, manager, agreement) -> None:
    _complete_all_but(store, manager)

    checklist = onboarding.checklist_for(store)

    assert (checklist.done_count, checklist.complete, checklist.percent) == (5, True, 100)


def test_agreement_acceptance_of_old_version_does_not_count(store, manager, agreement) -> None:
    onboarding.agreement_accept(store=store, agreement=agreement, acting_user=manager)
    ProgramAgreement.objects.create(version="2026.2", text="New terms.", published_at=NOW + dt.timedelta(days=1))

    with time_machine.travel(NOW + dt.timedelta(days=2)):
        item = onboarding.checklist_for(store).items[3]

    assert (item.done, item.detail) == (False, "Read and accept version 2026.2 of the program agreement.")


def test_manager_sees_checklist_progress_and_links(client, store, manager, agreement) -> None:
    StoreHours.objects.create(store=store, weekday=0, opens_at=dt.time(10), closes_at=dt.time(21))
    client.force_login(manager)

    response = client.get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<progress id="checklist-progress" max="5" value="1">20%</progress>' in html
    assert "1 of 5 done" in html
    assert f'href="{reverse("store:store-settings")}#settings-heading">Write pickup instructions</a>' in html
    assert f'href="{reverse("store:team")}">Invite your team</a>' in html
    assert "Set opening hours</a>" not in html  # done items need no link
    assert "Version 2026.1" in html
    assert "Accept the agreement" in html
    assert "Start a training order" in html


def test_associate_sees_checklist_read_only(client, store, associate, agreement) -> None:
    client.force_login(associate)

    response = client.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    # The associate set a password and has just logged in: the team item is theirs.
    assert "1 of 5 done" in html
    assert "Only a store manager can complete these steps." in html
    assert "Accept the agreement" not in html
    assert "Start a training order" not in html
    assert "Invite your team</a>" not in html


@pytest.mark.parametrize("url", [AGREEMENT, TRAINING, DRIVER])
def test_associate_cannot_act(client, store, associate, agreement, url) -> None:
    client.force_login(associate)

    response = client.post(url, {"agreement": agreement.pk, "accept": "on"})

    assert response.status_code == 403
    assert AgreementAcceptance.objects.count() == 0
    assert Order.objects.count() == 0


def test_other_stores_manager_sees_only_their_own_store(client, store, agreement) -> None:
    other = make_store(name="Other Threads", status=StoreStatus.ONBOARDING)
    outsider = make_staff(store=other, role=StaffRole.MANAGER).user
    client.force_login(outsider)

    page = client.get(PAGE)
    client.post(TRAINING)

    assert "Other Threads" in page.content.decode()
    assert "Sole Mates" not in page.content.decode()
    assert list(Order.objects.values_list("store__name", flat=True)) == ["Other Threads"]


def test_person_without_store_gets_403(client, agreement) -> None:
    client.force_login(make_user("nobody"))

    assert client.get(PAGE).status_code == 403


def test_onboarding_wrong_method_is_405(client, store, manager) -> None:
    client.force_login(manager)

    assert client.post(PAGE).status_code == 405
    assert client.get(TRAINING).status_code == 405
    assert client.get(AGREEMENT).status_code == 405


def test_anonymous_is_sent_to_log_in(client) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_manager_accepts_agreement_with_who_and_when(client, store, manager, agreement) -> None:
    client.force_login(manager)

    # The page is read at the same frozen NOW: on the real clock, once more than the idle timeout
    # has passed since NOW, the session stamped at NOW would be logged out.
    with time_machine.travel(NOW, tick=False):
        response = client.post(AGREEMENT, {"agreement": agreement.pk, "accept": "on"})
        page = client.get(PAGE).content.decode()

    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}#agreement-heading"
    acceptance = AgreementAcceptance.objects.get()
    assert (acceptance.store, acceptance.agreement, acceptance.accepted_by, acceptance.accepted_at) == (
        store,
        agreement,
        manager,
        NOW,
    )
    assert acceptance.accepted_by_label == "Mia Lee"
    event = StoreEvent.objects.get(type="store.agreement_accepted")
    assert (event.actor, event.data) == (manager, {"version": "2026.1"})
    # 18:30 UTC is 11:30 in Phoenix (no daylight saving).
    assert "Accepted by Mia Lee on" in page
    assert "Mon Nov 23, 11:30 AM MST" in page


def test_agreement_without_tick_is_a_form_error(client, store, manager, agreement) -> None:
    client.force_login(manager)

    response = client.post(AGREEMENT, {"agreement": agreement.pk}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="onboarding"')
    assert "Tick the box to accept the agreement." in html
    assert 'aria-invalid="true"' in html
    assert AgreementAcceptance.objects.count() == 0


@pytest.mark.parametrize("value", ["abc", "999999", "", "1e9"])
def test_agreement_garbage_id_never_500(client, store, manager, agreement, value) -> None:
    client.force_login(manager)

    response = client.post(AGREEMENT, {"agreement": value, "accept": "on"})

    assert response.status_code in {200, 302}
    assert AgreementAcceptance.objects.count() == 0


def test_accepting_a_superseded_version_is_refused(client, store, manager, agreement) -> None:
    ProgramAgreement.objects.create(
        version="2026.2", text="New terms.", published_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    )
    client.force_login(manager)

    client.post(AGREEMENT, {"agreement": agreement.pk, "accept": "on"})
    page = client.get(PAGE).content.decode()

    assert AgreementAcceptance.objects.count() == 0
    assert "A newer version of the program agreement was published" in page


def test_manager_starts_training_order_and_calls_demo_driver(client, store, manager, agreement) -> None:
    client.force_login(manager)

    response = client.post(TRAINING, **HTMX)

    order = Order.objects.get()
    assert response.status_code == 200
    assert order.is_training is True
    html = response.content.decode()
    assert f"Training order {order.number} is on the board under New" in html
    assert "Start a training order" not in html  # one at a time
    board = client.get(reverse("store:board")).content.decode()
    assert order.number in board

    refused = client.post(DRIVER, **HTMX).content.decode()
    assert f"Training order {order.number} is received: mark it ready on the board first." in refused

    order_accept(order=order, acting_user=manager)
    order_start_picking(order=order, acting_user=manager)
    order_record_picked(order=order, acting_user=manager, picked={line.pk: line.quantity for line in order.lines.all()})
    order_mark_ready(order=order, acting_user=manager, package_count=1)
    called = client.post(DRIVER, **HTMX).content.decode()

    _route, offer = onboarding.training_route(order)
    assert f"pickup code {offer.pickup_code}" in called
    assert f'<span class="pickup-code">{offer.pickup_code}</span>' in called
    assert "Training driver (demo, not a real person)" in called


def test_htmx_get_returns_fragment(client, store, manager, agreement) -> None:
    client.force_login(manager)

    response = client.get(PAGE, **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="onboarding"')
    assert "<html" not in html


def test_page_shows_store_events(client, store, manager, agreement) -> None:
    onboarding.agreement_accept(store=store, agreement=agreement, acting_user=manager)
    client.force_login(manager)

    html = client.get(PAGE).content.decode()

    assert "Accepted the program agreement" in html
    assert "version: 2026.1" in html
