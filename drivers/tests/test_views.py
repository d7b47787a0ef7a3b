"""Driver pages: the owner gets them, a driver who is not active gets 403 where they write,
another driver gets 404 while the data exists, the wrong method gets 405, htmx gets the
fragment."""

import io
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from drivers import services
from drivers.lifecycle import DriverStatus, OfferStatus
from drivers.models import Answer, Offer, OfferRecipient, RouteStop, StopStatus
from drivers.tests.factories import make_driver, make_ready_order
from orders.delivery import delivery_pin_for
from orders.lifecycle import OrderStatus
from orders.services import order_accept, order_cancel
from portal.tests.factories import make_mall, make_market, make_order, make_store, make_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _client(driver) -> Client:
    client = Client()
    client.force_login(driver.user)
    return client


def _jpeg() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, "JPEG")
    buffer.seek(0)
    buffer.name = "door.jpg"
    return buffer


@pytest.fixture
def world():
    """A mall (Phoenix time), one ready order, two online drivers: `me` (nearest, offered) and
    `other` (also offered), plus `third`, a driver of another market with nothing."""
    mall = make_mall(name="Fashion Show", time_zone="America/Phoenix", parking_instructions="Level P2, bay 7")
    store = make_store(mall=mall, name="Zara", pickup_instructions="Back counter")
    order = make_ready_order(store=store, packages=2, latitude=Decimal("36.150000"), longitude=mall.longitude)
    me = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    other = make_driver(market=mall.market, online=True)
    third = make_driver()
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    return {
        "mall": mall,
        "store": store,
        "order": order,
        "me": me,
        "other": other,
        "third": third,
        "route": route,
        "offer": route.offers.get(),
    }


def _route_poll_url(client: Client, route_id: int) -> str:
    """The address the route page polls, read off the page as the browser would."""
    page = client.get(reverse("driver:route", args=[route_id])).content.decode()
    return re.search(r'data-hx-get="([^"]+\?since=[^"]+)"', page).group(1).replace("&amp;", "&")


def _take(world):
    services.offer_accept(offer=world["offer"], driver=world["me"])
    world["offer"].refresh_from_db()
    return world["offer"]


def _hand_over(world):
    offer = _take(world)
    labels = [package.label_code for package in world["order"].packages.all()]
    services.handoff_confirm_packages(store=world["store"], code=offer.pickup_code, labels=labels, acting_user=None)
    return world["route"].stops.get()


# --- home and offers ----------------------------------------------------------------------------


def test_home_shows_offer_with_pay_stops_and_countdown(world):
    response = _client(world["me"]).get(reverse("driver:home"))

    assert response.status_code == 200
    offer = world["offer"]
    html = response.content.decode()
    assert f"${offer.pay_cents / 100:.2f}" in html
    seconds_left = response.context["offers"][0]["seconds_left"]
    assert 0 < seconds_left <= 60
    assert (
        f'<time datetime="{offer.due_at.isoformat(timespec="seconds")}" data-countdown'
        f' data-seconds-left="{seconds_left}">'
    ) in html
    assert "Pick up at Zara" in html
    assert response.context["offers"][0]["stops"] == 1


