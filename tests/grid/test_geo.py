"""Point-in-grid and distances (WGS-84), checked against the demo grids and known distances."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.reference import load_tianhe_org
from server.domain.grid_geo import (
    centroid,
    distance_m,
    distance_to_polygon_m,
    path_length_m,
    point_in_polygon,
)

SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
# a concave "U": the notch (0.4..0.6, 0.3..1) is outside
U_SHAPE = [[0, 0], [1, 0], [1, 1], [0.6, 1], [0.6, 0.3], [0.4, 0.3], [0.4, 1], [0, 1], [0, 0]]


@pytest.mark.parametrize(("point", "inside"), [
    ((0.5, 0.5), True), ((1.5, 0.5), False), ((0.0, 0.5), True), ((1.0, 1.0), True), ((-0.01, 0.5), False),
])
def test_square(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE) is inside


@pytest.mark.parametrize(("point", "inside"), [((0.5, 0.8), False), ((0.5, 0.1), True), ((0.2, 0.8), True),
                                               ((0.8, 0.8), True)])
def test_concave_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, U_SHAPE) is inside


def test_every_demo_grid_contains_its_centre_and_not_its_neighbours_centre() -> None:
    grids = [g for s in load_tianhe_org().streets for c in s.communities for g in c.grids]
    assert grids
    centres = {g.code: centroid(g.polygon[:-1]) for g in grids}
    for g in grids:
        assert point_in_polygon(centres[g.code], g.polygon)
        assert sum(point_in_polygon(c, g.polygon) for c in centres.values()) == 1


def test_distances() -> None:
    # one thousandth of a degree of latitude is about 111 m anywhere
    assert distance_m((113.34, 23.13), (113.34, 23.131)) == pytest.approx(111.2, abs=0.5)
    # Guangzhou Tower to Tianhe Sports Centre: about 3.3 km
    assert distance_m((113.3245, 23.1064), (113.3230, 23.1360)) == pytest.approx(3290, rel=0.02)
    assert path_length_m([(113.34, 23.13), (113.34, 23.131), (113.34, 23.132)]) == pytest.approx(221.9, abs=1)
    assert distance_to_polygon_m((113.3440, 23.1318), [[113.3405, 23.1303], [113.34183, 23.1303],
                                                       [113.34183, 23.1333], [113.3405, 23.1333]]) == pytest.approx(
        distance_m((113.3440, 23.1318), (113.34183, 23.1318)), abs=0.5)  # to the nearest (east) edge


@given(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5))
def test_ray_casting_agrees_with_the_box_test(x: float, y: float) -> None:
    assume(all(abs(v - edge) > 1e-9 for v in (x, y) for edge in (0.0, 1.0)))  # the boundary counts as inside
    assert point_in_polygon((x, y), SQUARE) == (0 <= x <= 1 and 0 <= y <= 1)
