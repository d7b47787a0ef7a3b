"""/store/team: managers invite, change roles and deactivate (the person is logged out at once);
associates cannot; the last active manager stays; a person can work at several stores."""

import datetime as dt

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from portal.models import Session
from portal.notifications.models import Notification
from portal.sessions import SessionStore
from portal.tests.factories import PASSWORD, make_mall, make_staff, make_store, make_user
from retailers.access import SESSION_STORE_KEY
from retailers.models import StaffRole, Store, StoreEvent, StoreMembership
from retailers.team import end_sessions_of

pytestmark = pytest.mark.django_db

PAGE = reverse("store:team")
INVITE = reverse("store:team-invite")
HTMX = {"HTTP_HX_REQUEST": "true"}


def role_url(membership: StoreMembership) -> str:
    return reverse("store:team-role", args=[membership.pk])


def deactivate_url(membership: StoreMembership) -> str:
    return reverse("store:team-deactivate", args=[membership.pk])


@pytest.fixture
def store() -> Store:
    return make_store(name="Sole Mates", mall=make_mall(name="Chandler Fashion Center", time_zone="America/Phoenix"))


@pytest.fixture
def manager_membership(store) -> StoreMembership:
    return make_staff(store=store, role=StaffRole.MANAGER, user=make_user("mia", first_name="Mia", last_name="Lee"))


@pytest.fixture
def manager(manager_membership):
    return manager_membership.user


@pytest.fixture
def associate_membership(store) -> StoreMembership:
    return make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user("ari", first_name="Ari", last_name="Diaz"))


def _logged_in(username: str) -> Client:
    # Through the real log-in page (django-axes needs the request), like a person on a device.
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def test_manager_sees_members_with_role_and_last_login_in_mall_time(
    client, store, manager, associate_membership
) -> None:
    user = associate_membership.user
    # 18:05 UTC is 11:05 in Phoenix (no daylight saving).
    user.last_login = dt.datetime(2026, 11, 20, 18, 5, tzinfo=dt.UTC)
    user.email = "ari@example.com"
    user.save()
    client.force_login(manager)

    response = client.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ari Diaz" in html
    assert "ari@example.com" in html
    assert "Fri Nov 20, 11:05 AM MST" in html
    assert "Mia Lee (you)" in html
    assert html.count("<dt>Role</dt><dd>Associate</dd>") == 1
    assert html.count("<dt>Role</dt><dd>Store manager</dd>") == 1
    assert 'Change role<span class="visually-hidden"> of Ari Diaz</span></button>' in html


def test_team_page_htmx_gets_fragment(client, manager) -> None:
    client.force_login(manager)

    html = client.get(PAGE, **HTMX).content.decode()

    assert html.lstrip().startswith('<div id="team"')
    assert "<html" not in html


def test_manager_invites_by_email(client, store, manager) -> None:
    client.force_login(manager)

    response = client.post(INVITE, {"email": "new.hire@example.com", "full_name": "Noa Park", "role": "associate"})

    assert response.status_code == 302
    membership = StoreMembership.objects.get(user__email="new.hire@example.com")
    assert (membership.store, membership.role, membership.is_active) == (store, StaffRole.ASSOCIATE, True)
    assert membership.user.get_full_name() == "Noa Park"
    assert membership.user.has_usable_password() is False
    assert Notification.objects.filter(kind="store.invitation").count() == 1
    event = StoreEvent.objects.get(type="store.staff_invited")
    assert event.actor == manager
    page = client.get(PAGE).content.decode()
    assert "Invitation sent to new.hire@example.com." in page
    assert "Invited: has not set a password yet" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "role": "associate"}, "Enter the person&#x27;s email address."),
        ({"email": "not-an-email", "role": "associate"}, "Enter a valid email address, like name@example.com."),
        ({"email": "a@example.com", "role": "owner"}, "Choose a role: associate or store manager."),
        ({"email": "a@example.com", "role": "associate", "full_name": "x" * 151}, "Keep the name to 150 characters"),
        ({"email": "\x00@example.com", "role": "associate"}, "Enter a valid email address"),
        (
            {"email": "a" * 64 + "@" + ("b" * 60 + ".") * 2 + "example.com", "role": "associate"},
            "Keep the email address to 150 characters or fewer: it is the person&#x27;s login name.",
        ),
    ],
)
def test_invite_garbage_is_a_form_error(client, manager, data, message) -> None:
    client.force_login(manager)
    before = StoreMembership.objects.count()

    response = client.post(INVITE, data, **HTMX)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert StoreMembership.objects.count() == before