def test_home_htmx_gets_offers_fragment(world):
    response = _client(world["me"]).get(reverse("driver:home"), **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="offers"')
    assert "<html" not in html


def test_home_refuses_non_driver():
    client = Client()
    client.force_login(make_user())

    assert client.get(reverse("driver:home")).status_code == 403


def test_home_wrong_method_405(world):
    assert _client(world["me"]).post(reverse("driver:home")).status_code == 405


def test_home_shows_no_offers_to_driver_not_offered(world):
    response = _client(world["third"]).get(reverse("driver:home"))

    assert response.context["offers"] == []


def test_go_online_with_typed_location(world):
    driver = world["third"]
    services.driver_go_offline(driver=driver, acting_user=None)

    response = _client(driver).post(
        reverse("driver:go-online"),
        {"market": driver.home_market.pk, "latitude": "36.1234567", "longitude": "-115.17"},
    )

    assert response.status_code == 302
    driver.refresh_from_db()
    assert (driver.is_online, driver.latitude, driver.longitude) == (True, Decimal("36.123457"), Decimal("-115.17"))


def test_go_online_bad_location_is_form_error(world):
    response = _client(world["third"]).post(
        reverse("driver:go-online"), {"market": world["third"].home_market.pk, "latitude": "123", "longitude": "x"}
    )

    assert response.status_code == 422
    assert response.context["online_form"].errors == {
        "latitude": ["Ensure this value is less than or equal to 90."],
        "longitude": ["Enter a number."],
    }


def test_go_online_refused_for_paused_driver_403(world):
    driver = make_driver(status=DriverStatus.INACTIVE)

    response = _client(driver).post(
        reverse("driver:go-online"), {"market": driver.home_market.pk, "latitude": "36", "longitude": "-115"}
    )

    assert response.status_code == 403


def test_go_offline(world):
    response = _client(world["me"]).post(reverse("driver:go-offline"))

    assert response.status_code == 302
    world["me"].refresh_from_db()
    assert world["me"].is_online is False


def test_offer_accept_redirects_to_route(world):
    response = _client(world["me"]).post(reverse("driver:offer-accept", args=[world["offer"].pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("driver:route", args=[world["route"].pk])
    assert Offer.objects.get(pk=world["offer"].pk).driver == world["me"]


def test_offer_accept_htmx_client_redirect(world):
    response = _client(world["me"]).post(reverse("driver:offer-accept", args=[world["offer"].pk]), **HTMX)

    assert response["HX-Redirect"] == reverse("driver:route", args=[world["route"].pk])


def test_offer_accept_already_taken_409(world):
    _take(world)

    response = _client(world["other"]).post(reverse("driver:offer-accept", args=[world["offer"].pk]), **HTMX)

    assert response.status_code == 409
    assert "already taken" in response.content.decode()


def test_offer_accept_by_driver_not_offered_404(world):
    response = _client(world["third"]).post(reverse("driver:offer-accept", args=[world["offer"].pk]))

    assert response.status_code == 404
    assert Offer.objects.get(pk=world["offer"].pk).status == OfferStatus.OPEN


@pytest.mark.parametrize(
    ("name", "huge"),
    [
        ("driver:offer-accept", 99999999999999999999),
        ("driver:offer-decline", 99999999999999999999),
        ("driver:route-forfeit", 9223372036854775808),
        ("driver:stop-deliver", 99999999999999999999),
    ],
)
def test_driver_actions_on_an_id_beyond_64_bits_answer_404(world, name, huge):
    response = _client(world["me"]).post(reverse(name, args=[huge]))

    assert response.status_code == 404
    assert Offer.objects.get(pk=world["offer"].pk).status == OfferStatus.OPEN


def test_offer_accept_by_get_goes_to_the_offers_and_other_methods_are_405(world):
    url = reverse("driver:offer-accept", args=[world["offer"].pk])

    got = _client(world["me"]).get(url)

    assert (got.status_code, got["Location"]) == (302, reverse("driver:home"))
    assert _client(world["me"]).put(url).status_code == 405
    assert Offer.objects.get(pk=world["offer"].pk).status == OfferStatus.OPEN


def test_offer_accept_by_paused_driver_403(world):
    services.driver_pause(driver=world["other"], acting_user=None, reason="Break")

    response = _client(world["other"]).post(reverse("driver:offer-accept", args=[world["offer"].pk]))

    assert response.status_code == 403


def test_offer_decline_htmx_returns_fragment(world):
    response = _client(world["me"]).post(reverse("driver:offer-decline", args=[world["offer"].pk]), **HTMX)

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="offers"')
    assert OfferRecipient.objects.get(offer=world["offer"], driver=world["me"]).answer == Answer.DECLINED


def test_offer_decline_by_another_driver_404(world):
    response = _client(world["third"]).post(reverse("driver:offer-decline", args=[world["offer"].pk]))

    assert response.status_code == 404


# --- the route ----------------------------------------------------------------------------------


def test_route_an_operator_gave_a_driver_is_on_their_home_and_route_page_with_its_code(world):
    given = services.route_assign(route=world["route"], driver=world["other"], acting_user=None)
    client = _client(world["other"])

    home = client.get(reverse("driver:home")).content.decode()
    route_page = client.get(reverse("driver:route", args=[world["route"].pk]))

    assert reverse("driver:route", args=[world["route"].pk]) in home
    assert route_page.status_code == 200
    assert f'<p class="pickup-digits">{given.pickup_code}</p>' in route_page.content.decode()
    # The driver it was offered to first no longer sees it.
    assert _client(world["me"]).get(reverse("driver:route", args=[world["route"].pk])).status_code == 404


def test_route_page_shows_code_qr_stores_and_drops_in_mall_time(world):
    offer = _take(world)
    order = world["order"]

    response = _client(world["me"]).get(reverse("driver:route", args=[world["route"].pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="pickup-digits">{offer.pickup_code}</p>' in html
    assert 'src="data:image/svg+xml' in html
    assert "Level P2, bay 7" in html
    assert "Back counter" in html
    for package in order.packages.all():
        assert package.label_code in html
    deadline = order.deliver_by.astimezone(world["mall"].tz)
    assert f"Deliver by <strong>{deadline:%-I:%M} {deadline:%p}</strong>" in html
    assert "https://www.google.com/maps/search/?api=1&amp;query=36.150000," in html


def test_route_page_htmx_fragment(world):
    _take(world)

    response = _client(world["me"]).get(reverse("driver:route", args=[world["route"].pk]), **HTMX)

    assert response.content.decode().lstrip().startswith('<div id="route"')


def test_route_page_of_another_driver_404(world):
    _take(world)

    assert _client(world["other"]).get(reverse("driver:route", args=[world["route"].pk])).status_code == 404


def test_route_page_wrong_method_405(world):
    _take(world)

    assert _client(world["me"]).post(reverse("driver:route", args=[world["route"].pk])).status_code == 405


def test_route_forfeit_reoffers(world):
    _take(world)

    response = _client(world["me"]).post(reverse("driver:route-forfeit", args=[world["route"].pk]), {"reason": "Sick"})

    assert response.status_code == 302
    assert list(world["route"].offers.values_list("status", flat=True).order_by("pk")) == ["forfeited", "open"]


def test_route_page_poll_answers_204_until_the_store_hands_over_then_the_updated_route(world):
    _take(world)
    client = _client(world["me"])
    poll = _route_poll_url(client, world["route"].pk)

    unchanged = client.get(poll, **HTMX)
    labels = [package.label_code for package in world["order"].packages.all()]
    services.handoff_confirm_packages(
        store=world["store"], code=world["offer"].pickup_code, labels=labels, acting_user=None
    )
    changed = client.get(poll, **HTMX)

    assert unchanged.status_code == 204
    html = changed.content.decode()
    assert changed.status_code == 200
    assert html.lstrip().startswith('<div id="route"')
    assert "This route was updated: under way." in html
    assert "?since=" not in html  # no more polling once the packages are on board


def test_route_given_back_in_another_tab_takes_the_pages_poll_and_taps_home_with_a_message(world):
    _take(world)
    client = _client(world["me"])
    route_url = reverse("driver:route", args=[world["route"].pk])
    poll = _route_poll_url(client, world["route"].pk)
    client.post(reverse("driver:route-forfeit", args=[world["route"].pk]), {"reason": "Flat tyre"})
    client.get(reverse("driver:home"))  # the give-back's own page read its message

    polled = client.get(poll, **HTMX)
    tapped = client.post(reverse("driver:route-check-in", args=[world["route"].pk, world["store"].pk]), **HTMX)
    home = client.get(reverse("driver:home")).content.decode()
    back_button = client.get(route_url)

    for response in (polled, tapped):
        assert response.status_code == 404
        assert response["HX-Redirect"] == "/driver/"
    assert (
        home.count("That route is no longer yours: it was given back, or an operator passed it to another driver.") == 2
    )
    assert back_button.status_code == 404
    assert "This is not on your driver pages any more" in back_button.content.decode()
    assert "HX-Redirect" not in back_button


def test_route_forfeit_by_another_driver_404(world):
    _take(world)

    assert _client(world["other"]).post(reverse("driver:route-forfeit", args=[world["route"].pk])).status_code == 404


def test_route_forfeit_after_pickup_409(world):
    _hand_over(world)

    response = _client(world["me"]).post(reverse("driver:route-forfeit", args=[world["route"].pk]), **HTMX)

    assert response.status_code == 409
    assert "already picked up" in response.content.decode()


def test_route_check_in(world):
    _take(world)
    url = reverse("driver:route-check-in", args=[world["route"].pk, world["store"].pk])

    response = _client(world["me"]).post(url, **HTMX)

    assert response.status_code == 200
    assert "Checked in at Zara" in response.content.decode()


def test_route_check_in_says_whether_the_wait_is_paid(world):
    _take(world)
    packing_store = make_store(mall=world["mall"], name="Mango")
    packing = make_order(store=packing_store, latitude=Decimal("36.150000"), longitude=world["mall"].longitude)
    order_accept(order=packing, acting_user=None)
    RouteStop.objects.create(
        route=world["route"], order=packing, store=packing_store, sequence=9, eta=timezone.now(), planned_packages=1
    )
    client = _client(world["me"])

    ready = client.post(reverse("driver:route-check-in", args=[world["route"].pk, world["store"].pk]), **HTMX)
    still_packing = client.post(reverse("driver:route-check-in", args=[world["route"].pk, packing_store.pk]), **HTMX)

    assert "Checked in at Zara: show your pickup code at the counter.</" in ready.content.decode()
    assert (
        "Checked in at Mango: show your pickup code at the counter. The store is still packing: your wait past "
        "5 minutes is paid.</"
    ) in still_packing.content.decode()


def test_route_check_in_wrong_store_422(world):
    _take(world)
    other_store = make_store(mall=world["mall"])
    url = reverse("driver:route-check-in", args=[world["route"].pk, other_store.pk])

    assert _client(world["me"]).post(url).status_code == 422


def test_stop_deliver_with_photo(world):
    stop = _hand_over(world)

    response = _client(world["me"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": _jpeg()})

    assert response.status_code == 302
    stop.refresh_from_db()
    world["order"].refresh_from_db()
    assert (stop.status, world["order"].status) == (StopStatus.DELIVERED, OrderStatus.DELIVERED)


def test_stop_deliver_without_photo_is_form_error(world):
    stop = _hand_over(world)

    response = _client(world["me"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {})

    assert response.status_code == 422
    assert response.context["deliver_forms"][stop.pk].errors == {"photo": ["This field is required."]}


def test_stop_deliver_not_an_image_is_form_error(world):
    stop = _hand_over(world)
    fake = io.BytesIO(b"not an image")
    fake.name = "x.jpg"

    response = _client(world["me"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": fake})

    assert response.status_code == 422
    assert list(response.context["deliver_forms"][stop.pk].errors) == ["photo"]


def test_stop_deliver_with_a_photo_of_too_many_pixels_is_form_error(world):
    from PIL import Image

    stop = _hand_over(world)
    huge = io.BytesIO()
    Image.new("1", (8000, 7000)).save(huge, "PNG")  # 56 megapixels in a few kilobytes
    huge.seek(0)
    huge.name = "door.png"

    response = _client(world["me"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": huge})

    assert response.status_code == 422
    assert response.context["deliver_forms"][stop.pk].errors == {
        "photo": ["This photo is too large: take it again with the phone's camera."]
    }
    stop.refresh_from_db()
    assert stop.status != StopStatus.DELIVERED


def test_stop_deliver_requires_pin_when_order_does(world):
    world["order"].__class__.objects.filter(pk=world["order"].pk).update(requires_pin=True)
    stop = _hand_over(world)
    url = reverse("driver:stop-deliver", args=[stop.pk])

    missing = _client(world["me"]).post(url, {"photo": _jpeg()})
    wrong = _client(world["me"]).post(url, {"photo": _jpeg(), "pin": "12a4"})
    right = _client(world["me"]).post(url, {"photo": _jpeg(), "pin": delivery_pin_for(world["order"])})

    assert missing.context["deliver_forms"][stop.pk].errors == {"pin": ["This field is required."]}
    assert wrong.context["deliver_forms"][stop.pk].errors == {"pin": ["The PIN has 4 digits."]}
    assert right.status_code == 302


def test_stop_deliver_by_another_driver_404(world):
    stop = _hand_over(world)

    response = _client(world["other"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": _jpeg()})

    assert response.status_code == 404


def test_stop_deliver_by_paused_driver_403(world):
    stop = _hand_over(world)
    world["me"].__class__.objects.filter(pk=world["me"].pk).update(status=DriverStatus.INACTIVE, is_online=False)

    response = _client(world["me"]).post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": _jpeg()})

    assert response.status_code == 403


def test_stop_deliver_reloaded_by_get_goes_to_its_route_page_for_its_driver_only(world):
    stop = _hand_over(world)
    url = reverse("driver:stop-deliver", args=[stop.pk])

    own = _client(world["me"]).get(url)
    other = _client(world["other"]).get(url)

    assert (own.status_code, own["Location"]) == (302, reverse("driver:route", args=[world["route"].pk]))
    assert (other.status_code, other["Location"]) == (302, reverse("driver:home"))
    stop.refresh_from_db()
    assert stop.status != StopStatus.DELIVERED


def test_stop_undeliverable_starts_return_htmx_fragment(world):
    stop = _hand_over(world)

    response = _client(world["me"]).post(
        reverse("driver:stop-undeliverable", args=[stop.pk]), {"reason": "Gate locked"}, **HTMX
    )

    assert response.status_code == 200
    assert "going back to Zara" in response.content.decode()
    world["order"].refresh_from_db()
    assert world["order"].status == OrderStatus.RETURNING


def test_package_to_bring_back_stays_on_the_drivers_home_until_the_store_confirms_it(world):
    from orders.delivery import order_confirm_returned

    stop = _hand_over(world)
    client = _client(world["me"])
    client.post(reverse("driver:stop-undeliverable", args=[stop.pk]), {"reason": "Gate locked"})
    labels = ", ".join(world["order"].packages.values_list("label_code", flat=True))

    before = client.get(reverse("driver:home")).content.decode()
    order_confirm_returned(order=world["order"].__class__.objects.get(pk=world["order"].pk), acting_user=None)
    after = client.get(reverse("driver:home")).content.decode()

    assert "Bring back to the store" in before
    assert f"Order {world['order'].number}" in before
    assert f": {labels} · why: Gate locked" in before
    assert "Bring back to the store" not in after


def test_stop_undeliverable_needs_reason(world):
    stop = _hand_over(world)

    response = _client(world["me"]).post(reverse("driver:stop-undeliverable", args=[stop.pk]), {"reason": "  "})

    assert response.status_code == 422
    world["order"].refresh_from_db()
    assert world["order"].status == OrderStatus.PICKED_UP


def test_stop_undeliverable_by_another_driver_404(world):
    stop = _hand_over(world)

    response = _client(world["other"]).post(reverse("driver:stop-undeliverable", args=[stop.pk]), {"reason": "x"})

    assert response.status_code == 404


def test_stop_deliver_with_a_pin_of_other_scripts_digits_is_a_form_error(world):
    world["order"].__class__.objects.filter(pk=world["order"].pk).update(requires_pin=True)
    stop = _hand_over(world)
    client = Client(raise_request_exception=False)
    client.force_login(world["me"].user)

    response = client.post(reverse("driver:stop-deliver", args=[stop.pk]), {"photo": _jpeg(), "pin": "١٢٣٤"})

    assert response.status_code == 422
    assert response.context["deliver_forms"][stop.pk].errors == {"pin": ["The PIN has 4 digits."]}
    stop.refresh_from_db()
    assert stop.status == StopStatus.PICKED_UP


def test_route_forfeit_with_a_null_character_in_the_reason_is_an_error_and_keeps_the_route(world):
    _take(world)
    client = Client(raise_request_exception=False)
    client.force_login(world["me"].user)

    response = client.post(reverse("driver:route-forfeit", args=[world["route"].pk]), {"reason": "Flat\x00tyre"})

    assert response.status_code == 422
    assert response.context["error"] == "Reason: Null characters are not allowed."
    assert list(world["route"].offers.values_list("status", flat=True)) == ["accepted"]


def test_offer_accept_tapped_twice_takes_the_driver_to_their_route_both_times(world):
    client = _client(world["me"])
    url = reverse("driver:offer-accept", args=[world["offer"].pk])

    first = client.post(url)
    second = client.post(url)

    route_url = reverse("driver:route", args=[world["route"].pk])
    assert (first.status_code, first["Location"]) == (302, route_url)
    assert (second.status_code, second["Location"]) == (302, route_url)
    assert list(Offer.objects.filter(route=world["route"]).values_list("status", "driver")) == [
        (OfferStatus.ACCEPTED, world["me"].pk)
    ]
    assert world["me"].events.filter(type="driver.offer_accepted").count() == 1


@pytest.fixture
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.usefixtures("_fresh_cache")
def test_stop_deliver_after_five_wrong_pins_refuses_even_the_right_one_for_a_while(world):
    world["order"].__class__.objects.filter(pk=world["order"].pk).update(requires_pin=True)
    stop = _hand_over(world)
    right = delivery_pin_for(world["order"])
    wrong = [pin for pin in ("0000", "1111", "2222", "3333", "4444", "5555") if pin != right][:5]
    client = _client(world["me"])
    url = reverse("driver:stop-deliver", args=[stop.pk])
    answers = [client.post(url, {"photo": _jpeg(), "pin": pin}) for pin in wrong]

    locked = client.post(url, {"photo": _jpeg(), "pin": right})

    # Said at this drop's PIN field, which takes the focus; the photo has to be chosen again.
    assert [answer.context["deliver_forms"][stop.pk].errors["pin"] for answer in answers] == [
        ["That PIN does not match: ask the shopper for the PIN of this order."]
    ] * 5
    html = answers[0].content.decode()
    assert answers[0].context["error"] == "Check the delivery form."
    pin_input = re.search(rf'<input [^>]*id="deliver-{stop.pk}-pin"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in pin_input
    assert f'aria-describedby="deliver-{stop.pk}-pin-error"' in pin_input
    assert "autofocus" in pin_input
    assert (
        f'<p class="field-error" id="deliver-{stop.pk}-pin-error">That PIN does not match: ask the shopper for the '
        "PIN of this order.</p>"
    ) in html
    assert "Choose the photo again: a form sent back with an error cannot keep it." in html
    assert (locked.status_code, locked.context["deliver_forms"][stop.pk].errors["pin"]) == (
        422,
        [
            "Five wrong PINs for this order: wait 15 minutes before trying again, or report that it could "
            "not be delivered."
        ],
    )
    stop.refresh_from_db()
    assert stop.status == StopStatus.PICKED_UP


def test_home_hides_other_offers_once_the_driver_holds_a_route(world):
    mall, me = world["mall"], world["me"]
    second_order = make_ready_order(
        store=make_store(mall=mall, name="Gap"), latitude=Decimal("36.250000"), longitude=mall.longitude
    )
    [second_route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    assert second_route.stops.get().order == second_order
    assert len(_client(me).get(reverse("driver:home")).context["offers"]) == 2
    _take(world)

    response = _client(me).get(reverse("driver:home"))

    assert response.context["offers"] == []
    assert "You are on a route: new offers come once it is finished." in response.content.decode()


def test_stop_deliver_sent_twice_answers_the_second_like_the_first(world):
    stop = _hand_over(world)
    client = _client(world["me"])
    url = reverse("driver:stop-deliver", args=[stop.pk])

    first = client.post(url, {"photo": _jpeg()})
    second = client.post(url, {"photo": _jpeg()}, follow=True)

    assert (first.status_code, first["Location"]) == (302, reverse("driver:route", args=[world["route"].pk]))
    assert second.redirect_chain == [(reverse("driver:route", args=[world["route"].pk]), 302)]
    # The first answer's message, once: the browser showed only the second answer.
    assert [str(message) for message in second.context["messages"]] == [f"Order {world['order'].number} delivered."]
    assert "error" not in second.context
    stop.refresh_from_db()
    assert stop.status == StopStatus.DELIVERED
    assert world["order"].events.filter(to_status=OrderStatus.DELIVERED).count() == 1


def test_stop_undeliverable_sent_twice_answers_the_second_like_the_first(world):
    stop = _hand_over(world)
    client = _client(world["me"])
    url = reverse("driver:stop-undeliverable", args=[stop.pk])

    client.post(url, {"reason": "Gate locked"})
    second = client.post(url, {"reason": "Gate locked"}, follow=True)

    assert second.redirect_chain == [(reverse("driver:route", args=[world["route"].pk]), 302)]
    assert [str(message) for message in second.context["messages"]] == [
        f"Order {world['order'].number} is going back to Zara: return the packages there."
    ]
    assert "error" not in second.context
    assert world["order"].events.filter(to_status=OrderStatus.RETURNING).count() == 1


def test_route_forfeit_sent_twice_answers_the_second_like_the_first(world):
    _take(world)
    client = _client(world["me"])
    url = reverse("driver:route-forfeit", args=[world["route"].pk])

    client.post(url, {"reason": "Sick"})
    second = client.post(url, {"reason": "Sick"}, follow=True)

    assert second.redirect_chain == [(reverse("driver:home"), 302)]
    assert [str(message) for message in second.context["messages"]] == [
        "You gave the route back. It is offered to other drivers."
    ]
    assert list(world["route"].offers.values_list("status", flat=True).order_by("pk")) == ["forfeited", "open"]


def test_offer_decline_sent_twice_answers_the_second_like_the_first(world):
    client = _client(world["me"])
    url = reverse("driver:offer-decline", args=[world["offer"].pk])

    client.post(url)
    second = client.post(url, follow=True)

    assert second.redirect_chain == [(reverse("driver:home"), 302)]
    assert [str(message) for message in second.context["messages"]] == ["Offer declined."]
    assert "error" not in second.context
    third = client.post(url, **HTMX)
    assert third.status_code == 200
    assert '<p class="message message-success">Offer declined.</p>' in third.content.decode()
    assert world["me"].events.filter(type="driver.offer_declined").count() == 1


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (
            DriverStatus.INACTIVE,
            "Your account is paused (reason: Documents under review). You cannot go online or take offers.",
        ),
        (
            DriverStatus.DEACTIVATED,
            "Your account is deactivated (reason: Documents under review). You cannot go online or take offers.",
        ),
    ],
)
def test_home_tells_a_stopped_driver_the_reason_the_operator_gave(status, shown):
    driver = make_driver()
    services.driver_pause(driver=driver, acting_user=None, reason="Documents under review")
    if status == DriverStatus.DEACTIVATED:
        services.driver_deactivate(driver=driver, acting_user=None, reason="Documents under review")

    html = _client(driver).get(reverse("driver:home")).content.decode()

    assert f'<p class="message message-error">{shown}</p>' in html


def test_stop_undeliverable_without_a_reason_shows_the_form_open_with_the_error_at_the_field(world):
    stop = _hand_over(world)

    response = _client(world["me"]).post(reverse("driver:stop-undeliverable", args=[stop.pk]), {"reason": "  "})

    html = response.content.decode()
    assert response.status_code == 422
    assert '<details class="route-problem" open>' in html
    assert f'<p class="field-error" id="reason-{stop.pk}-error">This field is required.</p>' in html
    assert f'aria-invalid="true" aria-describedby="reason-{stop.pk}-error"' in html


def test_route_page_poll_after_an_order_is_cancelled_says_the_route_changed_and_why():
    mall = make_mall(name="Fashion Show", time_zone="America/Phoenix")
    store = make_store(mall=mall, name="Zara")
    kept = make_ready_order(store=store, latitude=Decimal("36.150000"), longitude=mall.longitude)
    cancelled = make_ready_order(store=store, latitude=Decimal("36.151000"), longitude=mall.longitude)
    me = make_driver(market=mall.market, online=True, latitude=mall.latitude, longitude=mall.longitude)
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    services.offer_accept(offer=route.offers.get(), driver=me)
    client = _client(me)
    poll = _route_poll_url(client, route.pk)

    order_cancel(order=cancelled, acting_user=None, reason="Shopper cancelled", actor_label="marketplace")
    services.routes_drop_cancelled_orders(now=timezone.now())
    html = client.get(poll, **HTMX).content.decode()

    odd = client.get(poll.replace("replans=", "replans=" + "9" * 5000), **HTMX)

    assert f"This route changed: order {cancelled.number} was cancelled." in html
    assert odd.status_code == 200  # a count that is no count says only that the route was updated
    assert "This route was updated: assigned." in odd.content.decode()
    assert kept.number in html
    assert cancelled.number not in html.replace(f"order {cancelled.number} was cancelled", "")


def test_offer_and_route_in_a_mall_of_another_zone_than_the_drivers_home_say_whose_time_they_show(world):
    # A Las Vegas driver working a Phoenix mall.
    world["me"].__class__.objects.filter(pk=world["me"].pk).update(
        home_market=make_market(time_zone="America/Los_Angeles")
    )
    client = _client(world["me"])

    home = client.get(reverse("driver:home")).content.decode()
    _take(world)
    route = client.get(reverse("driver:route", args=[world["route"].pk])).content.decode()

    assert "Times on this offer are Fashion Show time (MST)." in home
    assert "Times on this route are Fashion Show time (MST)." in route
