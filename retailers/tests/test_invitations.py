"""Staff invitations: who gets which email, the membership they get, and the one-time,
72-hour set-password link built on Django's token machinery."""

import datetime as dt
import re
import threading

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.db import connection
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal.errors import ActionRefused
from portal.notifications import services as outbox
from portal.notifications.models import Notification
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user
from retailers.access import SESSION_STORE_KEY
from retailers.invitations import invitation_path, invitation_token_generator, invite_to_store
from retailers.models import StaffRole, StoreEvent, StoreMembership, StoreStatus

User = get_user_model()
NEW_PASSWORD = "mall-counter-7-blue"
START = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def store():
    return make_store(name="Sunset Shoes", status=StoreStatus.LIVE)


@pytest.fixture
def inviter():
    return make_user("rita", first_name="Rita", last_name="Ramos")


def _link(row: Notification) -> str:
    match = re.search(r"http://testserver(/accounts/invite/[^/\s]+/[^/\s]+/)", row.body)
    assert match, row.body
    return match.group(1)


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.PORTAL_BASE_URL = "http://testserver"


@pytest.mark.django_db
def test_invite_to_store_new_person_gets_account_membership_event_and_set_password_email(store, inviter):
    membership = invite_to_store(
        store=store, email="Pat.Lee@Example.COM", role=StaffRole.MANAGER, invited_by=inviter, full_name="Pat  Lee"
    )

    user = membership.user
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "Pat.Lee@example.com",
        "Pat.Lee@example.com",
        "Pat",
        "Lee",
    )
    assert user.has_usable_password() is False
    assert (membership.store, membership.role, membership.is_active) == (store, StaffRole.MANAGER, True)
    event = StoreEvent.objects.get(store=store)
    assert (event.type, event.actor, event.actor_label, event.data) == (
        "store.staff_invited",
        inviter,
        "Rita Ramos",
        {"email": "Pat.Lee@example.com", "role": "manager", "user_id": user.pk, "new_account": True},
    )
    row = Notification.objects.get()
    assert (row.kind, row.channel, row.to, row.user, row.subject) == (
        "store.invitation",
        "email",
        "Pat.Lee@example.com",
        user,
        "Set up your Mallrun account for Sunset Shoes",
    )
    assert f"Rita Ramos invited you to Sunset Shoes ({store.mall.name}) on Mallrun as store manager." in row.body
    assert "The link works once and for 72 hours." in row.body
    link = _link(row)
    assert f'<a href="http://testserver{link}">Choose your password</a>' in row.html_body


@pytest.mark.django_db
def test_invite_to_store_email_goes_out_with_text_and_html_parts(store, inviter, mailoutbox):
    invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)

    assert outbox.send_due() == 1

    [message] = mail.outbox
    assert message.to == ["pat@example.com"]
    assert message.subject == "Set up your Mallrun account for Sunset Shoes"
    assert "as associate." in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<strong>Sunset Shoes</strong>" in html


