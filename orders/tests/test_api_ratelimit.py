"""The contract's limit: 50 requests a second per key, bursts of 100, then 429 `rate-limited`
with Retry-After. A token bucket: in Redis (one Lua script, the server's clock) and, without
Redis, in the local cache of the one embedded process."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from orders.api.ratelimit import BURST, RATE_PER_SECOND, local_take, redis_take, retry_after_if_limited
from orders.tests.api_helpers import make_api_client, signed

LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit-tests"}}
# A whole second, so that elapsed seconds times the rate are exact in floating point.
T0 = dt.datetime(2026, 11, 23, 18, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def local_cache(settings):
    """The embedded default's cache, whatever REDIS_URL says."""
    settings.CACHES = LOCAL_CACHE
    caches["default"].clear()
    return caches["default"]


@pytest.fixture
def redis_cache():
    backend = caches["default"]
    assert isinstance(backend, RedisCache), "REDIS_URL must point the default cache at Redis"
    return backend


def test_the_contract_numbers():
    assert (RATE_PER_SECOND, BURST) == (50, 100)


# --- the local bucket (embedded default) ----------------------------------------------------------


def test_local_bucket_admits_a_burst_of_100_then_asks_to_wait_1_second(local_cache):
    with time_machine.travel(T0, tick=False):
        answers = [local_take(local_cache, "mk_a") for _ in range(101)]

    assert answers == [None] * 100 + [1]


def test_local_bucket_refills_50_tokens_a_second_up_to_100(local_cache):
    with time_machine.travel(T0, tick=False) as traveller:
        assert [local_take(local_cache, "mk_a") for _ in range(101)] == [None] * 100 + [1]

        traveller.shift(dt.timedelta(seconds=1))
        after_one_second = [local_take(local_cache, "mk_a") for _ in range(51)]

        traveller.shift(dt.timedelta(seconds=10))
        after_a_long_pause = [local_take(local_cache, "mk_a") for _ in range(101)]

    assert after_one_second == [None] * 50 + [1]
    # The bucket holds at most 100, however long the key was quiet.
    assert after_a_long_pause == [None] * 100 + [1]


def test_local_bucket_gives_one_token_back_every_20_ms(local_cache):
    with time_machine.travel(T0, tick=False) as traveller:
        [local_take(local_cache, "mk_a") for _ in range(100)]
        traveller.shift(dt.timedelta(milliseconds=10))
        half_way = local_take(local_cache, "mk_a")
        traveller.shift(dt.timedelta(milliseconds=11))
        token_back = [local_take(local_cache, "mk_a") for _ in range(2)]

    assert half_way == 1
    assert token_back == [None, 1]


def test_local_buckets_of_two_keys_are_separate(local_cache):
    with time_machine.travel(T0, tick=False):
        first = [local_take(local_cache, "mk_a") for _ in range(101)]
        second = [local_take(local_cache, "mk_b") for _ in range(101)]

    assert first == [None] * 100 + [1]
    assert second == [None] * 100 + [1]


@pytest.mark.django_db
def test_api_answers_the_101st_request_of_a_burst_with_429_rate_limited(local_cache):
    issued = make_api_client()

    with time_machine.travel(T0, tick=False):
        statuses = [signed(issued, "GET", "/api/v1/events").status_code for _ in range(100)]
        limited = signed(issued, "GET", "/api/v1/events")

    assert statuses == [200] * 100
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert limited["Retry-After"] == "1"
    assert limited.json() == {
        "type": "https://mallrun.example/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "More than 50 requests a second: retry in 1 s.",
    }


@pytest.mark.django_db
def test_api_limits_each_key_on_its_own_and_lets_a_limited_key_go_on_after_the_refill(local_cache):
    limited, other = make_api_client("limited"), make_api_client("other")

    with time_machine.travel(T0, tick=False) as traveller:
        [signed(limited, "GET", "/api/v1/events") for _ in range(100)]
        limited_answer = signed(limited, "GET", "/api/v1/events").status_code
        other_answer = signed(other, "GET", "/api/v1/events").status_code
        traveller.shift(dt.timedelta(seconds=1))
        after_refill = signed(limited, "GET", "/api/v1/events").status_code

    assert (limited_answer, other_answer, after_refill) == (429, 200, 200)


