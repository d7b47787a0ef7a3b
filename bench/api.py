"""Marketplace API benchmark on PostgreSQL under gunicorn, driven by Debian's wrk (issue 4,
point 10).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mallrun_bench_api .venv/bin/python bench/api.py

In one run, through the same middleware and the same gunicorn:
- signed creates per second (each a new order: placement, stock reservation, events, answer)
  against a floor view that does one INSERT in a transaction, the least a durable intake can do;
- signed replays per second (the same order id and body again: 200 with the current order)
  against a floor view that does one indexed SELECT.
Requests are signed beforehand (wrk's Lua has no HMAC) and spread over 64 keys so the contract's
per-key rate limit is not what is measured. Its last line:
RESULT ratio=<create/insert floor> replay_ratio=<replay/select floor> create_rps=<n>, each the
median over BENCH_ROUNDS rounds (3) of BENCH_SECONDS (5) per measurement, floor and subject
alternating. Creates run from new signed orders (more than the run can send), so none is a replay;
they go to 64 stores (16 sellers in 4 malls) with two lines each, see SELLERS. The database
starts with a history of 50,000 delivered orders (see add_history).
Each round also measures the issue's reference, a minimal intake (two conditional stock updates
and four inserts, one SQL statement each, see reference_minimal_intake), printed before RESULT as its
ratio to the insert floor, and prints the machine's CPU time per request of each measurement,
compared on its own line (floor CPU over subject CPU), and its split between the web server and
PostgreSQL (each process tree's CPU time, recycled workers and closed backends included).
The database is emptied and rebuilt on every run: never point it at real data.
"""

import datetime as dt
import json
import os
import random
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mallrun_bench_api")
os.environ.setdefault("DEBUG", "1")
# The API secrets are encrypted with a key derived from SECRET_KEY: the setup here and the
# served app must share it.
os.environ["SECRET_KEY"] = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop"

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402

from bench.machine import busy_cpu_seconds, parent_pid, tree_cpu_seconds  # noqa: E402

FLOOR_TABLE = "bench_api_floor"
KEYS = 64
DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS, CONNECTIONS = 2, 16
# Orders spread over sellers, malls and listings as a marketplace's orders do over its stores and
# catalogue: order n goes to seller n % SELLERS in mall (n // SELLERS) % MALLS, with two of the
# seller's listings in turn. Sent to one store with one listing, every create would count that
# store's whole hour and wait for the previous create's commit to release the stock row, and the
# bench would measure that one store rather than the intake.
SELLERS, MALLS = 16, 4
SKUS = [f"SA-TEE-{n:03d}" for n in range(100)]
HISTORY = 50_000


@csrf_exempt
@require_POST
def floor_insert(request: HttpRequest) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FLOOR_TABLE} (key, body) VALUES (%s, %s)", [uuid.uuid4().hex, request.body.decode()]
        )  # noqa: S608
    return JsonResponse({"created": True}, status=201)


@require_GET
def floor_select(request: HttpRequest, key: str) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT body FROM {FLOOR_TABLE} WHERE key = %s", [key])  # noqa: S608
        row = cursor.fetchone()
    return HttpResponse(row[0], content_type="application/json")


# (store id, listing id, stock id) of every stock row, read once per process.
_stock_rows: list[tuple[int, int, int]] = []


@csrf_exempt
@require_POST
def reference_minimal_intake(request: HttpRequest) -> HttpResponse:
    """The issue's reference, for comparison only (not in RESULT): a minimal intake, two
    conditional stock updates and four inserts (the order, two lines, one event), one SQL
    statement each in one transaction, with no signature, rate limit, reads, placement or feed.
    Two stock rows of one store taken at random, so requests do not queue on one row's lock."""
    if not _stock_rows:
        from retailers.models import Stock

        _stock_rows.extend(Stock.objects.order_by("store_id", "listing_id").values_list("store_id", "listing_id", "pk"))
    first = random.randrange(0, len(_stock_rows) - 1, 2)
    (store_id, listing_1, stock_1), (_store, listing_2, stock_2) = _stock_rows[first], _stock_rows[first + 1]
    document = json.loads(request.body)
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        for stock_id in (stock_1, stock_2):
            cursor.execute(
                "UPDATE retailers_stock SET reserved = reserved + 1 WHERE id = %s AND on_hand >= reserved + 1",
                [stock_id],
            )
        cursor.execute(
            """INSERT INTO orders_order (marketplace_order_id, store_id, status, placed_at, deliver_by,
                   prep_due_at, customer_name, customer_phone, address_line1, address_line2, city, state,
                   postal_code, delivery_instructions, requires_pin, allows_partial, problem_reason,
                   api_body_sha256, is_training, created_at, updated_at, status_changed_at)
               VALUES (%s, %s, 'received', %s, %s, %s, %s, '', %s, '', %s, %s, %s, '', false, true, '', '',
                   false, %s, %s, %s) RETURNING id""",
            [
                f"MINIMAL-{uuid.uuid4().hex}",
                store_id,
                now,
                now + dt.timedelta(hours=4),
                now + dt.timedelta(minutes=20),
                document["customer"]["name"],
                document["address"]["line1"],
                document["address"]["city"],
                document["address"]["state"],
                document["address"]["postal_code"],
                now,
                now,
                now,
            ],
        )
        order_id = cursor.fetchone()[0]
        for listing_id in (listing_1, listing_2):
            cursor.execute(
                "INSERT INTO orders_orderline (order_id, listing_id, quantity, picked, reserved_quantity,"
                " unit_price_cents) VALUES (%s, %s, 1, 0, 1, 0)",
                [order_id, listing_id],
            )
        cursor.execute(
            "INSERT INTO orders_orderevent (order_id, type, from_status, to_status, actor_label, at, reason, data)"
            " VALUES (%s, 'order.received', '', 'received', 'bench', %s, '', '{}')",
            [order_id, now],
        )
    return JsonResponse({"id": order_id}, status=201)


