"""Benchmark: the store board under gunicorn on PostgreSQL, against a hello-world view.

Builds the demo data plus 100,000 orders across the demo stores, 200 of them open in
staff-fs-1's store, serves the portal with gunicorn (production settings, Redis cache) and drives
it with wrk from a second process. In the same run and server it alternates:
  - hello:     /bench/hello, a view that only touches the user, behind the same middleware;
  - unchanged: the board poll when nothing changed since the tablet's last request (204);
  - changed:   the board poll right after one of its orders changed (a toucher process bumps one
               open order every few milliseconds, so each poll finds a new version and re-renders
               the changed card while the others come from the cache).
Ratios are medians over several alternating rounds. Last line:
  RESULT ratio=<unchanged/hello> changed_ratio=<changed/hello> board_rps=<n> hello_rps=<n>

Usage: .venv/bin/python bench/board.py [--rounds 5] [--seconds 5]
Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/mallrun_bench_board),
Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/10), gunicorn and Debian's wrk.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mallrun_bench_board")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
TOTAL_ORDERS = 100_000
OPEN_IN_STORE = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(static_root: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "DATABASE_URL", "REDIS_URL", "CI"}}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX=f"bench-{secrets.token_hex(4)}",
        BENCH_FLOOR_VIEWS="1",
        STATIC_ROOT=static_root,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def run(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kwargs)


def recreate_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


# Runs inside `manage.py shell`: bulk orders and a logged-in session; prints two lines.
SETUP_SCRIPT = r"""
import datetime as dt, random
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone
from orders.lifecycle import OrderStatus as S
from orders.models import Order, OrderLine
from retailers.models import Stock, Store, StoreMembership

TOTAL, OPEN = {total}, {open_in_store}
rng = random.Random(7)
user = get_user_model().objects.get(username="staff-fs-1")
store = StoreMembership.objects.get(user=user).store
stores = list(Store.objects.all())
stock = {{}}
for row in Stock.objects.values("store_id", "listing_id"):
    stock.setdefault(row["store_id"], []).append(row["listing_id"])
now = timezone.now()
open_now = Order.objects.filter(store=store, status__in=[S.RECEIVED, S.ACCEPTED, S.PICKING, S.READY]).count()
to_create = TOTAL - Order.objects.count()
open_needed = max(OPEN - open_now, 0)
orders, line_specs = [], []
for i in range(to_create):
    if i < open_needed:
        target, status = store, rng.choice([S.RECEIVED, S.ACCEPTED, S.PICKING, S.READY])
        placed = now - dt.timedelta(minutes=rng.randint(1, 60))
    else:
        target, status = rng.choice(stores), S.DELIVERED
        placed = now - dt.timedelta(days=rng.randint(1, 365), minutes=rng.randint(0, 600))
    changed = placed + dt.timedelta(minutes=40)
    orders.append(Order(
        marketplace_order_id=f"BENCH-{{i:07d}}", store=target, status=status, placed_at=placed,
        deliver_by=placed + dt.timedelta(hours=4), prep_due_at=placed + dt.timedelta(minutes=target.prep_sla_minutes),
        customer_name="Bench Shopper", address_line1="1 Test St", city="Las Vegas", state="NV",
        postal_code="89109", created_at=placed, status_changed_at=min(changed, now), updated_at=min(changed, now),
    ))
    listings = stock.get(target.pk) or []
    line_specs.append(rng.sample(listings, k=min(2, len(listings))))
with transaction.atomic():
    created = Order.objects.bulk_create(orders, batch_size=5000)
    OrderLine.objects.bulk_create(
        (OrderLine(order=order, listing_id=listing_id, quantity=1, picked=0, reserved_quantity=0)
         for order, listing_ids in zip(created, line_specs) for listing_id in listing_ids),
        batch_size=10000,
    )