@pytest.mark.django_db
def test_invite_to_store_person_with_password_gets_added_email_with_login_link(store, inviter):
    person = make_user("sam", email="sam@example.com", first_name="Sam")

    membership = invite_to_store(store=store, email="SAM@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)

    assert membership.user == person
    assert User.objects.filter(email__iexact="sam@example.com").count() == 1
    row = Notification.objects.get()
    assert (row.kind, row.to, row.subject) == (
        "store.added",
        "sam@example.com",
        "You were added to Sunset Shoes on Mallrun",
    )
    assert "http://testserver/accounts/login/?next=/" in row.body
    assert "/accounts/invite/" not in row.body
    assert '<a href="http://testserver/accounts/login/?next=/">Log in</a>' in row.html_body


@pytest.mark.django_db
def test_invite_to_store_reactivates_membership_with_new_role(store, inviter):
    old = make_staff(store=store, role=StaffRole.ASSOCIATE, user=make_user(email="ana@example.com"))
    StoreMembership.objects.filter(pk=old.pk).update(is_active=False)

    membership = invite_to_store(store=store, email="ana@example.com", role=StaffRole.MANAGER, invited_by=inviter)

    assert membership.pk == old.pk
    old.refresh_from_db()
    assert (old.role, old.is_active) == (StaffRole.MANAGER, True)
    assert StoreMembership.objects.count() == 1


@pytest.mark.django_db
def test_invite_to_store_same_person_to_a_second_store_keeps_both(store, inviter):
    second = make_store(name="Sunset Shoes Outlet")

    first = invite_to_store(store=store, email="kim@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    other = invite_to_store(store=second, email="kim@example.com", role=StaffRole.MANAGER, invited_by=inviter)

    assert first.user == other.user
    assert sorted(StoreMembership.objects.values_list("store__name", "role")) == [
        ("Sunset Shoes", "associate"),
        ("Sunset Shoes Outlet", "manager"),
    ]
    assert Notification.objects.count() == 2


LONG_EMAIL_MESSAGE = "Keep the email address to 150 characters or fewer: it is the person's login name."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("not-an-email", StaffRole.ASSOCIATE, "Enter a valid email address, like name@example.com."),
        ("a\x00b@example.com", StaffRole.ASSOCIATE, "Enter a valid email address, like name@example.com."),
        ("x" * 250 + "@example.com", StaffRole.ASSOCIATE, LONG_EMAIL_MESSAGE),
        # Valid, but longer than a login name (User.username) can be: refused, not a database error.
        ("a" * 64 + "@" + ("b" * 60 + ".") * 2 + "example.com", StaffRole.ASSOCIATE, LONG_EMAIL_MESSAGE),
        ("ok@example.com", "owner", "Choose a role: associate or store manager."),
    ],
)
def test_invite_to_store_bad_input_is_refused_and_writes_nothing(store, inviter, email, role, message):
    users_before = User.objects.count()

    with pytest.raises(ActionRefused) as refused:
        invite_to_store(store=store, email=email, role=role, invited_by=inviter)

    assert refused.value.message == message
    assert (User.objects.count(), StoreMembership.objects.count(), Notification.objects.count()) == (users_before, 0, 0)
    assert StoreEvent.objects.count() == 0