def test_associate_gets_403_on_team_page_and_every_action(client, store, manager_membership, associate_membership):
    client.force_login(associate_membership.user)

    responses = [
        client.get(PAGE),
        client.post(INVITE, {"email": "x@example.com", "role": "manager"}),
        client.post(role_url(manager_membership), {"role": "associate"}),
        client.post(deactivate_url(manager_membership)),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    manager_membership.refresh_from_db()
    assert (manager_membership.role, manager_membership.is_active) == (StaffRole.MANAGER, True)
    assert not StoreMembership.objects.filter(user__email="x@example.com").exists()


def test_other_stores_manager_gets_404_on_our_members(client, store, associate_membership) -> None:
    other = make_store(name="Other Threads")
    outsider = make_staff(store=other, role=StaffRole.MANAGER).user
    client.force_login(outsider)

    role = client.post(role_url(associate_membership), {"role": "manager"})
    gone = client.post(deactivate_url(associate_membership))

    assert (role.status_code, gone.status_code) == (404, 404)
    associate_membership.refresh_from_db()
    assert (associate_membership.role, associate_membership.is_active) == (StaffRole.ASSOCIATE, True)


def test_team_wrong_method_is_405(client, manager, associate_membership) -> None:
    client.force_login(manager)

    assert client.post(PAGE).status_code == 405
    assert client.get(INVITE).status_code == 405
    assert client.get(role_url(associate_membership)).status_code == 405
    assert client.get(deactivate_url(associate_membership)).status_code == 405


def test_manager_changes_role(client, store, manager, associate_membership) -> None:
    client.force_login(manager)

    response = client.post(role_url(associate_membership), {"role": "manager"}, **HTMX)

    associate_membership.refresh_from_db()
    assert associate_membership.role == StaffRole.MANAGER
    assert "Ari Diaz is now store manager." in response.content.decode()
    event = StoreEvent.objects.get(type="store.staff_role_changed")
    assert (event.actor, event.data["from"], event.data["to"]) == (manager, "associate", "manager")


def test_role_garbage_changes_nothing(client, manager, associate_membership) -> None:
    client.force_login(manager)

    response = client.post(role_url(associate_membership), {"role": "'; DROP TABLE"}, **HTMX)

    assert response.status_code == 200
    assert "Choose a role: associate or store manager." in response.content.decode()
    associate_membership.refresh_from_db()
    assert associate_membership.role == StaffRole.ASSOCIATE


def _assert_cannot_demote_or_deactivate_the_only_manager(client, manager_membership) -> None:
    demote = client.post(role_url(manager_membership), {"role": "associate"}, **HTMX)
    leave = client.post(deactivate_url(manager_membership), **HTMX)

    message = "Mia Lee is the store&#x27;s only active manager: make someone else a manager first."
    assert message in demote.content.decode()
    assert message in leave.content.decode()
    manager_membership.refresh_from_db()
    assert (manager_membership.role, manager_membership.is_active) == (StaffRole.MANAGER, True)


def test_last_manager_cannot_demote_or_deactivate_themself(client, store, manager_membership) -> None:
    client.force_login(manager_membership.user)

    _assert_cannot_demote_or_deactivate_the_only_manager(client, manager_membership)
    assert client.get(PAGE).status_code == 200


def test_last_manager_cannot_leave_while_the_other_manager_has_not_set_a_password(
    client, store, manager_membership
) -> None:
    # The other manager's invitation may never be accepted (a mistyped address): the store would
    # be left without a manager anybody can log in as.
    client.force_login(manager_membership.user)
    client.post(INVITE, {"email": "asistant@example.com", "role": "manager"})

    _assert_cannot_demote_or_deactivate_the_only_manager(client, manager_membership)


def test_manager_can_leave_when_another_manager_remains(store, manager_membership) -> None:
    make_staff(store=store, role=StaffRole.MANAGER)
    client = _logged_in("mia")

    response = client.post(deactivate_url(manager_membership), **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("login")
    manager_membership.refresh_from_db()
    assert manager_membership.is_active is False
    assert client.get(PAGE).status_code == 302  # logged out


def test_deactivate_ends_the_persons_sessions_at_once(store, manager, associate_membership) -> None:
    tablet = _logged_in("ari")
    phone = _logged_in("ari")
    bystander = _logged_in("mia")
    assert tablet.get(reverse("store:board")).status_code == 200
    sessions_before = Session.objects.count()
    manager_client = bystander

    response = manager_client.post(deactivate_url(associate_membership))

    assert response.status_code == 302
    associate_membership.refresh_from_db()
    assert associate_membership.is_active is False
    assert Session.objects.count() == sessions_before - 2
    for device in (tablet, phone):
        board = device.get(reverse("store:board"))
        assert board.status_code == 302
        assert board["Location"].startswith(reverse("login"))
    assert manager_client.get(PAGE).status_code == 200
    event = StoreEvent.objects.get(type="store.staff_deactivated")
    assert (event.actor, event.data["name"]) == (manager, "Ari Diaz")
    assert "Deactivated" in manager_client.get(PAGE).content.decode()


def test_deactivated_person_logging_in_again_has_no_store(store, manager, associate_membership) -> None:
    _logged_in("mia").post(deactivate_url(associate_membership))

    again = _logged_in("ari")

    assert again.get(reverse("store:board")).status_code == 403


def test_deactivate_twice_is_refused_with_message(client, manager, associate_membership) -> None:
    client.force_login(manager)
    client.post(deactivate_url(associate_membership))

    response = client.post(deactivate_url(associate_membership), **HTMX)

    assert "Ari Diaz is already deactivated." in response.content.decode()
    assert StoreEvent.objects.filter(type="store.staff_deactivated").count() == 1


def test_person_works_at_two_stores_and_deactivation_is_per_store(store, manager) -> None:
    second = make_store(name="Sole Mates Outlet")
    person = make_user("sam", first_name="Sam")
    here = make_staff(store=store, role=StaffRole.ASSOCIATE, user=person)
    there = make_staff(store=second, role=StaffRole.MANAGER, user=person)
    sam = _logged_in("sam")
    session = sam.session
    session[SESSION_STORE_KEY] = second.pk
    session.save()

    assert sam.get(PAGE).status_code == 200  # a manager at the second store
    _logged_in("mia").post(deactivate_url(here))

    here.refresh_from_db()
    there.refresh_from_db()
    assert (here.is_active, there.is_active) == (False, True)
    # Their session at the other store goes on: this store's manager ends only this store's.
    assert sam.get(PAGE).status_code == 200
    board = sam.get(reverse("store:board"))
    assert board.status_code == 200
    assert board.context["current_store"] == second


def _session_cached(client: Client) -> bool:
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return caches[settings.SESSION_CACHE_ALIAS].get(SessionStore.cache_key_prefix + key) is not None


def test_end_sessions_of_ends_exactly_that_persons_sessions(
    store, manager, manager_membership, associate_membership
) -> None:
    ari = associate_membership.user
    tablet, phone = _logged_in("ari"), _logged_in("ari")
    mia_tablet, mia_phone = _logged_in("mia"), _logged_in("mia")
    devices = (tablet, phone, mia_tablet, mia_phone)
    assert [device.get(reverse("store:board")).status_code for device in devices] == [200, 200, 200, 200]
    assert [_session_cached(device) for device in devices] == [True, True, True, True]

    ended = end_sessions_of(ari)

    assert ended == 2
    assert list(Session.objects.values_list("user_id", flat=True)) == [manager.pk, manager.pk]
    assert [_session_cached(device) for device in devices] == [False, False, True, True]
    for device in (tablet, phone):
        board = device.get(reverse("store:board"))
        assert (board.status_code, board["Location"]) == (302, f"{reverse('login')}?next={reverse('store:board')}")
    assert [device.get(reverse("store:board")).status_code for device in (mia_tablet, mia_phone)] == [200, 200]


def test_end_sessions_of_empties_the_cache_again_when_the_transaction_commits(
    django_capture_on_commit_callbacks, associate_membership
) -> None:
    tablet = _logged_in("ari")
    assert tablet.get(reverse("store:board")).status_code == 200
    key = tablet.cookies[settings.SESSION_COOKIE_NAME].value
    cached = caches[settings.SESSION_CACHE_ALIAS].get(SessionStore.cache_key_prefix + key)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        end_sessions_of(associate_membership.user)
        # A request of theirs that read the row before the delete committed puts it back in the cache.
        caches[settings.SESSION_CACHE_ALIAS].set(SessionStore.cache_key_prefix + key, cached, 3600)

    assert len(callbacks) == 1
    assert _session_cached(tablet) is False
    assert tablet.get(reverse("store:board")).status_code == 302


def test_end_sessions_of_refuses_an_engine_whose_sessions_do_not_carry_the_user(settings, associate_membership) -> None:
    _logged_in("ari")
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"

    with pytest.raises(ImproperlyConfigured) as refused:
        end_sessions_of(associate_membership.user)

    assert str(refused.value) == (
        "Ending a person's sessions needs SESSION_ENGINE = 'portal.sessions' (sessions that carry the user id),"
        " not 'django.contrib.sessions.backends.cache'."
    )
    assert list(Session.objects.values_list("user_id", flat=True)) == [associate_membership.user_id]


def test_invite_existing_member_of_another_store(client, store, manager) -> None:
    elsewhere = make_store(name="Other Threads")
    person = make_user("lee", email="lee@example.com")
    make_staff(store=elsewhere, role=StaffRole.MANAGER, user=person)
    client.force_login(manager)

    client.post(INVITE, {"email": "lee@example.com", "role": "associate"})

    assert sorted(StoreMembership.objects.filter(user=person).values_list("store__name", "role")) == [
        ("Other Threads", "manager"),
        ("Sole Mates", "associate"),
    ]
    assert Notification.objects.filter(kind="store.added").count() == 1


def test_inviting_someone_already_on_the_team_is_refused(client, store, manager_membership) -> None:
    manager = manager_membership.user
    manager.email = "mia@example.com"
    manager.save()
    client.force_login(manager)

    response = client.post(INVITE, {"email": "MIA@example.com", "role": "associate"}, **HTMX)

    assert response.status_code == 422
    assert "Mia Lee is already on the team; change their role in the list below." in response.content.decode()
    manager_membership.refresh_from_db()
    assert (manager_membership.role, manager_membership.is_active) == (StaffRole.MANAGER, True)


def test_inviting_again_someone_who_never_set_a_password_sends_a_new_link(client, store, manager) -> None:
    # Their first link ran out (72 hours) or got lost; the expired-link page tells them to ask
    # for a new invitation, and a password reset skips accounts without a password.
    client.force_login(manager)
    client.post(INVITE, {"email": "new.hire@example.com", "full_name": "Noa Park", "role": "associate"})

    response = client.post(INVITE, {"email": "New.Hire@example.com", "role": "associate"}, **HTMX)

    assert response.status_code == 200
    assert "Invitation sent to new.hire@example.com." in response.content.decode()
    assert Notification.objects.filter(kind="store.invitation").count() == 2
    membership = StoreMembership.objects.get(user__email="new.hire@example.com")
    assert (membership.role, membership.is_active) == (StaffRole.ASSOCIATE, True)


def test_inviting_again_a_pending_person_with_another_role_changes_it_like_the_role_form(
    client, store, manager
) -> None:
    client.force_login(manager)
    client.post(INVITE, {"email": "new.hire@example.com", "role": "associate"})

    client.post(INVITE, {"email": "new.hire@example.com", "role": "manager"})

    membership = StoreMembership.objects.get(user__email="new.hire@example.com")
    assert membership.role == StaffRole.MANAGER
    assert list(
        StoreEvent.objects.filter(type__in=["store.staff_invited", "store.staff_role_changed"])
        .order_by("pk")
        .values_list("type", flat=True)
    ) == ["store.staff_invited", "store.staff_role_changed", "store.staff_invited"]


def test_inviting_a_deactivated_member_brings_them_back(client, store, manager, associate_membership) -> None:
    associate_membership.user.email = "ari@example.com"
    associate_membership.user.save()
    client.force_login(manager)
    client.post(deactivate_url(associate_membership))

    client.post(INVITE, {"email": "ari@example.com", "role": "associate"})

    associate_membership.refresh_from_db()
    assert associate_membership.is_active is True


def test_manager_who_makes_themself_associate_leaves_the_team_page(client, store, manager_membership) -> None:
    make_staff(store=store, role=StaffRole.MANAGER)
    client.force_login(manager_membership.user)

    response = client.post(role_url(manager_membership), {"role": "associate"}, **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("store:board")
    manager_membership.refresh_from_db()
    assert manager_membership.role == StaffRole.ASSOCIATE
    assert client.get(PAGE).status_code == 403


def test_deactivating_someone_who_also_works_for_another_seller_logs_them_out_here_only(
    store, manager, associate_membership
) -> None:
    ari = associate_membership.user
    elsewhere = make_store(name="Other Seller Store", mall=store.mall)
    make_staff(store=elsewhere, user=ari)
    here, there = _logged_in("ari"), _logged_in("ari")
    for device, working_at in ((here, store), (there, elsewhere)):
        session = device.session
        session[SESSION_STORE_KEY] = working_at.pk
        session.save()
    client = Client()
    client.force_login(manager)

    response = client.post(deactivate_url(associate_membership), {"store": store.pk}, follow=True)

    assert [str(message) for message in response.context["messages"]] == [
        "Ari Diaz is deactivated and logged out at Sole Mates."
    ]
    assert here.get(reverse("store:board")).status_code == 302  # to the log-in page
    board = there.get(reverse("store:board"))
    assert (board.status_code, board.context["current_store"]) == (200, elsewhere)


def test_team_page_does_not_show_when_someone_of_another_seller_last_logged_in(store, manager, associate_membership):
    make_staff(store=make_store(name="Other Seller Store", mall=store.mall), user=associate_membership.user)
    associate_membership.user.last_login = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
    associate_membership.user.save(update_fields=["last_login"])
    manager.last_login = dt.datetime(2026, 11, 21, 18, 0, tzinfo=dt.UTC)
    manager.save(update_fields=["last_login"])
    client = Client()
    client.force_login(manager)

    html = client.get(PAGE).content.decode()

    assert html.count("<dt>Last log-in</dt>") == 1  # Mia's own, not Ari's
    assert "Thu Nov 20" not in html


def test_inviting_again_says_what_changed(store, manager, associate_membership) -> None:
    client = Client()
    client.force_login(manager)

    def invite(email: str, role: str) -> list[str]:
        response = client.post(INVITE, {"store": store.pk, "email": email, "role": role, "full_name": ""}, follow=True)
        return [str(message) for message in response.context["messages"]]

    first = invite("kim@example.com", StaffRole.ASSOCIATE)
    again_as_manager = invite("kim@example.com", StaffRole.MANAGER)
    StoreMembership.objects.filter(pk=associate_membership.pk).update(is_active=False)
    associate_membership.user.email = "ari@example.com"
    associate_membership.user.save(update_fields=["email"])
    back = invite("ari@example.com", StaffRole.ASSOCIATE)

    assert first == ["Invitation sent to kim@example.com."]
    assert again_as_manager == ["New invitation sent to kim@example.com, now as store manager."]
    assert back == ["ari@example.com is back on the team as associate; an email tells them."]
