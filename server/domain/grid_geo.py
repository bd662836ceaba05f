"""Plane geometry for grids: point-in-polygon, distances, centres (WGS-84 [lng, lat], DESIGN.md §1.9).

Grids are a few hundred metres across, so an equirectangular projection around the points
involved is accurate to well under a metre there; distances use the haversine formula. No
I/O, no projection library: a street node must answer "is this inside my grid?" offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius

LngLat = tuple[float, float]


def distance_m(a: LngLat, b: LngLat) -> float:
    """Great-circle distance in metres between two [lng, lat] points (haversine)."""
    lng1, lat1 = map(math.radians, a)
    lng2, lat2 = map(math.radians, b)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _on_segment(p: LngLat, a: LngLat, b: LngLat, eps: float = 1e-12) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > eps:
        return False
    return min(a[0], b[0]) - eps <= p[0] <= max(a[0], b[0]) + eps and (
        min(a[1], b[1]) - eps <= p[1] <= max(a[1], b[1]) + eps
    )


def point_in_polygon(point: LngLat, ring: Sequence[Sequence[float]]) -> bool:
    """Ray casting (even-odd rule). A point on the boundary counts as inside: a report made on
    the street line between two grids belongs to both, and either member may file it."""
    pts = [(float(p[0]), float(p[1])) for p in ring]
    if len(pts) >= 2 and pts[0] == pts[-1]:
        pts = pts[:-1]
    if len(pts) < 3:
        return False
    x, y = point
    inside = False
    j = len(pts) - 1
    for i in range(len(pts)):
        a, b = pts[i], pts[j]
        if _on_segment(point, a, b):
            return True
        if (a[1] > y) != (b[1] > y):
            x_cross = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if x < x_cross:
                inside = not inside
        j = i
    return inside


def distance_to_polygon_m(point: LngLat, ring: Sequence[Sequence[float]]) -> float:
    """How far outside the ring a point lies (0 inside): for an error message a member can act on."""
    if point_in_polygon(point, ring):
        return 0.0
    pts = [(float(p[0]), float(p[1])) for p in ring]
    lat0 = math.radians(point[1])
    kx = math.cos(lat0) * math.pi * EARTH_RADIUS_M / 180  # metres per degree of longitude here
    ky = math.pi * EARTH_RADIUS_M / 180

    def xy(p: LngLat) -> tuple[float, float]:
        return (p[0] - point[0]) * kx, (p[1] - point[1]) * ky

    best = math.inf
    for a, b in zip(pts, pts[1:] + pts[:1], strict=True):
        (ax, ay), (bx, by) = xy(a), xy(b)
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def centroid(points: Iterable[LngLat]) -> LngLat:
    """Mean of a few nearby points (hot-spot centre); fine at grid scale."""
    pts = list(points)
    if not pts:
        raise ValueError("centroid of no points")
    return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)


def path_length_m(points: Sequence[LngLat]) -> float:
    """Length of a patrol route."""
    return sum(distance_m(a, b) for a, b in zip(points, points[1:], strict=False))