@pytest.mark.django_db
def test_invite_to_store_disabled_account_is_refused(store, inviter):
    make_user("gone", email="gone@example.com", is_active=False)

    with pytest.raises(ActionRefused) as refused:
        invite_to_store(store=store, email="gone@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)

    assert refused.value.message == "The account gone is disabled; ask a program operator to enable it first."
    assert (StoreMembership.objects.count(), Notification.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_invite_link_sets_password_logs_in_and_lands_on_the_board(client, store, inviter):
    membership = invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    link = _link(Notification.objects.get())

    first = client.get(link)
    assert first.status_code == 302
    assert first.url == link.rsplit("/", 2)[0] + "/set-password/"
    form_page = client.get(first.url)
    assert form_page.status_code == 200
    assert "Your username is <strong>pat@example.com</strong>" in form_page.content.decode()

    done = client.post(first.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert done.url == "/store/"
    user = User.objects.get(pk=membership.user_id)
    assert user.check_password(NEW_PASSWORD) is True
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_invite_link_for_onboarding_store_lands_on_the_checklist(client, inviter):
    store = make_store(name="New Store", status=StoreStatus.ONBOARDING)
    invite_to_store(store=store, email="mgr@example.com", role=StaffRole.MANAGER, invited_by=inviter)
    link = _link(Notification.objects.get())

    form_url = client.get(link).url
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert done.url.rstrip("/") == "/store/onboarding"
    assert client.session[SESSION_STORE_KEY] == store.pk


@pytest.mark.django_db
def test_invite_link_weak_password_shows_validator_message_and_sets_nothing(client, store, inviter):
    membership = invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    form_url = client.get(_link(Notification.objects.get())).url

    response = client.post(form_url, {"new_password1": "password", "new_password2": "password"})

    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert User.objects.get(pk=membership.user_id).has_usable_password() is False
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_invite_link_works_only_once(client, store, inviter):
    invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    link = _link(Notification.objects.get())
    form_url = client.get(link).url
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    client.logout()

    again = client.get(link)

    assert again.status_code == 200
    assert "This link does not work" in again.content.decode()
    assert User.objects.get(username="pat@example.com").check_password(NEW_PASSWORD) is True


@pytest.mark.django_db
def test_invite_link_is_valid_for_72_hours_and_not_a_second_longer(client, store, inviter):
    with time_machine.travel(START, tick=False):
        membership = invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
        link = _link(Notification.objects.get())
    user = membership.user
    token = link.rstrip("/").rsplit("/", 1)[1]

    with time_machine.travel(START + dt.timedelta(hours=72), tick=False):
        assert invitation_token_generator.check_token(user, token) is True
        assert client.get(link).status_code == 302
    with time_machine.travel(START + dt.timedelta(hours=72, seconds=1), tick=False):
        assert invitation_token_generator.check_token(user, token) is False
        expired = client.get(link)

    assert expired.status_code == 200
    assert "This link does not work" in expired.content.decode()


@pytest.mark.django_db
def test_password_reset_token_is_not_an_invitation_token(client, store, inviter):
    membership = invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    user = membership.user
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))

    response = client.get(f"/accounts/invite/{uidb64}/{default_token_generator.make_token(user)}/")

    assert response.status_code == 200
    assert "This link does not work" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/accounts/invite/garbage/abc-def/",
        "/accounts/invite/MQ/zzzzzzzzzzzzzzzzzzzz-1/",
        "/accounts/invite/%00%01/%00-%00/",
        "/accounts/invite/" + "A" * 5000 + "/1-2/",
        "/accounts/invite/OTk5OTk5OTk5OTk5OTk5OTk5OTk5/1-2/",
        "/accounts/invite/MQ/set-password/",
    ],
)
def test_invite_link_garbage_shows_clear_page_never_500(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert "This link does not work" in response.content.decode()


@pytest.mark.django_db
def test_invitation_path_for_a_user_checks_with_the_generator(store):
    user = make_user(email="x@example.com")
    token = invitation_path(user).rstrip("/").rsplit("/", 1)[1]

    assert invitation_token_generator.check_token(user, token) is True
    user.set_password(PASSWORD + "-changed")
    user.save()
    assert invitation_token_generator.check_token(user, token) is False


@pytest.mark.django_db
def test_invite_set_password_page_rejects_unknown_method(client):
    response = client.put("/accounts/invite/MQ/1-2/")

    assert response.status_code == 405


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_invite_to_store_same_new_person_to_two_stores_at_once_makes_one_account():
    first, second = make_store(name="First"), make_store(name="Second")
    inviter = make_user("rita")
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def invite(store) -> None:
        try:
            barrier.wait()
            invite_to_store(store=store, email="new@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=invite, args=(store,)) for store in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert User.objects.filter(username="new@example.com").count() == 1
    assert sorted(StoreMembership.objects.values_list("store__name", flat=True)) == ["First", "Second"]


@pytest.mark.django_db
def test_invite_set_password_with_a_weak_password_says_so_at_the_password_and_focuses_it(client, store, inviter):
    invite_to_store(store=store, email="pat@example.com", role=StaffRole.ASSOCIATE, invited_by=inviter)
    form_url = client.get(_link(Notification.objects.get())).url

    response = client.post(form_url, {"new_password1": "pat@example.com", "new_password2": "pat@example.com"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<p>Your password was not set: correct the fields below.</p>" in html
    assert '<p class="field-error" id="id_new_password1_error">The password is too similar to the username.</p>' in html
    assert "id_new_password2_error" not in html
    assert re.search(r'<input type="password" name="new_password1"[^>]*autofocus', html)
