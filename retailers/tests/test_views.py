import datetime as dt
import re

import pytest
from django.urls import reverse

from portal.tests.factories import make_mall, make_staff, make_store
from retailers.access import SESSION_STORE_KEY
from retailers.models import StaffRole, Store, StoreEvent, StoreHours, StoreStatus

pytestmark = pytest.mark.django_db

SETTINGS_URL = reverse("store:store-settings")
PAUSE_URL = reverse("store:store-pause")
RESUME_URL = reverse("store:store-resume")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def store() -> Store:
    return make_store(
        name="Sole Mates", unit="L1-120", mall=make_mall(name="Chandler Fashion Center", time_zone="America/Phoenix")
    )


@pytest.fixture
def manager(store):
    return make_staff(store=store, role=StaffRole.MANAGER).user


@pytest.fixture
def associate(store):
    return make_staff(store=store, role=StaffRole.ASSOCIATE).user


@pytest.fixture
def other_store() -> Store:
    return make_store(name="Other Threads", unit="L2-220")


@pytest.fixture
def other_manager(other_store):
    return make_staff(store=other_store, role=StaffRole.MANAGER).user


def _valid_post(**overrides) -> dict[str, str]:
    data = {
        "same_day_cutoff": "16:30",
        "prep_sla_minutes": "45",
        "hourly_capacity": "12",
        "pickup_instructions": "Ring the bell at the back counter.",
    }
    for day in range(7):
        data[f"day_{day}_opens"] = "10:00"
        data[f"day_{day}_closes"] = "21:00"
    data["day_6_closed"] = "on"
    data["day_6_opens"] = ""
    data["day_6_closes"] = ""
    data["day_4_closes"] = "01:00"
    data.update(overrides)
    return data


def _store_snapshot(store: Store) -> tuple:
    store.refresh_from_db()
    hours = list(StoreHours.objects.filter(store=store).values_list("weekday", "opens_at", "closes_at"))
    return (store.same_day_cutoff, store.prep_sla_minutes, store.hourly_capacity, store.pickup_instructions, hours)


