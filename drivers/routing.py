"""Route building for one mall: which ready orders ride together, in which order. A plain module
(no Django): travel times behind a small protocol a road-network engine can replace, and a thin
wrapper around PyVRP's hybrid genetic search for vehicle routing with time windows."""

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyvrp
from pyvrp.stop import MaxRuntime

EARTH_RADIUS_MILES = 3958.8


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def haversine_miles(a: Point, b: Point) -> float:
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlambda = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


class TravelTimes(Protocol):
    """Road miles and driving minutes between two points when leaving at `at` (local time)."""

    def miles(self, a: Point, b: Point) -> float: ...

    def minutes(self, a: Point, b: Point, at: dt.datetime) -> float: ...


# Average urban speed (mph) by local hour: slower in the morning and evening rush.
DEFAULT_SPEEDS_MPH: dict[int, float] = dict.fromkeys(range(24), 25.0) | {
    7: 18.0,
    8: 18.0,
    16: 18.0,
    17: 18.0,
    18: 20.0,
    0: 32.0,
    1: 32.0,
    2: 32.0,
    3: 32.0,
    4: 32.0,
    5: 30.0,
}


@dataclass(frozen=True)
class HaversineTravelTimes:
    """Straight-line distance × a circuity factor (roads are not straight), at a speed that
    depends on the hour of the day."""

    circuity: float = 1.3
    speeds_mph: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS_MPH))

    def miles(self, a: Point, b: Point) -> float:
        return haversine_miles(a, b) * self.circuity

    def minutes(self, a: Point, b: Point, at: dt.datetime) -> float:
        return self.miles(a, b) / self.speeds_mph[at.hour] * 60


# --- the solver layer: integer matrices in, routes out -------------------------------------


@dataclass(frozen=True)
class VrpProblem:
    """Node 0 is the depot (the mall); nodes 1..n are the deliveries. Times are integer units
    (minutes, or anything consistent) from the start of planning."""

    distances: np.ndarray
    durations: np.ndarray
    demands: Sequence[int]
    windows: Sequence[tuple[int, int]]
    service: Sequence[int]
    capacity: int
    num_vehicles: int
    release: Sequence[int] | None = None
    max_stops: int | None = None
    # Open routes: the driver does not come back to the mall after the last drop.
    open_routes: bool = False
    # Deliveries the solver may leave out (at this cost each) rather than break a deadline.
    optional_prize: int | None = None
    depot_window: tuple[int, int] = (0, 2**40)


@dataclass(frozen=True)
class VrpSolution:
    routes: list[list[int]]  # node numbers (1..n) in visiting order
    distance: int
    feasible: bool
    unassigned: list[int]


def solve_vrp(problem: VrpProblem, *, time_limit_s: float, seed: int = 1) -> VrpSolution:
    n = len(problem.demands) - 1
    release = problem.release or [0] * (n + 1)
    locations = [pyvrp.Location(0, 0) for _ in range(n + 1)]
    stops_dim = problem.max_stops is not None
    clients = [
        pyvrp.Client(
            location=node,
            delivery=[problem.demands[node], 1] if stops_dim else [problem.demands[node]],
            service_duration=problem.service[node],
            tw_early=problem.windows[node][0],
            tw_late=problem.windows[node][1],
            release_time=release[node],
            prize=problem.optional_prize or 0,
            required=problem.optional_prize is None,
        )
        for node in range(1, n + 1)
    ]
    depot = pyvrp.Depot(0, tw_early=problem.depot_window[0], tw_late=problem.depot_window[1])
    capacity = [problem.capacity, problem.max_stops] if stops_dim else [problem.capacity]
    vehicle = pyvrp.VehicleType(
        num_available=problem.num_vehicles,
        capacity=capacity,
        tw_early=problem.depot_window[0],
        tw_late=problem.depot_window[1],
    )
    distances = np.asarray(problem.distances, dtype=np.int64).copy()
    durations = np.asarray(problem.durations, dtype=np.int64).copy()
    if problem.open_routes:
        distances[:, 0] = 0
        durations[:, 0] = 0
    data = pyvrp.ProblemData(locations, clients, [depot], [vehicle], [distances], [durations])
    result = pyvrp.solve(data, MaxRuntime(time_limit_s), seed=seed, collect_stats=False, display=False)
    best = result.best
    routes = [[activity.idx + 1 for activity in route.schedule() if activity.is_client()] for route in best.routes()]
    routes = [route for route in routes if route]
    visited = {node for route in routes for node in route}
    return VrpSolution(
        routes=routes,
        distance=int(best.distance()),
        feasible=bool(best.is_feasible()),
        unassigned=[node for node in range(1, n + 1) if node not in visited],
    )


