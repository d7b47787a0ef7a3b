"""The store lifecycle (issue 6 point 4): go live only from onboarding with a complete checklist
(by an operator, or automatically where the market says so), suspend and reinstate with a
reason, every transition an event with its actor, visible on the store's page and in the admin;
only live stores take orders and count for eligibility."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from orders.api.placement import candidate_stores
from orders.lifecycle import OrderStatus
from orders.models import Order
from portal.errors import ActionRefused
from portal.tests.factories import (
    make_listing,
    make_mall,
    make_market,
    make_staff,
    make_stock,
    make_store,
    make_user,
)
from retailers import onboarding, services
from retailers.eligibility_sql import eligibility_recompute
from retailers.models import (
    EligibilityRequest,
    EligibilityRequestKind,
    EligibilityResult,
    ProgramAgreement,
    StaffRole,
    Store,
    StoreEvent,
    StoreStatus,
)
from retailers.tests.admin_forms import store_change_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def agreement() -> ProgramAgreement:
    ProgramAgreement.objects.all().delete()
    return ProgramAgreement.objects.create(
        version="2026.1", text="Terms.", published_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    )


@pytest.fixture
def operator():
    return make_user("ops", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True)


def _onboarding_store(*, auto_go_live: bool = False, **fields) -> Store:
    market = make_market(auto_go_live=auto_go_live)
    mall = make_mall(market=market, name="Chandler Fashion Center", time_zone="America/Phoenix")
    return make_store(**{"name": "Sole Mates", "mall": mall, "status": StoreStatus.ONBOARDING, **fields})


def _complete_checklist(store: Store, *, skip: str = "") -> None:
    """Every item except `skip` (the store factory already sets opening hours)."""
    manager = make_staff(store=store, role=StaffRole.MANAGER).user
    if skip != "pickup":
        Store.objects.filter(pk=store.pk).update(pickup_instructions="Back counter, ring the bell.")
    if skip != "team":
        make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user(last_login=timezone.now()))
    if skip != "agreement":
        onboarding.agreement_accept(store=store, agreement=ProgramAgreement.current(), acting_user=manager)
    if skip != "training":
        order = onboarding.training_order_create(store=store, acting_user=manager)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.DELIVERED)
    store.refresh_from_db()


def test_go_live_refused_while_checklist_incomplete(agreement, operator) -> None:
    store = _onboarding_store()
    _complete_checklist(store, skip="agreement")

    with pytest.raises(ActionRefused) as refused:
        services.store_go_live(store=store, acting_user=operator)

    assert refused.value.code == "checklist-incomplete"
    assert refused.value.message == (
        "Sole Mates cannot go live yet: the onboarding checklist is 4 of 5 done. Still to do: program agreement "
        "accepted."
    )
    store.refresh_from_db()
    assert store.status == StoreStatus.ONBOARDING
    assert not StoreEvent.objects.filter(type="store.went_live").exists()


@pytest.mark.parametrize("status", [StoreStatus.APPLIED, StoreStatus.LIVE, StoreStatus.PAUSED, StoreStatus.SUSPENDED])
def test_go_live_only_from_onboarding(agreement, operator, status) -> None:
    store = _onboarding_store()
    _complete_checklist(store)
    Store.objects.filter(pk=store.pk).update(status=status, paused_reason="x" if status == "paused" else "")

    with pytest.raises(ActionRefused) as refused:
        services.store_go_live(store=store, acting_user=operator)

    assert refused.value.code == "illegal-transition"
    assert refused.value.message.endswith("only a store in onboarding can go live.")
    store.refresh_from_db()
    assert store.status == status


def test_operator_go_live_records_event_with_actor(agreement, operator) -> None:
    store = _onboarding_store()
    _complete_checklist(store)
    EligibilityRequest.objects.all().delete()

    services.store_go_live(store=store, acting_user=operator)

    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    event = StoreEvent.objects.get(type="store.went_live")
    assert (event.from_status, event.to_status, event.actor, event.actor_label, event.data) == (
        "onboarding",
        "live",
        operator,
        "Olga Operator",
        {"automatic": False},
    )
    # The eligibility recompute of the store is requested (the hooks' outbox row).
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [
        (EligibilityRequestKind.STORE, store.pk)
    ]


def test_store_goes_live_automatically_when_market_says_so(agreement, django_capture_on_commit_callbacks) -> None:
    store = _onboarding_store(auto_go_live=True)
    _complete_checklist(store, skip="agreement")
    manager = store.memberships.get(role=StaffRole.MANAGER).user

    with django_capture_on_commit_callbacks(execute=True):
        onboarding.agreement_accept(store=store, agreement=agreement, acting_user=manager)

    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    event = StoreEvent.objects.get(type="store.went_live")
    assert (event.actor, event.actor_label, event.data) == (None, "system", {"automatic": True})
    assert event.reason == "Onboarding checklist complete: went live automatically."


def test_store_does_not_go_live_by_itself_without_market_setting(agreement) -> None:
    store = _onboarding_store(auto_go_live=False)
    _complete_checklist(store)

    moved = onboarding.training_orders_sweep()

    store.refresh_from_db()
    assert (moved, store.status) == (0, StoreStatus.ONBOARDING)


def test_sweeper_takes_store_live_once_last_item_done_elsewhere(agreement) -> None:
    # The pickup instructions are written on the settings page, outside the onboarding module.
    store = _onboarding_store(auto_go_live=True)
    _complete_checklist(store, skip="pickup")
    assert onboarding.training_orders_sweep() == 0

    Store.objects.filter(pk=store.pk).update(pickup_instructions="Back counter.")
    moved = onboarding.training_orders_sweep()

    store.refresh_from_db()
    assert (moved, store.status) == (1, StoreStatus.LIVE)
    assert onboarding.training_orders_sweep() == 0


@pytest.mark.parametrize("start", [StoreStatus.LIVE, StoreStatus.PAUSED, StoreStatus.ONBOARDING])
def test_suspend_and_reinstate_with_reasons(operator, start) -> None:
    store = _onboarding_store(status=start, paused_reason="Stocktake" if start == "paused" else "")

    services.store_suspend(store=store, acting_user=operator, reason="  Two missed handoffs this week  ")
    suspended = Store.objects.get(pk=store.pk)
    services.store_reinstate(store=store, acting_user=operator, reason="Staff retrained")
    back = Store.objects.get(pk=store.pk)

    assert (suspended.status, suspended.paused_reason) == (StoreStatus.SUSPENDED, "")
    expected = StoreStatus.ONBOARDING if start == StoreStatus.ONBOARDING else StoreStatus.LIVE
    assert back.status == expected
    assert list(
        StoreEvent.objects.order_by("pk").values_list("type", "from_status", "to_status", "reason", "actor")
    ) == [
        ("store.suspended", start, "suspended", "Two missed handoffs this week", operator.pk),
        ("store.reinstated", "suspended", expected, "Staff retrained", operator.pk),
    ]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_suspend_needs_a_short_reason(operator, reason) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)

    with pytest.raises(ActionRefused) as refused:
        services.store_suspend(store=store, acting_user=operator, reason=reason)

    assert refused.value.code == "validation"
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    assert StoreEvent.objects.count() == 0


@pytest.mark.parametrize("status", [StoreStatus.APPLIED, StoreStatus.REJECTED, StoreStatus.SUSPENDED])
def test_suspend_refused_outside_onboarding_live_paused(operator, status) -> None:
    store = _onboarding_store(status=status)

    with pytest.raises(ActionRefused) as refused:
        services.store_suspend(store=store, acting_user=operator, reason="Why not")

    assert refused.value.code == "illegal-transition"
    assert StoreEvent.objects.count() == 0


def test_reinstate_refused_unless_suspended(operator) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)

    with pytest.raises(ActionRefused) as refused:
        services.store_reinstate(store=store, acting_user=operator, reason="Fine again")

    assert refused.value.message == "Sole Mates is live: only a suspended store can be reinstated."


def test_pause_refused_for_suspended_store(operator) -> None:
    store = _onboarding_store(status=StoreStatus.SUSPENDED)

    with pytest.raises(ActionRefused):
        services.store_pause(store=store, acting_user=operator, reason="Lunch")

    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED


# --- only live stores take orders and count for eligibility -----------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (StoreStatus.LIVE, ["Sole Mates"]),
        (StoreStatus.ONBOARDING, []),
        (StoreStatus.SUSPENDED, []),
        (StoreStatus.APPLIED, []),
        (StoreStatus.PAUSED, []),
    ],
)
def test_only_live_store_is_a_placement_candidate(status, expected) -> None:
    store = _onboarding_store(status=status, paused_reason="x" if status == "paused" else "")
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)

    noon = dt.datetime(2026, 11, 18, 19, 0, tzinfo=dt.UTC)  # 12:00 in Phoenix, before the 17:00 cutoff

    result = candidate_stores(seller=store.seller, malls=[store.mall], lines=[(listing, 1)], now=noon)

    assert [candidate.name for candidate in result.stores] == expected
    if not expected:
        assert result.reasons & {"no_live_store", "store_paused"}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (StoreStatus.ONBOARDING, "no_live_store"),
        (StoreStatus.SUSPENDED, "no_live_store"),
        (StoreStatus.APPLIED, "no_live_store"),
        (StoreStatus.PAUSED, "store_paused"),
    ],
)
def test_only_live_store_counts_for_eligibility(status, reason) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)
    listing = make_listing(seller=store.seller)
    make_stock(store=store, listing=listing, on_hand=5)
    noon = dt.datetime(2026, 11, 18, 19, 0, tzinfo=dt.UTC)  # 12:00 in Phoenix, before the 17:00 cutoff
    eligibility_recompute(driver_markets=[store.mall.market_id], now=noon)
    live = EligibilityResult.objects.get(listing=listing)

    Store.objects.filter(pk=store.pk).update(status=status, paused_reason="x" if status == "paused" else "")
    eligibility_recompute(driver_markets=[store.mall.market_id], now=noon + dt.timedelta(minutes=1))

    after = EligibilityResult.objects.get(listing=listing)
    assert (live.eligible, live.reasons) == (True, [])
    assert (after.eligible, after.reasons) == (False, [reason])


# --- visible on the store's page and in the admin ---------------------------------------------------


def test_transitions_visible_on_store_settings_page(client, operator) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)
    services.store_suspend(store=store, acting_user=operator, reason="Two missed handoffs")
    services.store_reinstate(store=store, acting_user=operator, reason="Retrained")
    client.force_login(make_staff(store=store, role=StaffRole.ASSOCIATE).user)

    html = client.get(reverse("store:store-settings")).content.decode()

    assert "Suspended by Mallrun" in html
    assert "Two missed handoffs" in html
    assert "Reinstated by Mallrun" in html
    assert "Olga Operator" in html


def test_operator_goes_live_from_admin_page(client, agreement, operator) -> None:
    store = _onboarding_store()
    _complete_checklist(store)
    client.force_login(operator)
    change = client.get(reverse("admin:retailers_store_change", args=[store.pk])).content.decode()
    confirm = client.get(reverse("admin:retailers_store_go_live", args=[store.pk]))

    response = client.post(reverse("admin:retailers_store_go_live", args=[store.pk]), {"reason": ""})

    assert "Go live…" in change
    assert "Suspend…" in change
    assert "Reinstate…" not in change
    assert "Onboarding checklist: 5 of 5 done" in confirm.content.decode()
    assert response.status_code == 302
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    page = client.get(reverse("admin:retailers_store_change", args=[store.pk])).content.decode()
    assert "Sole Mates is live and takes same-day orders." in page
    assert "<td>Went live</td>" in page  # the history on the admin page
    assert "Olga Operator" in page


def test_admin_go_live_refused_with_checklist_message(client, agreement, operator) -> None:
    store = _onboarding_store()
    _complete_checklist(store, skip="training")
    client.force_login(operator)

    client.post(reverse("admin:retailers_store_go_live", args=[store.pk]), {"reason": ""})

    page = client.get(reverse("admin:retailers_store_change", args=[store.pk])).content.decode()
    assert "Still to do: training order done end to end." in page
    store.refresh_from_db()
    assert store.status == StoreStatus.ONBOARDING


def test_admin_suspend_needs_reason_and_never_500s(client, operator) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)
    client.force_login(operator)
    url = reverse("admin:retailers_store_suspend", args=[store.pk])

    blank = client.post(url, {"reason": "   "})
    long = client.post(url, {"reason": "x" * 400})
    done = client.post(url, {"reason": "Two missed handoffs"})

    assert (blank.status_code, long.status_code, done.status_code) == (422, 422, 302)
    assert "Give a reason; the store&#x27;s staff will see it." in blank.content.decode()
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED
    assert StoreEvent.objects.get().reason == "Two missed handoffs"


def test_admin_lifecycle_pages_refuse_seller_managers_and_unknown_ids(client, operator) -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)
    from portal.tests.factories import make_seller_manager

    manager = make_seller_manager(seller=store.seller).user
    client.force_login(manager)
    refused = client.post(reverse("admin:retailers_store_suspend", args=[store.pk]), {"reason": "No"})
    client.force_login(operator)
    missing = client.get("/admin/retailers/store/999999/suspend/")
    garbage = client.get("/admin/retailers/store/abc/reinstate/")

    assert refused.status_code == 403
    assert (missing.status_code, garbage.status_code) == (404, 404)
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE


def test_admin_form_cannot_set_status_live_directly(client, agreement, operator) -> None:
    store = _onboarding_store()
    client.force_login(operator)

    response = _admin_status_post(client, store, "live")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == [
        "Use Go live, Suspend or Reinstate at the top of this page to change the status."
    ]
    store.refresh_from_db()
    assert store.status == StoreStatus.ONBOARDING


def _admin_status_post(client, store: Store, status: str):
    return client.post(
        reverse("admin:retailers_store_change", args=[store.pk]), store_change_data(store, status=status)
    )


def test_admin_form_cannot_bring_a_rejected_store_back(client, operator) -> None:
    store = _onboarding_store(status=StoreStatus.REJECTED)
    client.force_login(operator)

    response = _admin_status_post(client, store, "onboarding")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["status"] == ["A store cannot go from rejected to onboarding."]
    store.refresh_from_db()
    assert store.status == StoreStatus.REJECTED
    assert StoreEvent.objects.filter(store=store).count() == 0


def test_admin_form_moves_an_applied_store_to_onboarding_with_an_event(client, operator) -> None:
    store = _onboarding_store(status=StoreStatus.APPLIED)
    client.force_login(operator)

    response = _admin_status_post(client, store, "onboarding")

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.status == StoreStatus.ONBOARDING
    assert list(StoreEvent.objects.filter(store=store).values_list("type", "from_status", "to_status", "actor")) == [
        ("store.onboarding_started", StoreStatus.APPLIED, StoreStatus.ONBOARDING, operator.pk)
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_operators_suspending_at_once_one_wins() -> None:
    store = _onboarding_store(status=StoreStatus.LIVE)
    operators = [make_user(f"op{n}", is_staff=True, is_superuser=True) for n in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def suspend(user) -> None:
        try:
            barrier.wait(timeout=30)
            services.store_suspend(store=store, acting_user=user, reason=f"by {user.username}")
            outcomes.append("won")
        except ActionRefused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=suspend, args=(user,)) for user in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) in (["conflict", "won"], ["illegal-transition", "won"])
    assert StoreEvent.objects.filter(type="store.suspended").count() == 1


def test_operator_publishes_agreement_version_and_accepted_one_is_frozen(client, agreement, operator) -> None:
    store = _onboarding_store()
    manager = make_staff(store=store, role=StaffRole.MANAGER).user
    onboarding.agreement_accept(store=store, agreement=agreement, acting_user=manager)
    client.force_login(operator)

    listing = client.get(reverse("admin:retailers_programagreement_changelist")).content.decode()
    frozen = client.get(reverse("admin:retailers_programagreement_change", args=[agreement.pk]))
    delete = client.post(reverse("admin:retailers_programagreement_delete", args=[agreement.pk]), {"post": "yes"})
    added = client.post(
        reverse("admin:retailers_programagreement_add"),
        {"version": "2026.2", "text": "New terms.", "published_at_0": "2026-11-01", "published_at_1": "09:00:00"},
    )

    assert "2026.1" in listing
    assert frozen.context["adminform"].form.fields == {}  # every field read-only once accepted
    assert delete.status_code == 403
    assert added.status_code == 302
    assert ProgramAgreement.current().version == "2026.2"
    assert onboarding.checklist_for(store).items[3].done is False


def test_seller_manager_cannot_see_agreements_or_market_settings(client) -> None:
    from portal.tests.factories import make_seller, make_seller_manager

    client.force_login(make_seller_manager(seller=make_seller()).user)

    assert client.get(reverse("admin:retailers_programagreement_changelist")).status_code == 403
    assert client.get(reverse("admin:retailers_market_changelist")).status_code == 403
