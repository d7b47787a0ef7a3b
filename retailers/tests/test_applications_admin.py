"""Operator review of store applications: the admin list and filters, approve and reject with a
reason through the confirm page, and the services behind them (one transaction, a conditional
UPDATE on the application's status, the applicant emailed either way)."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.urls import reverse

from portal.errors import ActionRefused
from portal.notifications.models import Notification
from portal.tests.factories import make_mall, make_market, make_seller, make_seller_manager, make_store, make_user
from retailers.applications import application_approve, application_reject, application_submit
from retailers.models import (
    ApplicationStatus,
    Seller,
    StaffRole,
    Store,
    StoreApplication,
    StoreEvent,
    StoreHours,
    StoreMembership,
    StoreStatus,
)

pytestmark = pytest.mark.django_db
SUBMITTED = dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC)
REVIEWED = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def mall():
    return make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))


@pytest.fixture
def operator():
    return make_user("ops", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True)


def submit(mall, **overrides) -> StoreApplication:
    fields = {
        "marketplace_seller_id": "A1B2C3D4E5",
        "seller_name": "Sunset Retail LLC",
        "store_name": "Sunset Shoes",
        "mall": mall,
        "unit": "L2-214",
        "contact_name": "Pat Lee",
        "email": "pat@example.com",
        "phone": "(702) 555-0134",
        "hours": {
            0: (dt.time(10), dt.time(21)),
            1: (dt.time(10), dt.time(21)),
            2: None,
            3: (dt.time(10), dt.time(21)),
            4: (dt.time(10), dt.time(1, 30)),
            5: (dt.time(0), dt.time(0)),
            6: None,
        },
        "categories": ["footwear"],
        "estimated_daily_orders": 25,
    }
    with time_machine.travel(SUBMITTED, tick=False):
        return application_submit(**{**fields, **overrides})


def _decide_url(application: StoreApplication, decision: str) -> str:
    return reverse(f"admin:retailers_storeapplication_{decision}", args=[application.pk])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- the service --------------------------------------------------------------------------------


def test_application_approve_creates_seller_onboarding_store_hours_events_and_invites_manager(mall, operator):
    application = submit(mall)

    with time_machine.travel(REVIEWED, tick=False):
        application_approve(application=application, acting_user=operator, reason="Welcome aboard")

    application.refresh_from_db()
    assert (application.status, application.reviewed_by, application.reviewed_at, application.reason) == (
        ApplicationStatus.APPROVED,
        operator,
        REVIEWED,
        "Welcome aboard",
    )
    seller = Seller.objects.get()
    assert (seller.marketplace_seller_id, seller.name) == ("A1B2C3D4E5", "Sunset Retail LLC")
    store = Store.objects.get()
    assert application.store == store
    assert (store.seller, store.mall, store.name, store.unit, store.status) == (
        seller,
        mall,
        "Sunset Shoes",
        "L2-214",
        StoreStatus.ONBOARDING,
    )
    assert [(h.weekday, h.opens_at, h.closes_at) for h in StoreHours.objects.filter(store=store)] == [
        (0, dt.time(10), dt.time(21)),
        (1, dt.time(10), dt.time(21)),
        (3, dt.time(10), dt.time(21)),
        (4, dt.time(10), dt.time(1, 30)),
        (5, dt.time(0), dt.time(0)),
    ]
    events = list(StoreEvent.objects.filter(store=store).exclude(type="store.staff_invited"))
    assert [(e.type, e.from_status, e.to_status, e.actor, e.actor_label, e.at, e.reason) for e in events] == [
        ("store.applied", "", "applied", None, "Pat Lee (applicant)", SUBMITTED, ""),
        ("store.approved", "applied", "approved", operator, "Olga Operator", REVIEWED, "Welcome aboard"),
        ("store.onboarding_started", "approved", "onboarding", operator, "Olga Operator", REVIEWED, ""),
    ]
    membership = StoreMembership.objects.get()
    assert (membership.store, membership.user.email, membership.role, membership.is_active) == (
        store,
        "pat@example.com",
        StaffRole.MANAGER,
        True,
    )
    assert list(Notification.objects.order_by("pk").values_list("kind", "to")) == [
        ("application.received", "pat@example.com"),
        ("store.invitation", "pat@example.com"),
        ("application.approved", "pat@example.com"),
    ]
    approved = Notification.objects.get(kind="application.approved")
    assert approved.subject == "Sunset Shoes is approved for Mallrun same-day delivery"
    assert "Note from the reviewer: Welcome aboard" in approved.body
    assert "<p>Note from the reviewer: Welcome aboard</p>" in approved.html_body


def test_application_approve_naming_an_existing_seller_is_refused_until_the_operator_confirms_it(mall, operator):
    seller = make_seller(marketplace_seller_id="A1B2C3D4E5", name="Sunset (existing)")
    application = submit(mall)

    with pytest.raises(ActionRefused) as refused:
        application_approve(application=application, acting_user=operator)

    assert (refused.value.code, refused.value.message) == (
        "existing-seller",
        "A1B2C3D4E5 is the seller id of Sunset (existing), who already sells here: approve only once Sunset "
        "(existing) has confirmed that Pat Lee may open a store for them.",
    )
    application.refresh_from_db()
    assert (application.status, application.reviewed_at, application.store) == (ApplicationStatus.APPLIED, None, None)
    assert (list(Seller.objects.all()), Store.objects.count(), StoreMembership.objects.count()) == ([seller], 0, 0)
    assert Notification.objects.filter(kind="application.approved").count() == 0


def test_application_approve_reuses_the_seller_with_that_marketplace_id(mall, operator):
    seller = make_seller(marketplace_seller_id="A1B2C3D4E5", name="Sunset (existing)")
    application = submit(mall)

    application_approve(application=application, acting_user=operator, existing_seller_confirmed=True)

    assert list(Seller.objects.all()) == [seller]
    assert Store.objects.get().seller == seller
    assert Seller.objects.get().name == "Sunset (existing)"


def test_application_approve_twice_is_refused_even_from_a_stale_copy(mall, operator):
    application = submit(mall)
    stale = StoreApplication.objects.get(pk=application.pk)
    application_approve(application=application, acting_user=operator)

    with pytest.raises(ActionRefused) as refused:
        application_approve(application=stale, acting_user=make_user(is_staff=True, is_superuser=True))

    assert refused.value.message == (
        f"Application A-{application.pk} (Sunset Shoes) was already approved by Olga Operator: "
        "only a new application can be approved or rejected."
    )
    assert (Store.objects.count(), StoreMembership.objects.count(), Seller.objects.count()) == (1, 1, 1)
    assert Notification.objects.filter(kind="application.approved").count() == 1


def test_application_approve_a_rejected_application_is_refused_and_writes_nothing(mall, operator):
    application = submit(mall)
    application_reject(application=application, acting_user=operator, reason="Mall not in the program yet")

    with pytest.raises(ActionRefused) as refused:
        application_approve(application=application, acting_user=operator)

    assert "was already rejected by Olga Operator" in refused.value.message
    application.refresh_from_db()
    assert (application.status, application.reason, application.store) == (
        ApplicationStatus.REJECTED,
        "Mall not in the program yet",
        None,
    )
    assert (Store.objects.count(), Seller.objects.count(), StoreMembership.objects.count()) == (0, 0, 0)


def test_application_approve_for_a_unit_the_seller_already_has_is_refused_and_rolled_back(mall, operator):
    seller = make_seller(marketplace_seller_id="A1B2C3D4E5", name="Sunset")
    make_store(seller=seller, mall=mall, unit="l2-214", name="Old Sunset")
    application = submit(mall)

    with pytest.raises(ActionRefused) as refused:
        application_approve(application=application, acting_user=operator, existing_seller_confirmed=True)

    assert refused.value.message == (
        "Sunset already has a store in unit L2-214 at Fashion Show: reject this application or change the "
        "existing store."
    )
    application.refresh_from_db()
    assert (application.status, application.reviewed_at) == (ApplicationStatus.APPLIED, None)
    assert list(Store.objects.values_list("name", flat=True)) == ["Old Sunset"]
    assert StoreMembership.objects.count() == 0


def test_application_approve_applicant_with_an_account_gets_the_added_email(mall, operator):
    person = make_user("pat", email="pat@example.com")
    application = submit(mall)

    application_approve(application=application, acting_user=operator)

    assert StoreMembership.objects.get().user == person
    assert Notification.objects.filter(kind="store.added", to="pat@example.com").count() == 1
    assert Notification.objects.filter(kind="store.invitation").count() == 0


def test_application_reject_records_reason_and_emails_it(mall, operator):
    application = submit(mall)

    with time_machine.travel(REVIEWED, tick=False):
        application_reject(application=application, acting_user=operator, reason="  Mall not\nin the program  ")

    application.refresh_from_db()
    assert (application.status, application.reason, application.reviewed_by, application.reviewed_at) == (
        ApplicationStatus.REJECTED,
        "Mall not in the program",
        operator,
        REVIEWED,
    )
    row = Notification.objects.get(kind="application.rejected")
    assert (row.to, row.subject) == ("pat@example.com", "Your Mallrun application for Sunset Shoes")
    assert "Reason: Mall not in the program" in row.body
    assert Store.objects.count() == 0


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Say why the application is rejected; the applicant reads it."),
        ("   ", "Say why the application is rejected; the applicant reads it."),
        ("x" * 301, "Keep the reason to 300 characters or fewer."),
    ],
)
def test_application_reject_needs_a_reason(mall, operator, reason, message):
    application = submit(mall)

    with pytest.raises(ActionRefused) as refused:
        application_reject(application=application, acting_user=operator, reason=reason)

    assert refused.value.message == message
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPLIED
    assert Notification.objects.filter(kind="application.rejected").count() == 0


# --- the admin ----------------------------------------------------------------------------------


def test_admin_list_filters_by_status_and_market(client, mall, operator):
    applied = submit(mall, store_name="Applied Store")
    rejected = submit(mall, store_name="Rejected Store", unit="U-9")
    application_reject(application=rejected, acting_user=operator, reason="No")
    elsewhere = submit(make_mall(market=make_market(name="Chandler")), store_name="Chandler Store")
    client.force_login(operator)
    url = reverse("admin:retailers_storeapplication_changelist")

    by_status = client.get(url, {"status__exact": "applied"})
    by_market = client.get(url, {"market": str(mall.market_id)})

    assert by_status.status_code == 200
    assert list(by_status.context["cl"].result_list) == [elsewhere, applied]
    assert list(by_market.context["cl"].result_list) == [rejected, applied]


def test_admin_applications_are_for_operators_only(client, mall):
    application = submit(mall)
    seller_manager = make_seller_manager(seller=make_seller()).user
    client.force_login(seller_manager)

    assert client.get(reverse("admin:retailers_storeapplication_changelist")).status_code == 403
    assert client.get(_decide_url(application, "approve")).status_code == 403
    response = client.post(_decide_url(application, "approve"), {"reason": ""})
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPLIED


def test_admin_change_page_shows_approve_and_reject_only_while_applied(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)
    change_url = reverse("admin:retailers_storeapplication_change", args=[application.pk])

    before = client.get(change_url).content.decode()
    application_reject(application=application, acting_user=operator, reason="No")
    after = client.get(change_url).content.decode()

    assert f'href="{_decide_url(application, "approve")}"' in before
    assert f'href="{_decide_url(application, "reject")}"' in before
    assert "Fri: 10:00–01:30 (closes after midnight)" not in before  # weekday labels are full names
    assert "Friday: 10:00–01:30 (closes after midnight)" in before
    assert "Fri Nov 20 2026, 9:30 AM PST" in before  # submitted 17:30 UTC, shown in the mall's time
    assert _decide_url(application, "approve") not in after


def test_admin_approve_through_the_confirm_page(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    page = client.get(_decide_url(application, "approve"))
    response = client.post(_decide_url(application, "approve"), {"reason": ""}, follow=True)

    assert page.status_code == 200
    assert "Approve application A-" in page.content.decode()
    assert response.redirect_chain[-1][0] == reverse("admin:retailers_storeapplication_change", args=[application.pk])
    assert _messages(response) == [
        f"Application A-{application.pk} approved: Sunset Shoes is onboarding and pat@example.com was invited "
        "as its manager."
    ]
    assert Store.objects.get().status == StoreStatus.ONBOARDING


def test_admin_approve_page_warns_of_an_existing_seller_and_needs_the_operators_confirmation(client, mall, operator):
    seller = make_seller(marketplace_seller_id="A1B2C3D4E5", name="Sunset Apparel")
    make_store(seller=seller, mall=mall, name="Sunset Apparel Fashion Show", unit="L1-100")
    application = submit(mall)
    client.force_login(operator)

    page = client.get(_decide_url(application, "approve")).content.decode()
    unconfirmed = client.post(_decide_url(application, "approve"), {"reason": ""})

    assert "A1B2C3D4E5 is already the seller id of Sunset Apparel.</strong>" in page
    assert "The applicant named the seller “Sunset Retail LLC”." in page
    assert "Sunset Apparel’s stores: Sunset Apparel Fashion Show (Fashion Show, live)." in page
    assert "Sunset Apparel confirmed that Pat Lee (pat@example.com) may open this store for them" in page
    assert unconfirmed.status_code == 422
    assert "Check with Sunset Apparel first, then tick this; or reject the application." in unconfirmed.content.decode()
    application.refresh_from_db()
    assert (application.status, Store.objects.count()) == (ApplicationStatus.APPLIED, 1)

    confirmed = client.post(_decide_url(application, "approve"), {"reason": "", "existing_seller_confirmed": "on"})

    assert confirmed.status_code == 302
    application.refresh_from_db()
    assert (application.status, application.store.seller) == (ApplicationStatus.APPROVED, seller)


def test_admin_approve_page_for_a_new_seller_asks_no_confirmation(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    page = client.get(_decide_url(application, "approve")).content.decode()

    assert "existing_seller_confirmed" not in page
    assert "is already the seller id" not in page


def test_admin_approve_again_is_refused_with_a_message(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)
    client.post(_decide_url(application, "approve"), {"reason": ""})

    again = client.post(_decide_url(application, "approve"), {"reason": ""}, follow=True)

    assert [m for m in _messages(again) if "already approved" in m] == [
        f"Application A-{application.pk} (Sunset Shoes) was already approved by Olga Operator: only a new "
        "application can be approved or rejected."
    ]
    assert Store.objects.count() == 1


def test_admin_reject_without_reason_shows_form_error_and_changes_nothing(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    response = client.post(_decide_url(application, "reject"), {"reason": "  "})

    assert response.status_code == 422
    assert "Say why the application is rejected; the applicant reads it." in response.content.decode()
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPLIED


def test_admin_reject_with_reason_emails_the_applicant(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    response = client.post(_decide_url(application, "reject"), {"reason": "Mall not in the program"}, follow=True)

    assert _messages(response) == [f"Application A-{application.pk} rejected; pat@example.com was emailed the reason."]
    application.refresh_from_db()
    assert (application.status, application.reason) == (ApplicationStatus.REJECTED, "Mall not in the program")
    assert Notification.objects.filter(kind="application.rejected", to="pat@example.com").count() == 1


def test_admin_reject_reason_typed_on_several_lines_is_kept_on_one(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    response = client.post(_decide_url(application, "reject"), {"reason": "Mall not in the program.\r\n\r\n  Sorry!"})

    assert response.status_code == 302
    application.refresh_from_db()
    assert (application.status, application.reason) == (ApplicationStatus.REJECTED, "Mall not in the program. Sorry!")


@pytest.mark.parametrize("reason", ["a\x00b", "x" * 301])
def test_admin_reject_garbage_reason_is_a_form_error(client, mall, operator, reason):
    application = submit(mall)
    client.force_login(operator)

    response = client.post(_decide_url(application, "reject"), {"reason": reason})

    assert response.status_code == 422
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPLIED


@pytest.mark.parametrize("path", ["999999/approve/", "abc/approve/", "9" * 40 + "/reject/", "1/2/approve/"])
def test_admin_decide_unknown_application_is_404(client, operator, path):
    client.force_login(operator)

    response = client.get(reverse("admin:retailers_storeapplication_changelist") + path)

    assert response.status_code == 404


def test_admin_decide_page_for_a_decided_application_redirects_with_a_message(client, mall, operator):
    application = submit(mall)
    application_reject(application=application, acting_user=operator, reason="No")
    client.force_login(operator)

    response = client.get(_decide_url(application, "approve"), follow=True)

    assert _messages(response) == [f"Application A-{application.pk} is already rejected."]


def test_admin_decide_wrong_method_is_405(client, mall, operator):
    application = submit(mall)
    client.force_login(operator)

    assert client.put(_decide_url(application, "approve")).status_code == 405


# --- racing operators, on the real PostgreSQL ---------------------------------------------------


def _race(targets) -> list[str]:
    """Runs each target in its own thread and connection, released together; returns "ok" or
    the refusal's code per target."""
    barrier = threading.Barrier(len(targets))
    results: list[str] = []
    lock = threading.Lock()

    def run(target) -> None:
        try:
            barrier.wait()
            try:
                target()
                outcome = "ok"
            except ActionRefused as refused:
                outcome = refused.code
        finally:
            close_old_connections()
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_application_four_operators_approve_or_reject_at_once_exactly_one_decides(mall):
    application = submit(mall)
    operators = [make_user(is_staff=True, is_superuser=True) for _ in range(4)]
    targets = [
        lambda op=operators[0]: application_approve(application=application, acting_user=op),
        lambda op=operators[1]: application_approve(application=application, acting_user=op),
        lambda op=operators[2]: application_reject(application=application, acting_user=op, reason="No"),
        lambda op=operators[3]: application_approve(application=application, acting_user=op),
    ]

    outcomes = _race(targets)

    assert outcomes == ["illegal-transition"] * 3 + ["ok"]
    application.refresh_from_db()
    assert application.reviewed_by in operators
    if application.status == ApplicationStatus.APPROVED:
        assert (Store.objects.count(), Seller.objects.count(), StoreMembership.objects.count()) == (1, 1, 1)
    else:
        assert (Store.objects.count(), Seller.objects.count(), StoreMembership.objects.count()) == (0, 0, 0)
    decided = Notification.objects.filter(kind__in=["application.approved", "application.rejected"]).count()
    assert decided == 1


def test_approved_store_history_names_application_steps_for_its_manager(client, mall, operator):
    application = submit(mall)
    application_approve(application=application, acting_user=operator)
    manager = StoreMembership.objects.get(store=Store.objects.get()).user
    client.force_login(manager)

    html = client.get(reverse("store:store-settings")).content.decode()

    assert [title in html for title in ("Applied to join Mallrun", "Application approved", "Onboarding started")] == [
        True,
        True,
        True,
    ]
    assert "store.applied" not in html
    assert f"application: {application.pk}" not in html
