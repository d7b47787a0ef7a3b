"""The route builder's plain layer, without Django."""

import datetime as dt

import numpy as np

from drivers.routing import (
    Delivery,
    HaversineTravelTimes,
    MallSettings,
    Point,
    VrpProblem,
    haversine_miles,
    plan_mall_routes,
    solve_vrp,
)

NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
MALL = Point(36.1273, -115.1707)


def _mall(**overrides) -> MallSettings:
    return MallSettings(**{"location": MALL, "radius_miles": 10.0, "capacity_units": 10, "max_stops": 4, **overrides})


def _delivery(
    key: int, *, north_miles: float, packages: int = 1, hours: float = 3, store: int = 1, ready_in: float = 0
):
    return Delivery(
        key=key,
        store_key=store,
        drop=Point(MALL.lat + north_miles / 69.0, MALL.lon),
        deliver_by=NOW + dt.timedelta(hours=hours),
        packages=packages,
        ready_at=NOW + dt.timedelta(minutes=ready_in),
    )


def test_haversine_miles_one_degree_of_latitude():
    assert round(haversine_miles(Point(36.0, -115.0), Point(37.0, -115.0)), 2) == 69.09


def test_travel_times_apply_circuity_and_hourly_speed():
    travel = HaversineTravelTimes(circuity=1.5, speeds_mph=dict.fromkeys(range(24), 30.0) | {8: 15.0})
    a, b = Point(36.0, -115.0), Point(36.1, -115.0)

    assert round(travel.miles(a, b), 3) == round(haversine_miles(a, b) * 1.5, 3)
    assert round(travel.minutes(a, b, NOW.replace(hour=12)), 2) == round(travel.miles(a, b) / 30 * 60, 2)
    assert round(travel.minutes(a, b, NOW.replace(hour=8)), 2) == round(travel.miles(a, b) / 15 * 60, 2)


def test_solve_vrp_respects_capacity():
    distances = np.array([[0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]])
    problem = VrpProblem(
        distances=distances,
        durations=distances,
        demands=[0, 2, 2, 2],
        windows=[(0, 1000)] * 4,
        service=[0] * 4,
        capacity=4,
        num_vehicles=3,
    )

    solution = solve_vrp(problem, time_limit_s=0.2)

    assert solution.feasible is True
    assert sorted(len(route) for route in solution.routes) == [1, 2]
    assert solution.unassigned == []


def test_solve_vrp_respects_max_stops():
    distances = np.ones((5, 5), dtype=int) - np.eye(5, dtype=int)
    problem = VrpProblem(
        distances=distances,
        durations=distances,
        demands=[0, 1, 1, 1, 1],
        windows=[(0, 1000)] * 5,
        service=[0] * 5,
        capacity=10,
        num_vehicles=4,
        max_stops=2,
    )

    solution = solve_vrp(problem, time_limit_s=0.2)

    assert sorted(len(route) for route in solution.routes) == [2, 2]


def test_plan_mall_routes_groups_stores_of_one_mall_on_one_route():
    deliveries = [_delivery(1, north_miles=2, store=1), _delivery(2, north_miles=2.2, store=2)]

    plan = plan_mall_routes(
        mall=_mall(), deliveries=deliveries, now=NOW, travel=HaversineTravelTimes(), time_limit_s=0.2
    )

    assert len(plan.routes) == 1
    assert [stop.key for stop in plan.routes[0].stops] == [1, 2]
    assert plan.routes[0].store_keys == [1, 2]
    assert plan.routes[0].packages == 2
    assert plan.left_out == {}


def test_plan_mall_routes_leaves_out_outside_radius_too_big_and_unreachable():
    deliveries = [
        _delivery(1, north_miles=12),
        _delivery(2, north_miles=1, packages=11),
        _delivery(3, north_miles=9, hours=0.2),
        _delivery(4, north_miles=1),
    ]

    plan = plan_mall_routes(
        mall=_mall(), deliveries=deliveries, now=NOW, travel=HaversineTravelTimes(), time_limit_s=0.2
    )

    assert plan.left_out == {1: "outside_radius", 2: "too_big", 3: "deadline_unreachable"}
    assert [[stop.key for stop in route.stops] for route in plan.routes] == [[4]]


def test_plan_mall_routes_splits_by_capacity_and_keeps_deadlines():
    deliveries = [_delivery(key, north_miles=1 + key * 0.1, packages=4) for key in range(1, 5)]

    plan = plan_mall_routes(
        mall=_mall(), deliveries=deliveries, now=NOW, travel=HaversineTravelTimes(), time_limit_s=0.3
    )

    assert sorted(route.packages for route in plan.routes) == [8, 8]
    for route in plan.routes:
        for stop in route.stops:
            assert stop.arrive_at <= NOW + dt.timedelta(hours=3)


def test_plan_mall_routes_estimates_miles_and_minutes():
    plan = plan_mall_routes(
        mall=_mall(),
        deliveries=[_delivery(1, north_miles=3)],
        now=NOW,
        travel=HaversineTravelTimes(circuity=1.0, speeds_mph=dict.fromkeys(range(24), 30.0)),
        time_limit_s=0.1,
    )

    route = plan.routes[0]
    assert round(route.miles, 1) == 3.0
    # 8 min at the mall + 6 min driving + 3 min at the door.
    assert round(route.minutes) == 17