# --- the mall layer: orders in, routes with estimates out -----------------------------------


@dataclass(frozen=True)
class Delivery:
    key: int  # the order id
    store_key: int
    drop: Point
    deliver_by: dt.datetime
    packages: int
    ready_at: dt.datetime  # now, or when the store says it will be ready


@dataclass(frozen=True)
class PlannedStop:
    key: int
    arrive_at: dt.datetime
    miles_from_previous: float


@dataclass(frozen=True)
class PlannedRoute:
    stops: list[PlannedStop]
    store_keys: list[int]  # pickups at the mall, in this order
    depart_at: dt.datetime
    miles: float
    minutes: float
    packages: int


@dataclass(frozen=True)
class Plan:
    routes: list[PlannedRoute]
    # Orders no route can carry, each with the reason: outside_radius, deadline_unreachable,
    # too_big (more packages than a vehicle holds), unassigned.
    left_out: dict[int, str]


@dataclass(frozen=True)
class MallSettings:
    location: Point
    radius_miles: float
    capacity_units: int
    max_stops: int
    # Time from arriving at the mall to leaving it with the packages: parking, walking.
    pickup_minutes: float = 8.0
    per_store_minutes: float = 4.0
    drop_minutes: float = 3.0


def plan_mall_routes(
    *,
    mall: MallSettings,
    deliveries: Sequence[Delivery],
    now: dt.datetime,
    travel: TravelTimes,
    time_limit_s: float = 1.0,
    local_time: Callable[[dt.datetime], dt.datetime] = lambda at: at,
) -> Plan:
    """Groups the deliveries of one mall into routes: each fits the vehicle (package units), has
    at most `max_stops` drops, keeps every deadline, and stays inside the mall's radius. Routes
    start at the mall (all pickups there first) and end at their last drop."""
    left_out: dict[int, str] = {}
    depart_base = now + dt.timedelta(minutes=mall.pickup_minutes)
    local = local_time(depart_base)
    candidates: list[Delivery] = []
    for delivery in deliveries:
        if haversine_miles(mall.location, delivery.drop) > mall.radius_miles:
            left_out[delivery.key] = "outside_radius"
        elif delivery.packages > mall.capacity_units:
            left_out[delivery.key] = "too_big"
        else:
            leave = max(depart_base, delivery.ready_at)
            arrive = leave + dt.timedelta(minutes=travel.minutes(mall.location, delivery.drop, local))
            if arrive > delivery.deliver_by:
                left_out[delivery.key] = "deadline_unreachable"
            else:
                candidates.append(delivery)
    if not candidates:
        return Plan(routes=[], left_out=left_out)

    points = [mall.location] + [delivery.drop for delivery in candidates]
    size = len(points)
    # Tenths of a mile and tenths of a minute keep integer rounding small.
    miles = np.zeros((size, size))
    minutes = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            if i != j:
                miles[i, j] = travel.miles(points[i], points[j])
                minutes[i, j] = travel.minutes(points[i], points[j], local)
    service = [0] + [round(mall.drop_minutes * 10)] * len(candidates)
    problem = VrpProblem(
        distances=np.rint(miles * 10).astype(np.int64),
        durations=np.rint(minutes * 10).astype(np.int64),
        demands=[0] + [delivery.packages for delivery in candidates],
        windows=[(0, 2**40)] + [(0, max(0, int((d.deliver_by - depart_base).total_seconds() / 6))) for d in candidates],
        release=[0] + [max(0, math.ceil((d.ready_at - depart_base).total_seconds() / 6)) for d in candidates],
        service=service,
        capacity=mall.capacity_units,
        num_vehicles=len(candidates),
        max_stops=mall.max_stops,
        open_routes=True,
        optional_prize=1_000_000,
    )
    solution = solve_vrp(problem, time_limit_s=time_limit_s)
    for node in solution.unassigned:
        left_out[candidates[node - 1].key] = "unassigned"

    routes = []
    for nodes in solution.routes:
        members = [candidates[node - 1] for node in nodes]
        stores = list(dict.fromkeys(member.store_key for member in members))
        depart = max([depart_base, *(member.ready_at for member in members)]) + dt.timedelta(
            minutes=mall.per_store_minutes * (len(stores) - 1)
        )
        clock = depart
        previous = 0
        stops = []
        total_miles = 0.0
        for node in nodes:
            clock += dt.timedelta(minutes=minutes[previous, node])
            stops.append(
                PlannedStop(key=candidates[node - 1].key, arrive_at=clock, miles_from_previous=miles[previous, node])
            )
            total_miles += miles[previous, node]
            clock += dt.timedelta(minutes=mall.drop_minutes)
            previous = node
        routes.append(
            PlannedRoute(
                stops=stops,
                store_keys=stores,
                depart_at=depart,
                miles=round(total_miles, 2),
                minutes=round((clock - now).total_seconds() / 60, 1),
                packages=sum(member.packages for member in members),
            )
        )
    routes.sort(key=lambda route: route.stops[0].arrive_at)
    return Plan(routes=routes, left_out=left_out)