def test_store_settings_manager_gets_form_with_current_values(client, store, manager):
    client.force_login(manager)

    response = client.get(SETTINGS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Sole Mates" in html
    assert 'name="prep_sla_minutes" value="30"' in html
    assert 'name="same_day_cutoff" value="17:00"' in html
    assert 'name="day_0_opens" value="00:00"' in html
    assert "Pause same-day" in html


def test_store_settings_associate_sees_settings_read_only(client, store, associate):
    client.force_login(associate)

    response = client.get(SETTINGS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Only a store manager can change these." in html
    assert "Open around the clock" in html
    assert 'name="prep_sla_minutes"' not in html
    assert "Pause same-day" not in html


def test_store_settings_anonymous_is_sent_to_login(client, store):
    response = client.get(SETTINGS_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={SETTINGS_URL}"


def test_store_settings_manager_post_saves_hours_and_records_event(client, store, manager):
    client.force_login(manager)

    response = client.post(SETTINGS_URL, _valid_post())

    assert response.status_code == 302
    assert response["Location"] == SETTINGS_URL
    store.refresh_from_db()
    assert store.same_day_cutoff == dt.time(16, 30)
    assert store.prep_sla_minutes == 45
    assert store.pickup_instructions == "Ring the bell at the back counter."
    hours = list(StoreHours.objects.filter(store=store).values_list("weekday", "opens_at", "closes_at"))
    assert hours == [
        (0, dt.time(10), dt.time(21)),
        (1, dt.time(10), dt.time(21)),
        (2, dt.time(10), dt.time(21)),
        (3, dt.time(10), dt.time(21)),
        (4, dt.time(10), dt.time(1)),
        (5, dt.time(10), dt.time(21)),
    ]
    event = StoreEvent.objects.get(store=store)
    assert (event.type, event.actor, event.data["prep_sla_minutes"], event.data["hours.6"]) == (
        "store.settings_changed",
        manager,
        "45",
        "closed",
    )
    page = client.get(SETTINGS_URL).content.decode()
    assert "Settings saved." in page
    assert "Friday: 10:00–01:00" in page
    assert "Sunday: closed" in page


def test_store_settings_associate_post_is_403_and_changes_nothing(client, store, associate):
    client.force_login(associate)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post())

    assert response.status_code == 403
    assert _store_snapshot(store) == before
    assert StoreEvent.objects.count() == 0


@pytest.mark.parametrize("value", ["4", "241", "abc", ""])
def test_store_settings_prep_sla_out_of_range_shows_message_and_changes_nothing(client, store, manager, value):
    client.force_login(manager)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post(prep_sla_minutes=value))

    assert response.status_code == 200
    assert "Enter a prep time between 5 and 240 minutes." in response.content.decode()
    assert "Nothing was saved: correct the fields marked below." in response.content.decode()
    assert _store_snapshot(store) == before
    assert StoreEvent.objects.count() == 0


def test_store_settings_open_day_without_times_shows_message_per_field(client, store, manager):
    client.force_login(manager)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post(day_2_opens="", day_2_closes="25:00"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter the opening time for Wednesday, or tick Closed." in html
    assert "Enter a time as HH:MM, for example 09:30." in html
    assert 'aria-describedby="id_day_2_opens-error"' in html
    assert _store_snapshot(store) == before
    assert StoreEvent.objects.count() == 0


def test_store_settings_missing_cutoff_shows_message(client, store, manager):
    client.force_login(manager)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post(same_day_cutoff=""))

    assert "Enter the same-day cutoff time." in response.content.decode()
    assert _store_snapshot(store) == before


def test_store_settings_equal_times_mean_around_the_clock(client, store, manager):
    client.force_login(manager)

    client.post(SETTINGS_URL, _valid_post(day_0_opens="00:00", day_0_closes="00:00"))

    client.force_login(make_staff(store=store).user)
    html = client.get(SETTINGS_URL).content.decode()
    assert '<th scope="row">Monday</th><td>Open around the clock</td>' in html
    assert '<th scope="row">Friday</th><td>10:00–01:00 (next day)</td>' in html
    assert '<th scope="row">Sunday</th><td>Closed</td>' in html


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_store_settings_wrong_method_is_405(client, store, manager, method):
    client.force_login(manager)

    response = getattr(client, method)(SETTINGS_URL)

    assert response.status_code == 405


def test_store_settings_htmx_get_returns_fragment(client, store, manager):
    client.force_login(manager)

    response = client.get(SETTINGS_URL, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="store-settings"')
    assert "<html" not in html


def test_store_settings_htmx_post_returns_fragment_with_message(client, store, manager):
    client.force_login(manager)

    response = client.post(SETTINGS_URL, _valid_post(), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="store-settings"')
    assert "Settings saved." in html
    assert 'name="prep_sla_minutes" value="45"' in html


def test_store_settings_other_store_user_only_reaches_own_store(client, store, manager, other_store, other_manager):
    client.force_login(other_manager)
    session = client.session
    session[SESSION_STORE_KEY] = store.pk
    session.save()
    before = _store_snapshot(store)

    page = client.get(SETTINGS_URL).content.decode()
    client.post(SETTINGS_URL, _valid_post(prep_sla_minutes="99"))

    assert "Other Threads" in page
    assert "Sole Mates" not in page
    assert _store_snapshot(store) == before
    other_store.refresh_from_db()
    assert other_store.prep_sla_minutes == 99


def test_store_settings_history_shows_who_when_why_in_mall_time(client, store, manager):
    StoreEvent.objects.create(
        store=store,
        type="store.paused",
        from_status=StoreStatus.LIVE,
        to_status=StoreStatus.PAUSED,
        actor=manager,
        actor_label="Dana Manager",
        at=dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC),
        reason="Fire drill",
    )
    client.force_login(manager)

    html = client.get(SETTINGS_URL).content.decode()

    assert "Mon Nov 23, 4:30 PM MST" in html
    assert "Dana Manager" in html
    assert "Paused same-day" in html
    assert "Fire drill" in html


def test_store_pause_manager_pauses_with_reason_and_event(client, store, manager):
    client.force_login(manager)

    response = client.post(PAUSE_URL, {"reason": "  Short-staffed until 3 pm  "})

    assert response.status_code == 302
    assert response["Location"] == SETTINGS_URL
    store.refresh_from_db()
    assert (store.status, store.paused_reason, store.paused_by) == (
        StoreStatus.PAUSED,
        "Short-staffed until 3 pm",
        manager,
    )
    event = StoreEvent.objects.get(store=store)
    assert (event.type, event.actor, event.reason) == ("store.paused", manager, "Short-staffed until 3 pm")
    page = client.get(SETTINGS_URL).content.decode()
    assert "Same-day is paused. Everyone on the board sees why." in page
    assert "Short-staffed until 3 pm" in page
    assert "Resume same-day" in page


def test_store_pause_blank_reason_shows_message_and_changes_nothing(client, store, manager):
    client.force_login(manager)

    response = client.post(PAUSE_URL, {"reason": "   "})

    assert response.status_code == 200
    assert "Say why same-day is paused; everyone on the board will see it." in response.content.decode()
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    assert StoreEvent.objects.count() == 0


def test_store_pause_refused_when_already_paused_shows_message(client, store, manager):
    Store.objects.filter(pk=store.pk).update(status=StoreStatus.PAUSED, paused_reason="Stocktake")
    client.force_login(manager)

    response = client.post(PAUSE_URL, {"reason": "Again"}, follow=True)

    assert response.status_code == 200
    assert (
        "Sole Mates is paused already: “Stocktake”. Your reason “Again” was not saved; resume, then pause again to "
        "change it." in response.content.decode()
    )
    store.refresh_from_db()
    assert store.paused_reason == "Stocktake"
    assert StoreEvent.objects.count() == 0


def test_store_pause_associate_is_403(client, store, associate):
    client.force_login(associate)

    response = client.post(PAUSE_URL, {"reason": "Lunch"})

    assert response.status_code == 403
    store.refresh_from_db()
    assert store.status == StoreStatus.LIVE
    assert StoreEvent.objects.count() == 0


def test_store_pause_other_store_manager_pauses_only_own_store(client, store, other_store, other_manager):
    client.force_login(other_manager)
    session = client.session
    session[SESSION_STORE_KEY] = store.pk
    session.save()

    client.post(PAUSE_URL, {"reason": "Flood"})

    store.refresh_from_db()
    other_store.refresh_from_db()
    assert (store.status, other_store.status) == (StoreStatus.LIVE, StoreStatus.PAUSED)


def test_store_pause_get_is_405(client, store, manager):
    client.force_login(manager)

    assert client.get(PAUSE_URL).status_code == 405
    assert client.get(RESUME_URL).status_code == 405


def test_store_pause_htmx_returns_fragment_showing_pause(client, store, manager):
    client.force_login(manager)

    response = client.post(PAUSE_URL, {"reason": "Fire drill"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="store-settings"')
    assert "<strong>Paused.</strong> Fire drill" in html


def test_store_resume_manager_resumes_and_records_event(client, store, manager):
    client.force_login(manager)
    client.post(PAUSE_URL, {"reason": "Fire drill"})

    response = client.post(RESUME_URL)

    assert response.status_code == 302
    store.refresh_from_db()
    assert (store.status, store.paused_reason) == (StoreStatus.LIVE, "")
    assert list(StoreEvent.objects.values_list("type", "actor")) == [
        ("store.paused", manager.pk),
        ("store.resumed", manager.pk),
    ]


def test_store_resume_when_not_paused_shows_message(client, store, manager):
    client.force_login(manager)

    response = client.post(RESUME_URL, follow=True)

    assert response.status_code == 200
    assert "Sole Mates is not paused." in response.content.decode()
    assert StoreEvent.objects.count() == 0


def test_store_resume_associate_is_403(client, store, associate):
    Store.objects.filter(pk=store.pk).update(status=StoreStatus.PAUSED, paused_reason="Stocktake")
    client.force_login(associate)

    response = client.post(RESUME_URL)

    assert response.status_code == 403
    store.refresh_from_db()
    assert store.status == StoreStatus.PAUSED


def test_store_settings_page_has_no_inline_styles_or_scripts(client, store, manager):
    client.force_login(manager)

    html = client.get(SETTINGS_URL).content.decode()

    assert "style=" not in html
    assert "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_store_settings_htmx_invalid_post_returns_fragment_with_message(client, store, manager):
    client.force_login(manager)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post(prep_sla_minutes="0"), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="store-settings"')
    assert "Enter a prep time between 5 and 240 minutes." in html
    assert _store_snapshot(store) == before


def test_store_pause_reason_too_long_shows_message_and_changes_nothing(client, store, manager):
    client.force_login(manager)

    response = client.post(PAUSE_URL, {"reason": "x" * 201})

    assert "Keep the reason to 200 characters or fewer." in response.content.decode()
    store.refresh_from_db()
    assert (store.status, store.paused_reason) == (StoreStatus.LIVE, "")
    assert StoreEvent.objects.count() == 0


def test_store_settings_save_from_a_page_loaded_before_another_managers_save_is_refused(client, store, manager):
    second = make_staff(store=store, role=StaffRole.MANAGER).user
    client.force_login(manager)
    shown = re.search(r'name="version" value="([0-9a-f]+)"', client.get(SETTINGS_URL).content.decode()).group(1)
    other = client.__class__()
    other.force_login(second)
    other.get(SETTINGS_URL)
    other.post(SETTINGS_URL, _valid_post(same_day_cutoff="15:00"))

    # The first manager's page still shows 16:30 in the cutoff field and only changed Monday.
    response = client.post(SETTINGS_URL, _valid_post(version=shown, day_0_opens="09:00"))

    store.refresh_from_db()
    html = response.content.decode()
    assert response.status_code == 200
    assert store.same_day_cutoff == dt.time(15, 0)
    assert StoreHours.objects.get(store=store, weekday=0).opens_at == dt.time(10, 0)
    assert "Someone else saved these settings while you were editing: nothing was saved." in html
    assert 'name="same_day_cutoff" value="15:00"' in html
    assert StoreEvent.objects.filter(store=store, type="store.settings_changed").count() == 1


def test_store_settings_manager_sets_hourly_capacity_with_event_and_recompute(client, store, manager):
    from retailers.models import EligibilityRequest, EligibilityRequestKind

    client.force_login(manager)
    EligibilityRequest.objects.all().delete()

    response = client.post(SETTINGS_URL, _valid_post(hourly_capacity="20"))

    assert response.status_code == 302
    store.refresh_from_db()
    assert store.hourly_capacity == 20
    assert StoreEvent.objects.get(store=store).data["hourly_capacity"] == "20"
    assert list(EligibilityRequest.objects.values_list("kind", "object_id")) == [
        (EligibilityRequestKind.STORE, store.pk)
    ]
    assert "hourly capacity (orders an hour): 20" in client.get(SETTINGS_URL).content.decode()


@pytest.mark.parametrize("value", ["0", "501", "many", ""])
def test_store_settings_hourly_capacity_out_of_range_shows_message_and_changes_nothing(client, store, manager, value):
    client.force_login(manager)
    before = _store_snapshot(store)

    response = client.post(SETTINGS_URL, _valid_post(hourly_capacity=value))

    assert response.status_code == 200
    assert "Enter an hourly capacity between 1 and 500 orders." in response.content.decode()
    assert _store_snapshot(store) == before


def test_store_settings_associate_sees_hourly_capacity(client, store, associate):
    client.force_login(associate)

    html = client.get(SETTINGS_URL).content.decode()

    assert "<dt>Hourly capacity</dt><dd>12 orders an hour</dd>" in html
