"""Pay rules, without Django."""

import pytest

from drivers.pay import PayRules, hourly_equivalent_cents, quote, wait_pay_cents

RULES = PayRules()


def test_quote_adds_base_stops_and_miles():
    result = quote(rules=RULES, stops=3, miles=10.0, minutes=30)

    assert result.distance_pay_cents == 300 + 450 + 600
    assert result.floor_cents == 900
    assert result.total_cents == 1350
    assert result.floor_applied is False


def test_quote_never_below_hourly_floor_for_estimated_time():
    result = quote(rules=RULES, stops=1, miles=2.0, minutes=50)

    assert result.distance_pay_cents == 570
    assert result.floor_cents == 1500
    assert result.total_cents == 1500
    assert result.floor_applied is True


def test_quote_floor_rounds_up_to_the_cent():
    assert quote(rules=RULES, stops=0, miles=0, minutes=10.01).floor_cents == 301


def test_quote_reoffer_bump_one_dollar_each():
    assert quote(rules=RULES, stops=3, miles=10.0, minutes=30, reoffers=3).total_cents == 1650


def test_quote_reoffer_bump_capped_at_eight_dollars():
    result = quote(rules=RULES, stops=3, miles=10.0, minutes=30, reoffers=12)

    assert result.bump_cents == 800
    assert result.total_cents == 2150


def test_quote_uses_market_rules():
    rules = PayRules(base_cents=500, per_stop_cents=200, per_mile_cents=100, hourly_floor_cents=2400)

    assert quote(rules=rules, stops=2, miles=1.5, minutes=60).total_cents == 2400
    assert quote(rules=rules, stops=2, miles=30.0, minutes=60).total_cents == 3900


def test_quote_refuses_negative_values():
    with pytest.raises(ValueError):
        quote(rules=RULES, stops=-1, miles=1, minutes=1)


def test_wait_pay_nothing_within_grace():
    assert wait_pay_cents(rules=RULES, waited_minutes=5.9) == 0


def test_wait_pay_each_whole_minute_after_grace():
    assert wait_pay_cents(rules=RULES, waited_minutes=12.5) == 7 * 30


def test_hourly_equivalent_from_total_and_minutes():
    assert hourly_equivalent_cents(total_cents=1350, minutes=30) == 2700
    assert hourly_equivalent_cents(total_cents=1350, minutes=0) == 0