# --- orders still being packed and re-plans ---------------------------------------------------

# Package units one item of each size class is expected to take. Deliberately on the high side
# (two shoebox items share a package, a large item takes the room of two): a route that reserves
# too much room only gets re-planned to free it, one that reserves too little may not fit the car.
PACKAGE_UNITS_PER_ITEM: dict[str, float] = {"small": 0.5, "medium": 1.0, "large": 2.0, "oversize": 3.0}
MAX_ESTIMATED_PACKAGES = 20


def estimate_packages(lines: Sequence[tuple[str, int]]) -> int:
    """The package units of an order not yet packed, from its lines as (size class, quantity):
    at least 1, at most what one order may be packed into (20)."""
    units = sum(PACKAGE_UNITS_PER_ITEM.get(size_class, 1.0) * quantity for size_class, quantity in lines)
    return max(1, min(MAX_ESTIMATED_PACKAGES, math.ceil(units)))


def earliest_arrival(
    *, mall: Point, drivers: Sequence[Point], now: dt.datetime, travel: TravelTimes, local: dt.datetime
) -> dt.datetime | None:
    """When the nearest of `drivers` (positions of the drivers free to take a route) could be at
    the mall, or None when no driver is free."""
    if not drivers:
        return None
    return now + dt.timedelta(minutes=min(travel.minutes(position, mall, local) for position in drivers))


def estimate_sequence(
    *,
    mall: MallSettings,
    deliveries: Sequence[Delivery],
    depart_at: dt.datetime,
    now: dt.datetime,
    travel: TravelTimes,
    local_time: Callable[[dt.datetime], dt.datetime] = lambda at: at,
) -> PlannedRoute:
    """The estimate of a route whose drops keep their order (a route already under way): leave
    the mall at `depart_at`, drive to each drop in turn."""
    local = local_time(depart_at)
    clock = depart_at
    previous = mall.location
    stops = []
    total_miles = 0.0
    for delivery in deliveries:
        leg = travel.miles(previous, delivery.drop)
        clock += dt.timedelta(minutes=travel.minutes(previous, delivery.drop, local))
        stops.append(PlannedStop(key=delivery.key, arrive_at=clock, miles_from_previous=leg))
        total_miles += leg
        clock += dt.timedelta(minutes=mall.drop_minutes)
        previous = delivery.drop
    return PlannedRoute(
        stops=stops,
        store_keys=list(dict.fromkeys(delivery.store_key for delivery in deliveries)),
        depart_at=depart_at,
        miles=round(total_miles, 2),
        minutes=round(max(0.0, (clock - min(now, depart_at)).total_seconds() / 60), 1),
        packages=sum(delivery.packages for delivery in deliveries),
    )