client = Client()
client.force_login(user)
open_count = Order.objects.filter(store=store, status__in=[S.RECEIVED, S.ACCEPTED, S.PICKING, S.READY]).count()
print("SESSION", client.cookies["sessionid"].value)
print("COUNTS", Order.objects.count(), open_count, store.pk)
"""

# Runs as its own process during the "changed" rounds: one open order changes every few ms.
TOUCHER_SCRIPT = r"""
import random, sys, time, psycopg
url, store_id = sys.argv[1], int(sys.argv[2])
rng = random.Random(3)
with psycopg.connect(url, autocommit=True) as conn:
    ids = [row[0] for row in conn.execute(
        "SELECT id FROM orders_order WHERE store_id = %s AND status IN ('received','accepted','picking','ready')",
        [store_id])]
    while True:
        conn.execute("UPDATE orders_order SET updated_at = now() WHERE id = %s", [rng.choice(ids)])
        time.sleep(0.005)
"""


def wrk(url: str, headers: dict[str, str], seconds: int) -> float:
    cmd = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx.group(1)} error responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wait_for(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer at {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")

    static_root = tempfile.mkdtemp(prefix="mallrun-bench-static-")
    env = server_env(static_root)
    print("setting up PostgreSQL database and demo data ...", flush=True)
    recreate_database()
    run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
    run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    run([PYTHON, "manage.py", "seed_demo"], env, stdout=subprocess.DEVNULL)
    script = SETUP_SCRIPT.format(total=TOTAL_ORDERS, open_in_store=OPEN_IN_STORE)
    out = run([PYTHON, "manage.py", "shell", "-c", script], env, capture_output=True, text=True).stdout
    session = re.search(r"SESSION (\S+)", out).group(1)
    total, open_count, store_id = map(int, re.search(r"COUNTS (\d+) (\d+) (\d+)", out).groups())
    print(f"orders={total} open_in_store={open_count}", flush=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    toucher = None
    try:
        wait_for(f"{base}/accounts/login/")
        cookie = {"Cookie": f"sessionid={session}", "X-Mallrun-Poll": "1"}
        poll = {**cookie, "HX-Request": "true"}
        import urllib.request

        def current_version() -> str:
            # The toucher moves the board's version: read it again before every unchanged phase.
            request = urllib.request.Request(f"{base}/store/", headers=poll)
            with urllib.request.urlopen(request) as response:  # noqa: S310 - our own loopback server
                return re.search(r"since=([\w-]+)", response.read().decode()).group(1)

        changed_url = f"{base}/store/?since=stale"
        hello_url = f"{base}/bench/hello"
        for url in (hello_url, f"{base}/store/?since={current_version()}", changed_url):  # warm the caches
            wrk(url, poll, 2)

        hello, unchanged, changed, ratios, changed_ratios = [], [], [], [], []
        for round_no in range(1, args.rounds + 1):
            h1 = wrk(hello_url, poll, args.seconds)
            unchanged_url = f"{base}/store/?since={current_version()}"
            with urllib.request.urlopen(urllib.request.Request(unchanged_url, headers=poll)) as response:  # noqa: S310
                if response.status != 204:
                    raise SystemExit(f"the unchanged poll answered {response.status}, not 204")
            u = wrk(unchanged_url, poll, args.seconds)
            h2 = wrk(hello_url, poll, args.seconds)
            toucher = subprocess.Popen([PYTHON, "-c", TOUCHER_SCRIPT, DATABASE_URL, str(store_id)])
            c = wrk(changed_url, poll, args.seconds)
            toucher.terminate()
            toucher.wait()
            toucher = None
            hello += [h1, h2]
            unchanged.append(u)
            changed.append(c)
            ratios.append(u / h1)
            changed_ratios.append(c / h2)
            print(
                f"round {round_no}: hello={h1:.0f}/{h2:.0f} rps unchanged={u:.0f} rps changed={c:.0f} rps "
                f"ratio={u / h1:.3f} changed_ratio={c / h2:.3f}",
                flush=True,
            )
    finally:
        if toucher is not None:
            toucher.terminate()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(static_root, ignore_errors=True)

    print(
        f"RESULT ratio={statistics.median(ratios):.3f} changed_ratio={statistics.median(changed_ratios):.3f} "
        f"board_rps={statistics.median(unchanged):.0f} hello_rps={statistics.median(hello):.0f}"
    )


if __name__ == "__main__":
    main()