urlpatterns = [
    path("bench-api/insert", floor_insert),
    path("bench-api/select/<str:key>", floor_select),
    path("bench-api/minimal-intake", reference_minimal_intake),
    path("", include("portal.urls")),
]

if os.environ.get("BENCH_API_SERVE") == "1":
    from django.conf import settings

    settings.ROOT_URLCONF = "bench.api"
    application = get_wsgi_application()


LUA = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  reqs = {}
  local lines, count = {}, tonumber(args[2])
  for line in io.lines(args[1]) do table.insert(lines, line) end
  for n, line in ipairs(lines) do
    -- Each thread sends its own share of the requests; a single request is shared by all.
    if #lines < count or (n - 1) % count == id then
      local method, p, key, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {["Content-Type"] = "application/json"}
      if key ~= "" then
        headers["Mallrun-Key"] = key
        headers["Mallrun-Timestamp"] = ts
        headers["Mallrun-Signature"] = sig
      end
      table.insert(reqs, wrk.format(method, p, headers, body ~= "" and body or nil))
    end
  end
  i = 0
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""


def ensure_database() -> None:
    import psycopg

    db = connection.settings_dict
    dsn = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')


def build_world():
    from django.core.management import call_command

    from orders.api.services import api_client_create
    from portal.tests.factories import make_listing, make_mall, make_seller, make_store
    from retailers.models import Mall, Stock

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, key text UNIQUE NOT NULL, body text)")
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (key, body) VALUES ('replay', %s)", [json.dumps(order_body("X"))])
    from drivers.tests.factories import make_driver

    malls = [make_mall(slug=f"mall-{m}", latitude="36.127300", longitude="-115.170700") for m in range(MALLS)]
    market = malls[0].market
    Mall.objects.filter(pk__in=[mall.pk for mall in malls]).update(market=market)
    make_driver(market=market, online=True)
    stores = []
    for s in range(SELLERS):
        seller = make_seller(marketplace_seller_id=seller_id(s))
        listings = [make_listing(seller=seller, seller_sku=sku) for sku in SKUS]
        for mall in malls:
            # Same-day eligible at any hour under the eligibility rules the intake applies: an
            # around-the-clock store open to the day's last instant, no practical hourly
            # capacity limit, and a driver online in the market.
            store = make_store(seller=seller, mall=mall, same_day_cutoff=dt.time.max, hourly_capacity=2_000_000_000)
            Stock.objects.bulk_create(
                Stock(store=store, listing=listing, on_hand=2_000_000_000) for listing in listings
            )
            stores.append(store)
    clients = [api_client_create(name=f"bench-{n}") for n in range(KEYS)]
    add_history(stores=stores, client=clients[0].client)
    # Vacuumed and with statistics, as a database in service is (autovacuum would get to the
    # history during the first round): the served statements are planned once per database
    # session, with what the planner knows then.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return clients


