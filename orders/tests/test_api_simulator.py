import pytest
from django.core.cache import cache
from django.core.management import call_command

from orders.models import Order
from orders.tests.api_helpers import make_world


@pytest.mark.django_db(transaction=True)
def test_simulate_marketplace_sends_demo_orders_through_the_signed_api(live_server, capsys):
    cache.clear()
    world = make_world()

    call_command("simulate_marketplace", base_url=live_server.url, count=2, every=0.01, seed=7)

    orders = list(Order.objects.select_related("api_client"))
    assert [order.api_client.name for order in orders] == ["demo-simulator", "demo-simulator"]
    assert {order.store for order in orders} == {world["store"]}
    assert capsys.readouterr().out.count("simulator: 201 SIM-") == 2


@pytest.mark.django_db(transaction=True)
def test_simulate_marketplace_restart_issues_a_new_secret_and_revokes_the_old(live_server):
    cache.clear()
    make_world()
    call_command("simulate_marketplace", base_url=live_server.url, count=1, every=0.01, seed=1)

    call_command("simulate_marketplace", base_url=live_server.url, count=1, every=0.01, seed=2)

    client = Order.objects.first().api_client
    assert Order.objects.count() == 2
    assert client.secrets.filter(revoked=False).count() == 1
