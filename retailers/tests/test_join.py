"""The public store application page /join/: what a valid application writes and emails, a
message for every bad field (never a 500, never a write), the honeypot and the rate limit."""

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from portal.notifications import services as outbox
from portal.notifications.models import Notification
from portal.tests.factories import make_mall, make_market, make_user
from retailers.models import ApplicationStatus, StaffRole, Store, StoreApplication, StoreMembership, StoreStatus

START = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def mall():
    return make_mall(name="Fashion Show", market=make_market(name="Las Vegas"))


def valid_post(the_mall, **overrides) -> dict:
    data = {
        "marketplace_seller_id": "A1B2C3D4E5",
        "seller_name": "Sunset Retail LLC",
        "store_name": "Sunset Shoes",
        "mall": str(the_mall.pk),
        "unit": "L2-214",
        "contact_name": "Pat Lee",
        "email": "pat@example.com",
        "phone": "(702) 555-0134",
        "categories": ["footwear", "accessories"],
        "estimated_daily_orders": "25",
        "website": "",
    }
    for day in range(7):
        data[f"day_{day}_opens"] = "10:00"
        data[f"day_{day}_closes"] = "21:00"
    data["day_4_closes"] = "01:30"  # Friday: closes after midnight
    data["day_6_closed"] = "on"  # Sunday closed
    data["day_6_opens"] = data["day_6_closes"] = ""
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_join_get_shows_the_form_with_the_program_malls(client, mall):
    other = make_mall(name="Chandler Fashion Center", market=make_market(name="Chandler"))

    response = client.get("/join/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<option value="{mall.pk}">Fashion Show (Las Vegas)</option>' in html
    assert f'<option value="{other.pk}">Chandler Fashion Center (Chandler)</option>' in html
    assert 'value="footwear"' in html
    assert "<legend>Friday</legend>" in html


@pytest.mark.django_db
def test_join_valid_application_is_saved_and_confirmed_by_email(client, mall, mailoutbox):
    # The done page is read at the same frozen START: on the real clock, once the session made at
    # START has expired (SESSION_COOKIE_AGE later), the application number would be gone.
    with time_machine.travel(START, tick=False):
        response = client.post("/join/", valid_post(mall))
        done = client.get("/join/done/")

    assert response.status_code == 302
    assert response.url == "/join/done/"
    application = StoreApplication.objects.get()
    assert (
        application.marketplace_seller_id,
        application.seller_name,
        application.store_name,
        application.mall,
        application.unit,
        application.contact_name,
        application.email,
        application.phone,
        application.categories,
        application.estimated_daily_orders,
        application.status,
        application.created_at,
    ) == (
        "A1B2C3D4E5",
        "Sunset Retail LLC",
        "Sunset Shoes",
        mall,
        "L2-214",
        "Pat Lee",
        "pat@example.com",
        "(702) 555-0134",
        ["footwear", "accessories"],
        25,
        ApplicationStatus.APPLIED,
        START,
    )
    assert application.hours == {
        "0": ["10:00", "21:00"],
        "1": ["10:00", "21:00"],
        "2": ["10:00", "21:00"],
        "3": ["10:00", "21:00"],
        "4": ["10:00", "01:30"],
        "5": ["10:00", "21:00"],
        "6": None,
    }
    assert application.hour_spans()[4] == (dt.time(10, 0), dt.time(1, 30))

    assert f"Your application number is <strong>A-{application.pk}</strong>." in done.content.decode()

    assert outbox.send_due(now=START + dt.timedelta(minutes=1)) == 1
    [message] = mail.outbox
    assert message.to == ["pat@example.com"]
    assert message.subject == "We received your application for Sunset Shoes"
    assert f"Application number: A-{application.pk}" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert "<strong>Sunset Shoes</strong> (Fashion Show, unit L2-214)" in message.alternatives[0][0]


@pytest.mark.django_db
def test_join_htmx_valid_application_redirects_the_client(client, mall):
    response = client.post("/join/", valid_post(mall), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/join/done/"
    assert StoreApplication.objects.count() == 1


@pytest.mark.django_db
def test_join_htmx_invalid_application_returns_the_form_fragment(client, mall):
    response = client.post("/join/", valid_post(mall, email="nope"), headers={"HX-Request": "true"})

    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="join-form"')
    assert "Enter a valid email address, like name@example.com." in html
    assert StoreApplication.objects.count() == 0


@pytest.mark.django_db
def test_join_empty_post_names_every_missing_field_and_writes_nothing(client, mall):
    response = client.post("/join/", {})

    assert response.status_code == 422
    html = response.content.decode()
    for message in [
        "Enter your marketplace seller id.",
        "Enter the business name of your seller account.",
        "Enter the store&#x27;s name as shoppers see it.",
        "Choose the mall your store is in.",
        "Enter the store&#x27;s unit number inside the mall.",
        "Enter your name.",
        "Enter your email address.",
        "Enter a phone number we can call about the application.",
        "Choose at least one category the store sells.",
        "Enter a whole number of orders per day between 1 and 5000.",
        "Enter the opening time for Monday, or tick Closed.",
        "Enter the closing time for Sunday, or tick Closed.",
    ]:
        assert message in html, message
    assert 'aria-invalid="true"' in html
    assert (StoreApplication.objects.count(), Notification.objects.count()) == (0, 0)


CONTROL = "Remove the control characters (such as line breaks or tabs) from this field."
LONG_EMAIL = "Keep the email address to 150 characters or fewer: it becomes your login name."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"marketplace_seller_id": "x" * 41}, "Keep this to 40 characters or fewer."),
        ({"marketplace_seller_id": "A1 B2"}, "A seller id has 2 to 40 letters, digits, dashes or underscores"),
        ({"seller_name": "y" * 121}, "Keep this to 120 characters or fewer."),
        ({"store_name": "z" * 151}, "Keep this to 150 characters or fewer."),
        ({"store_name": "Shoes\x00Store"}, CONTROL),
        ({"store_name": "Shoes\nStore"}, CONTROL),
        ({"contact_name": "Pat\x1bLee"}, CONTROL),
        ({"contact_name": "Pat\u2028Lee"}, CONTROL),
        ({"seller_name": "\u200b\u200b\u200b"}, CONTROL),
        ({"seller_name": "Sunset \u202eCLL"}, CONTROL),
        ({"store_name": "\ufeffSunset Shoes"}, CONTROL),
        ({"unit": "L2;DROP TABLE"}, "Use letters, digits, spaces and . / # - only, for example L2-214."),
        ({"unit": "u" * 31}, "Keep this to 30 characters or fewer."),
        ({"email": "pat@"}, "Enter a valid email address, like name@example.com."),
        ({"email": "a" * 250 + "@example.com"}, LONG_EMAIL),
        ({"email": "a" * 64 + "@" + ("b" * 60 + ".") * 2 + "example.com"}, LONG_EMAIL),
        ({"email": "pat\x00@example.com"}, CONTROL),
        ({"phone": "call me"}, "Enter a phone number of 10 to 15 digits, for example (702) 555-0134."),
        ({"phone": "555-0134"}, "Enter a phone number of 10 to 15 digits, for example (702) 555-0134."),
        ({"phone": "9" * 25}, "Keep this to 24 characters or fewer."),
        ({"mall": "abc"}, "Choose a mall from the list."),
        ({"mall": "999999"}, "Choose a mall from the list."),
        ({"mall": "9" * 40}, "Choose a mall from the list."),
        ({"mall": "-1"}, "Choose a mall from the list."),
        ({"mall": "1.5"}, "Choose a mall from the list."),
        ({"categories": ["weapons"]}, "Choose categories from the list."),
        ({"categories": []}, "Choose at least one category the store sells."),
        ({"estimated_daily_orders": "lots"}, "Enter a whole number of orders per day between 1 and 5000."),
        ({"estimated_daily_orders": "0"}, "Enter a whole number of orders per day between 1 and 5000."),
        ({"estimated_daily_orders": "9" * 30}, "Enter a whole number of orders per day between 1 and 5000."),
        ({"estimated_daily_orders": "2.5"}, "Enter a whole number of orders per day between 1 and 5000."),
        ({"day_0_opens": "25:99"}, "Enter a time as HH:MM, for example 09:30."),
        ({"day_0_closes": "\x00"}, "Enter a time as HH:MM, for example 09:30."),
        ({"day_2_opens": ""}, "Enter the opening time for Wednesday, or tick Closed."),
    ],
)
def test_join_garbage_in_a_field_is_a_form_error_and_writes_nothing(client, mall, overrides, message):
    response = client.post("/join/", valid_post(mall) | overrides)

    assert response.status_code == 422
    assert message in response.content.decode().replace("&#x27;", "'")
    assert (StoreApplication.objects.count(), Notification.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_join_closed_every_day_is_refused(client, mall):
    data = valid_post(mall)
    for day in range(7):
        data[f"day_{day}_closed"] = "on"

    response = client.post("/join/", data)

    assert response.status_code == 422
    assert "The store must be open on at least one day of the week." in response.content.decode()
    assert StoreApplication.objects.count() == 0


@pytest.mark.django_db
def test_join_honeypot_filled_is_thanked_but_nothing_is_saved_or_sent(client, mall):
    response = client.post("/join/", valid_post(mall, website="http://spam.example"))

    assert response.status_code == 302
    assert response.url == "/join/done/"
    assert (StoreApplication.objects.count(), Notification.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_join_rate_limit_per_address_refuses_with_message_and_writes_nothing(client, mall, settings):
    settings.JOIN_RATE_LIMIT_PER_HOUR = 2
    first = client.post("/join/", valid_post(mall, unit="U-1"))
    second = client.post("/join/", valid_post(mall, unit="U-2"))
    third = client.post("/join/", valid_post(mall, unit="U-3"))
    other_address = client.post("/join/", valid_post(mall, unit="U-4"), REMOTE_ADDR="203.0.113.9")

    assert [first.status_code, second.status_code, third.status_code, other_address.status_code] == [302, 302, 429, 302]
    assert "Too many applications were sent from your network in the last hour. Nothing was saved" in (
        third.content.decode()
    )
    assert sorted(StoreApplication.objects.values_list("unit", flat=True)) == ["U-1", "U-2", "U-4"]
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_join_rate_limit_window_ends_an_hour_after_the_first_application(client, mall, settings):
    # The local-memory cache reads the (frozen) Python clock; Redis keeps its own, which
    # time_machine cannot move, so this test pins the cache backend.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.JOIN_RATE_LIMIT_PER_HOUR = 1
    with time_machine.travel(START, tick=False):
        assert client.post("/join/", valid_post(mall, unit="U-1")).status_code == 302
    with time_machine.travel(START + dt.timedelta(minutes=59), tick=False):
        assert client.post("/join/", valid_post(mall, unit="U-2")).status_code == 429
    with time_machine.travel(START + dt.timedelta(hours=1, seconds=1), tick=False):
        assert client.post("/join/", valid_post(mall, unit="U-3")).status_code == 302

    assert sorted(StoreApplication.objects.values_list("unit", flat=True)) == ["U-1", "U-3"]


@pytest.mark.django_db
def test_join_rate_limit_counts_honeypot_hits(client, mall, settings):
    settings.JOIN_RATE_LIMIT_PER_HOUR = 1
    client.post("/join/", valid_post(mall, website="spam"))

    response = client.post("/join/", valid_post(mall))

    assert response.status_code == 429
    assert StoreApplication.objects.count() == 0


@pytest.mark.django_db
def test_join_invalid_posts_do_not_use_up_the_limit(client, mall, settings):
    settings.JOIN_RATE_LIMIT_PER_HOUR = 1
    for _ in range(3):
        client.post("/join/", valid_post(mall, email="nope"))

    response = client.post("/join/", valid_post(mall))

    assert response.status_code == 302
    assert StoreApplication.objects.count() == 1


@pytest.mark.django_db
def test_join_wrong_method_is_405(client):
    assert client.put("/join/").status_code == 405
    assert client.post("/join/done/").status_code == 405


@pytest.mark.django_db
def test_join_done_without_an_application_thanks_without_a_number(client):
    response = client.get("/join/done/")

    assert response.status_code == 200
    assert "Your application number" not in response.content.decode()


@pytest.mark.django_db
def test_join_to_approval_to_password_end_to_end_over_http(client, mall, mailoutbox, settings):
    settings.PORTAL_BASE_URL = "https://mallrun.example"
    operator_client = Client()
    operator_client.force_login(make_user("olga", is_staff=True, is_superuser=True))

    assert client.post("/join/", valid_post(mall)).status_code == 302
    application = StoreApplication.objects.get()
    approve_url = reverse("admin:retailers_storeapplication_approve", args=[application.pk])
    assert operator_client.post(approve_url, {"reason": ""}).status_code == 302
    outbox.send_due()

    assert sorted(message.subject for message in mail.outbox) == [
        "Set up your Mallrun account for Sunset Shoes",
        "Sunset Shoes is approved for Mallrun same-day delivery",
        "We received your application for Sunset Shoes",
    ]
    invitation = next(message for message in mail.outbox if message.subject.startswith("Set up"))
    link = re.search(r"https://mallrun\.example(/accounts/invite/\S+/)", invitation.body).group(1)
    form_url = client.get(link).url
    landed = client.post(form_url, {"new_password1": "mall-counter-7-blue", "new_password2": "mall-counter-7-blue"})

    store = Store.objects.get()
    assert (store.status, store.name, store.mall) == (StoreStatus.ONBOARDING, "Sunset Shoes", mall)
    assert landed.url.rstrip("/") == "/store/onboarding"
    membership = StoreMembership.objects.get(store=store)
    assert (membership.user.username, membership.role) == ("pat@example.com", StaffRole.MANAGER)
    assert client.session["_auth_user_id"] == str(membership.user.pk)
    assert membership.user.check_password("mall-counter-7-blue") is True


@pytest.mark.django_db
def test_join_undecodable_bytes_and_wrong_content_types_are_form_errors(client, mall):
    raw = client.post(
        "/join/",
        b"store_name=%FF%FE%00&mall=%C0%AF&estimated_daily_orders[]=1",
        content_type="application/x-www-form-urlencoded",
    )
    as_json = client.post("/join/", {"store_name": ["a", "b"]}, content_type="application/json")

    assert raw.status_code == 422
    assert "Choose a mall from the list." in raw.content.decode()
    assert as_json.status_code == 422
    assert StoreApplication.objects.count() == 0


@pytest.mark.django_db
def test_join_too_many_fields_is_a_400_not_a_500(client, mall):
    data = valid_post(mall) | {f"extra_{n}": "x" for n in range(1100)}

    response = client.post("/join/", data)

    assert response.status_code == 400
    assert StoreApplication.objects.count() == 0


@pytest.mark.django_db
def test_join_page_links_to_log_in_for_stores_already_on_mallrun(client):
    html = client.get("/join/").content.decode()

    assert '<p>Already on Mallrun? <a href="/accounts/login/">Log in</a>.</p>' in html