def add_history(*, stores, client) -> None:
    """HISTORY delivered orders of two days ago, each with its numbered feed event: a database
    in service has its tables' history, and the planner plans for tables of that size (on empty
    tables it picks sequential scans that a growing table then pays for)."""
    from orders.models import FeedEvent, Order

    placed = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    orders = Order.objects.bulk_create(
        (
            Order(
                marketplace_order_id=f"HISTORY-{n:07d}",
                store=stores[n % len(stores)],
                status="delivered",
                placed_at=placed,
                deliver_by=placed + dt.timedelta(hours=4),
                prep_due_at=placed + dt.timedelta(minutes=20),
                customer_name="Jamie D.",
                address_line1="3355 S Las Vegas Blvd",
                city="Las Vegas",
                state="NV",
                postal_code="89109",
                api_client=client,
                status_changed_at=placed,
            )
            for n in range(HISTORY)
        ),
        batch_size=2000,
    )
    FeedEvent.objects.bulk_create(
        (
            FeedEvent(
                seq=n + 1,
                event_id=f"evt_HISTORY{n:07d}",
                client=client,
                order=order,
                type="order.delivered",
                occurred_at=placed,
            )
            for n, order in enumerate(orders)
        ),
        batch_size=2000,
    )


def seller_id(s: int) -> str:
    return f"A2SELLER{s:02d}"


