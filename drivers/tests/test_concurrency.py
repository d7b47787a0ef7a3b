"""Exactly one driver wins a route, on the real database."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from drivers import services
from drivers.models import Answer, MarketPaySettings, Offer, OfferRecipient
from drivers.tests.factories import make_driver, make_ready_order
from portal.errors import ActionRefused
from portal.tests.factories import make_mall, make_store

DRIVERS = 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_offer_accept_concurrent_drivers_one_wins_rest_already_taken():
    mall = make_mall()
    MarketPaySettings.objects.create(market=mall.market, first_wave_size=DRIVERS)
    make_ready_order(store=make_store(mall=mall), latitude=Decimal("36.150000"), longitude=mall.longitude)
    drivers = [make_driver(market=mall.market, online=True) for _ in range(DRIVERS)]
    [route] = services.routes_build_for_mall(mall=mall, now=timezone.now(), time_limit_s=0.1)
    offer = route.offers.get()
    assert OfferRecipient.objects.filter(offer=offer, answer=Answer.PENDING).count() == DRIVERS
    barrier = threading.Barrier(DRIVERS)
    results: dict[int, str] = {}

    def accept(driver):
        try:
            barrier.wait()
            services.offer_accept(offer=Offer.objects.get(pk=offer.pk), driver=driver)
            results[driver.pk] = "won"
        except ActionRefused as refused:
            results[driver.pk] = refused.message
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(driver,)) for driver in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = sorted(results.values())
    assert outcomes.count("won") == 1
    assert outcomes.count("Sorry, this route was already taken by another driver.") == DRIVERS - 1
    winner = next(pk for pk, outcome in results.items() if outcome == "won")
    offer.refresh_from_db()
    assert offer.driver_id == winner
    assert Offer.objects.filter(route=route, status="accepted").count() == 1
    answers = sorted(OfferRecipient.objects.filter(offer=offer).values_list("answer", flat=True))
    assert answers.count(Answer.ACCEPTED) == 1
    assert answers.count(Answer.ACCEPTED) + answers.count(Answer.TAKEN) + answers.count(Answer.LATE) == DRIVERS
