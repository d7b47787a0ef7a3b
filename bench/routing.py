"""Benchmark of the route builder's solver layer (drivers.routing).

1. The 56 Solomon VRPTW instances (../shared/data/solomon, .vrp + best-known .sol), 1 s each:
   gap of our distance to the best-known distance (distances scaled ×10 and truncated, the usual
   DIMACS convention). OR-Tools runs beside it when it is installed (it is not a dependency).
2. A mall batch of 200 ready orders around one mall: wall time of plan_mall_routes.

Run: .venv/bin/python bench/routing.py [--seconds 1] [--only C1]
Last line: RESULT mean_gap_pct=<n> max_gap_pct=<n> mall200_s=<n>
"""

import argparse
import datetime as dt
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import vrplib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.routing import (  # noqa: E402
    Delivery,
    HaversineTravelTimes,
    MallSettings,
    Point,
    VrpProblem,
    plan_mall_routes,
    solve_vrp,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "solomon"


def solomon_problem(path: Path) -> VrpProblem:
    instance = vrplib.read_instance(str(path))
    coords = np.asarray(instance["node_coord"], dtype=float)
    diff = coords[:, None, :] - coords[None, :, :]
    distances = np.floor(np.sqrt((diff**2).sum(axis=2)) * 10).astype(np.int64)
    n = len(coords)
    service = instance["service_time"]
    service = [int(service * 10)] * n if np.isscalar(service) else [int(s * 10) for s in service]
    service[0] = 0
    windows = [(int(early * 10), int(late * 10)) for early, late in instance["time_window"]]
    return VrpProblem(
        distances=distances,
        durations=distances,
        demands=[int(d) for d in instance["demand"]],
        windows=windows,
        service=service,
        capacity=int(instance["capacity"]),
        num_vehicles=int(instance.get("vehicles", n - 1)),
        depot_window=windows[0],
    )


def best_known(path: Path) -> float:
    match = re.search(r"Cost\s+([\d.]+)", path.read_text())
    assert match, path
    return float(match.group(1))


def ortools_distance(problem: VrpProblem, seconds: float) -> float | None:
    try:
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2
    except ImportError:
        return None
    n = len(problem.demands)
    manager = pywrapcp.RoutingIndexManager(n, problem.num_vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    def dist(i, j):
        return int(problem.distances[manager.IndexToNode(i)][manager.IndexToNode(j)])

    def dur(i, j):
        a = manager.IndexToNode(i)
        return int(problem.durations[a][manager.IndexToNode(j)]) + problem.service[a]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(dist))
    demand = routing.RegisterUnaryTransitCallback(lambda i: problem.demands[manager.IndexToNode(i)])
    routing.AddDimensionWithVehicleCapacity(demand, 0, [problem.capacity] * problem.num_vehicles, True, "load")
    routing.AddDimension(routing.RegisterTransitCallback(dur), 10**6, 10**7, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    for node in range(1, n):
        time_dim.CumulVar(manager.NodeToIndex(node)).SetRange(*problem.windows[node])
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.time_limit.FromMilliseconds(int(seconds * 1000))
    solution = routing.SolveWithParameters(params)
    return solution.ObjectiveValue() / 10 if solution else None


def mall_batch(size: int, seed: int = 7) -> tuple[MallSettings, list[Delivery], dt.datetime]:
    rng = random.Random(seed)
    mall = Point(36.1273, -115.1707)
    now = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
    deliveries = []
    for key in range(1, size + 1):
        radius = 9 * math.sqrt(rng.random())
        angle = rng.random() * 2 * math.pi
        drop = Point(mall.lat + radius * math.sin(angle) / 69.0, mall.lon + radius * math.cos(angle) / 56.0)
        deliveries.append(
            Delivery(
                key=key,
                store_key=rng.randint(1, 6),
                drop=drop,
                deliver_by=now + dt.timedelta(minutes=rng.choice([60, 90, 120, 180])),
                packages=rng.randint(1, 3),
                ready_at=now + dt.timedelta(minutes=rng.choice([0, 0, 0, 10, 20])),
            )
        )
    settings = MallSettings(location=mall, radius_miles=10.0, capacity_units=12, max_stops=8)
    return settings, deliveries, now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    instances = sorted(DATA.glob(f"{args.only}*.vrp"))
    if not instances:
        sys.exit(f"no Solomon instances in {DATA}: the bench needs ../shared/data/solomon beside the project")
    gaps, ortools_gaps, ortools_missing = [], [], []
    print(f"{'instance':10} {'best':>9} {'pyvrp':>9} {'gap%':>7} {'ortools':>9} {'gap%':>7}")
    for path in instances:
        problem = solomon_problem(path)
        bks = best_known(path.with_suffix(".sol"))
        solution = solve_vrp(problem, time_limit_s=args.seconds)
        ours = solution.distance / 10
        gap = (ours - bks) / bks * 100
        gaps.append(gap)
        other = ortools_distance(problem, args.seconds)
        if other:
            ortools_gaps.append((other - bks) / bks * 100)
        else:
            ortools_missing.append(path.stem)
        other_text = f"{other:9.1f} {(other - bks) / bks * 100:7.2f}" if other else f"{'n/a':>9} {'':>7}"
        flag = "" if solution.feasible else " INFEASIBLE"
        print(f"{path.stem:10} {bks:9.1f} {ours:9.1f} {gap:7.2f} {other_text}{flag}", flush=True)

    settings, deliveries, now = mall_batch(200)
    started = time.perf_counter()
    plan = plan_mall_routes(
        mall=settings, deliveries=deliveries, now=now, travel=HaversineTravelTimes(), time_limit_s=1.0
    )
    mall_s = time.perf_counter() - started
    print(
        f"mall200: {len(plan.routes)} routes, {sum(len(r.stops) for r in plan.routes)} orders routed, "
        f"{len(plan.left_out)} left out {sorted(set(plan.left_out.values()))}, {mall_s:.2f} s"
    )
    if ortools_gaps:
        # OR-Tools' default search finds no feasible solution in the time on some instances.
        print(
            f"ortools: {len(ortools_gaps)} solved, mean_gap_pct={sum(ortools_gaps) / len(ortools_gaps):.2f} "
            f"max_gap_pct={max(ortools_gaps):.2f}; none in {args.seconds:g} s: {' '.join(ortools_missing) or '-'}"
        )
    mean_gap = sum(gaps) / len(gaps) if gaps else float("nan")
    max_gap = max(gaps) if gaps else float("nan")
    print(f"RESULT mean_gap_pct={mean_gap:.2f} max_gap_pct={max_gap:.2f} mall200_s={mall_s:.2f}")


if __name__ == "__main__":
    main()