def order_body(order_id: str, n: int = 0) -> dict:
    """Order n of the run (see SELLERS)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "marketplace_order_id": order_id,
        "seller_id": seller_id(n % SELLERS),
        "mall": f"mall-{(n // SELLERS) % MALLS}",
        "placed_at": now.isoformat(),
        "deliver_by": (now + dt.timedelta(hours=4)).isoformat(),
        "customer": {"name": "Jamie D.", "phone": "+17025550123"},
        "address": {
            "line1": "3355 S Las Vegas Blvd",
            "line2": "Apt 1204",
            "city": "Las Vegas",
            "state": "NV",
            "postal_code": "89109",
            "lat": 36.1212,
            "lon": -115.1697,
            "instructions": "Front desk",
        },
        "lines": [
            {"sku": SKUS[(2 * n) % len(SKUS)], "quantity": 1, "unit_price_cents": 2999},
            {"sku": SKUS[(2 * n + 1) % len(SKUS)], "quantity": 2, "unit_price_cents": 1499},
        ],
        "requires_pin": False,
    }


def signed_line(issued, method: str, route: str, body: bytes) -> str:
    from orders.api.client import signed_headers

    headers = signed_headers(
        key_id=issued.client.key_id, secret=issued.secret, method=method, path_with_query=route, body=body
    )
    return "\t".join(
        [
            method,
            route,
            headers["Mallrun-Key"],
            headers["Mallrun-Timestamp"],
            headers["Mallrun-Signature"],
            body.decode(),
        ]
    )


def write_requests(folder: Path, name: str, lines: list[str]) -> Path:
    target = folder / f"{name}.tsv"
    target.write_text("\n".join(lines) + "\n")
    return target


def production_gunicorn_options() -> list[str]:
    """The gunicorn options of the Procfile's web process (workers, threads, keep-alive,
    max-requests, access log…), with its ${NAME:-default} values expanded, so the benchmark
    serves the way production does; only the application and the bind address are ours."""
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    words = shlex.split(web.split("exec gunicorn", 1)[1])[1:]  # after the WSGI application
    expand = re.compile(r"\$\{(\w+):-([^}]*)\}")
    options, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--bind":
            skip = True
        else:
            options.append(expand.sub(lambda match: os.environ.get(match[1], match[2]), word))
    return options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Measured(NamedTuple):
    rps: float
    total: int
    errors: int  # non-2xx answers
    # CPU time per request in ms: the machine's, everything that ran (server, database, Redis,
    # wrk, and anything else, so it means something on an otherwise idle machine only); then
    # the web server's (gunicorn and its workers) and PostgreSQL's (every backend) alone.
    cpu: float
    server_cpu: float
    database_cpu: float


def wrk(url: str, script: Path, requests_file: Path, seconds: int, *, server_pid: int, postmaster_pid: int) -> Measured:
    """Requests per second and what they cost: the CPU time per request says what a request
    costs where requests per second also depend on how busy the two cores were kept, and its
    split between the web server and the database says where the time goes."""
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url]
    before = busy_cpu_seconds(), tree_cpu_seconds(server_pid), tree_cpu_seconds(postmaster_pid)
    output = subprocess.run(  # noqa: S603
        [*command, "--", str(requests_file), str(THREADS)], capture_output=True, text=True, check=True
    ).stdout
    after = busy_cpu_seconds(), tree_cpu_seconds(server_pid), tree_cpu_seconds(postmaster_pid)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    busy, server, database = (1000 * (end - start) / max(total, 1) for start, end in zip(before, after, strict=True))
    return Measured(rps, total, int(errors.group(1)) if errors else 0, busy, server, database)


def main() -> None:
    ensure_database()
    clients = build_world()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BENCH_API_SERVE": "1",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    # The rate limiter counts in Redis as in production (DB 13 by default, keys expire in seconds).
    env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    env["CACHE_KEY_PREFIX"] = "bench-api"
    command = [sys.executable, "-m", "gunicorn", "bench.api:application", "--bind", f"127.0.0.1:{port}"]
    command += [*production_gunicorn_options(), "--log-level", "warning"]
    print("gunicorn", " ".join(command[4:]), flush=True)
    # The access log goes to stdout as in production (written, then dropped here).
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    rounds: list[dict[str, Measured]] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        postmaster_pid = parent_pid(cursor.fetchone()[0])
    roots = {"server_pid": server.pid, "postmaster_pid": postmaster_pid}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=1).read()  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as folder_name:
            folder = Path(folder_name)
            script = folder / "signed.lua"
            script.write_text(LUA)
            # Replays: one order per key, created first through the API, then sent again.
            from orders.api.client import MallrunClient

            replay_documents = []
            for n, issued in enumerate(clients):
                document = order_body(f"REPLAY-{n:03d}", n)
                MallrunClient(base, key_id=issued.client.key_id, secret=issued.secret).create_order(document)
                replay_documents.append((issued, json.dumps(document, separators=(",", ":")).encode()))

            def replays() -> Path:
                # Signed again for every round, so no timestamp ages out of the contract's window.
                lines = [signed_line(issued, "POST", "/api/v1/orders", body) for issued, body in replay_documents]
                return write_requests(folder, "replays", lines)

            insert_body = json.dumps(order_body("FLOOR"), separators=(",", ":"))
            inserts = write_requests(folder, "inserts", [f"POST\t/bench-api/insert\t\t\t\t{insert_body}"])
            selects = write_requests(folder, "selects", ["GET\t/bench-api/select/replay\t\t\t\t"])
            minimal = write_requests(folder, "minimal", [f"POST\t/bench-api/minimal-intake\t\t\t\t{insert_body}"])

            def creates(label: str, count: int) -> Path:
                lines = []
                for n in range(count):
                    body = json.dumps(order_body(f"{label}-{n:07d}", n), separators=(",", ":")).encode()
                    lines.append(signed_line(clients[n % KEYS], "POST", "/api/v1/orders", body))
                return write_requests(folder, label, lines)

            # Warm every path, then alternate floor and subject, round after round.
            for warm in (inserts, selects, minimal, replays(), creates("WARM", 2000)):
                wrk(base, script, warm, 2, **roots)
            for round_ in range(ROUNDS):
                create_file = creates(f"BENCH{round_}", 3000 * DURATION)
                replay_file = replays()
                rounds.append(
                    {
                        "insert": wrk(base, script, inserts, DURATION, **roots),
                        "create": wrk(base, script, create_file, DURATION, **roots),
                        "minimal": wrk(base, script, minimal, DURATION, **roots),
                        "select": wrk(base, script, selects, DURATION, **roots),
                        "replay": wrk(base, script, replay_file, DURATION, **roots),
                    }
                )
    finally:
        server.terminate()
        server.wait(timeout=30)

    from orders.models import Order

    for n, measured in enumerate(rounds, start=1):
        created = Order.objects.filter(marketplace_order_id__startswith=f"BENCH{n - 1}-").count()
        print(
            f"round {n}: "
            + ", ".join(
                f"{name} {m.rps:.0f} req/s ({m.total} sent, {m.errors} non-2xx, {m.cpu:.2f} ms CPU each:"
                f" {m.server_cpu:.2f} server, {m.database_cpu:.2f} database)"
                for name, m in measured.items()
            )
            + f"; {created} orders created"
        )
    ratio = statistics.median(m["create"].rps / m["insert"].rps for m in rounds)
    replay_ratio = statistics.median(m["replay"].rps / m["select"].rps for m in rounds)
    create_rps = statistics.median(m["create"].rps for m in rounds)
    # The same comparison in CPU time per request (floor over subject), then where it goes.
    cpu_ratio = statistics.median(m["insert"].cpu / m["create"].cpu for m in rounds)
    replay_cpu_ratio = statistics.median(m["select"].cpu / m["replay"].cpu for m in rounds)
    print(f"CPU per request, floor/subject: ratio={cpu_ratio:.2f} replay_ratio={replay_cpu_ratio:.2f}")
    print(
        "CPU per request in ms, web server + database (median): "
        + ", ".join(
            f"{name} {statistics.median(m[name].server_cpu for m in rounds):.2f}"
            f" + {statistics.median(m[name].database_cpu for m in rounds):.2f}"
            for name in rounds[0]
        )
    )
    reference = statistics.median(m["minimal"].rps / m["insert"].rps for m in rounds)
    print(f"Reference minimal intake (6 statements, no signature, reads or feed)/insert floor: ratio={reference:.2f}")
    print(f"RESULT ratio={ratio:.2f} replay_ratio={replay_ratio:.2f} create_rps={create_rps:.0f}")


if __name__ == "__main__":
    main()