@pytest.mark.django_db
def test_unsigned_requests_take_no_token(local_cache):
    issued = make_api_client()

    with time_machine.travel(T0, tick=False):
        rejected = [signed(issued, "GET", "/api/v1/events", secret="wrong").status_code for _ in range(150)]
        admitted = signed(issued, "GET", "/api/v1/events").status_code
        # Read at T0 too: the entry expires a few seconds after T0, whatever the real clock says.
        tokens = local_cache.get(f"api-rate:{issued.client.key_id}")[0]

    assert set(rejected) == {401}
    assert admitted == 200
    assert tokens == BURST - 1


# --- the Redis bucket (production): the script driven with explicit times ----------------------


@pytest.mark.redis
def test_redis_bucket_admits_a_burst_of_100_then_asks_to_wait_1_second(redis_cache):
    redis_cache.delete("api-rate:mk_r1")
    now = 1_800_000_000.0

    answers = [redis_take(redis_cache, "mk_r1", now=now) for _ in range(101)]

    assert answers == [None] * 100 + [1]


@pytest.mark.redis
def test_redis_bucket_refills_50_tokens_a_second_up_to_100(redis_cache):
    redis_cache.delete("api-rate:mk_r2")
    now = 1_800_000_000.0
    [redis_take(redis_cache, "mk_r2", now=now) for _ in range(100)]

    half_token = redis_take(redis_cache, "mk_r2", now=now + 0.01)
    after_one_second = [redis_take(redis_cache, "mk_r2", now=now + 1) for _ in range(51)]
    after_a_long_pause = [redis_take(redis_cache, "mk_r2", now=now + 60) for _ in range(101)]

    assert half_token == 1
    assert after_one_second == [None] * 50 + [1]
    assert after_a_long_pause == [None] * 100 + [1]


@pytest.mark.redis
def test_redis_buckets_of_two_keys_are_separate(redis_cache):
    redis_cache.delete_many(["api-rate:mk_r3", "api-rate:mk_r4"])
    now = 1_800_000_000.0

    first = [redis_take(redis_cache, "mk_r3", now=now) for _ in range(101)]
    second = [redis_take(redis_cache, "mk_r4", now=now) for _ in range(101)]

    assert first == [None] * 100 + [1]
    assert second == [None] * 100 + [1]


@pytest.mark.redis
def test_redis_bucket_on_the_servers_clock_refuses_the_101st_of_a_burst(redis_cache):
    """The production path (TIME inside the script): 101 calls sent in one MULTI run back to back
    on the server, far quicker than the 20 ms a token takes to come back."""
    from orders.api import ratelimit

    redis_cache.delete_many(["api-rate:mk_r5", "api-rate:mk_r5-warm"])
    retry_after_if_limited("mk_r5-warm")  # registers the script with the server
    key = redis_cache.make_and_validate_key("api-rate:mk_r5")
    client = redis_cache._cache.get_client(key, write=True)
    pipeline = client.pipeline(transaction=True)
    for _ in range(101):
        ratelimit._script(keys=[key], args=[RATE_PER_SECOND, BURST, ratelimit.IDLE_EXPIRY_SECONDS], client=pipeline)

    answers = [int(admitted) for admitted, _wait in pipeline.execute()]

    assert answers == [1] * 100 + [0]
    assert 0 < client.ttl(key) <= ratelimit.IDLE_EXPIRY_SECONDS


@pytest.mark.redis
@pytest.mark.django_db
def test_each_api_request_costs_one_redis_round_trip(redis_cache, monkeypatch):
    from redis.connection import Connection

    issued = make_api_client()
    signed(issued, "GET", "/api/v1/events")  # the script is loaded once per process
    sent = []
    original = Connection.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(b"".join(command) if isinstance(command, list) else command)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counting)

    response = signed(issued, "GET", "/api/v1/events")

    assert response.status_code == 200
    assert len(sent) == 1
    assert b"EVALSHA" in sent[0]


def test_openapi_document_gives_every_operation_a_429_problem_with_retry_after():
    from django.test import Client

    document = Client().get("/api/v1/openapi.json").json()

    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert len(operations) == 5
    for operation in operations:
        limited = operation["responses"]["429"]
        assert list(limited["content"]) == ["application/problem+json"]
        assert limited["headers"] == {
            "Retry-After": {
                "description": "Whole seconds until the key's token bucket holds a token again (at least 1).",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
