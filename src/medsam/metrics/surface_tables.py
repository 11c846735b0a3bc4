"""Surface-element tables: the boundary length (2D) or area (3D) that each
2x2 (2x2x2) neighbourhood of a binary mask contributes.

This follows the surface-element ("surfel") definition of DeepMind's
``surface-distance`` library, which MedSAM's evaluation uses: the boundary
is the marching-squares (marching-cubes) iso-line (iso-surface) through the
midpoints of the edges between inside and outside pixels (voxels), and each
neighbourhood position with a mixed configuration is one surface element whose
weight is the length (area) of the piece of boundary inside it, in mm (mm^2).

The tables are generated here from geometry, not copied:

* the boundary pieces of a configuration are the closed loops through the
  midpoints of the edges whose two corners differ, walking face by face;
* a face with two diagonal inside corners is ambiguous; the corners of the
  minority class (inside when at most four of the eight corners are inside,
  outside otherwise) are cut off separately, as the classic marching-cubes
  table does;
* a non-planar loop is split into the triangles of its largest-area
  triangulation (again the choice of the classic table).

With these two rules all 256 configurations reproduce DeepMind's table for
any spacing (``tests/metrics/test_surface_tables.py`` checks every code
against the reference package at several anisotropic spacings).

Neighbourhood codes: the corner at offset ``(a, b)`` (2D) has bit
``2 ** (3 - (2a + b))``, the corner at ``(a, b, c)`` (3D) bit
``2 ** (7 - (4a + 2b + c))``; offsets are in array axis order.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["corner_bit", "contour_length_table", "surface_area_table", "unit_triangle_normals"]


def corner_bit(offset: Sequence[int]) -> int:
    """Bit of the corner at ``offset`` (0/1 per axis) in a neighbourhood code."""
    n = len(offset)
    index = sum(int(o) << (n - 1 - i) for i, o in enumerate(offset))
    return 1 << ((1 << n) - 1 - index)


def _corners(ndim: int) -> list[tuple[int, ...]]:
    return list(itertools.product((0, 1), repeat=ndim))


def _edge(p: tuple[int, ...], q: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return (p, q) if p < q else (q, p)


def _face_cycles() -> list[list[tuple[int, int, int]]]:
    """The six faces of the unit cube, each as its four corners in cyclic order."""
    faces = []
    for axis in range(3):
        for value in (0, 1):
            u, v = [a for a in range(3) if a != axis]
            cycle = []
            for du, dv in ((0, 0), (0, 1), (1, 1), (1, 0)):
                c = [0, 0, 0]
                c[axis], c[u], c[v] = value, du, dv
                cycle.append((c[0], c[1], c[2]))
            faces.append(cycle)
    return faces


def _face_segments(cycle: Sequence[tuple[int, ...]], inside: Mapping[tuple[int, ...], bool],
                   separate_inside: bool) -> list[tuple[tuple, tuple]]:
    """Pairs of crossed edges joined by the boundary across one face."""
    edges = [_edge(cycle[i], cycle[(i + 1) % 4]) for i in range(4)]
    crossed = [e for e in edges if inside[e[0]] != inside[e[1]]]
    if len(crossed) == 2:
        return [(crossed[0], crossed[1])]
    if len(crossed) == 4:
        # Cut off the two corners of the class to separate: corner k lies
        # between edges k-1 and k of the cycle.
        k = 0 if inside[cycle[0]] == separate_inside else 1
        return [(edges[k - 1], edges[k]), (edges[k + 1], edges[(k + 2) % 4])]
    return []


def _loops(code: int) -> list[np.ndarray]:
    """Closed boundary loops of a 3D configuration, as (n, 3) vertex arrays."""
    inside = {c: bool(code & corner_bit(c)) for c in _corners(3)}
    separate_inside = sum(inside.values()) <= 4
    neighbours: dict = {}
    for cycle in _face_cycles():
        for a, b in _face_segments(cycle, inside, separate_inside):
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in neighbours:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = next(n for n in neighbours[cur] if n != prev)
            if nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        loops.append(np.array([np.add(p, q) / 2.0 for p, q in loop]))
    return loops


@functools.lru_cache(maxsize=None)
def _triangulations(n: int) -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """All triangulations of a polygon with vertices 0..n-1 (as index triples)."""

    def between(i: int, j: int) -> list[list[tuple[int, int, int]]]:
        if j - i < 2:
            return [[]]
        out = []
        for k in range(i + 1, j):
            for left in between(i, k):
                for right in between(k, j):
                    out.append(left + right + [(i, k, j)])
        return out

    return tuple(tuple(t) for t in between(0, n - 1))


def _loop_triangle_normals(points: np.ndarray) -> np.ndarray:
    """Area vectors (half cross products) of the largest-area triangulation."""
    best, best_area = None, -1.0
    for tris in _triangulations(len(points)):
        idx = np.array(tris)
        a, b, c = points[idx[:, 0]], points[idx[:, 1]], points[idx[:, 2]]
        normals = 0.5 * np.cross(b - a, c - a)
        area = float(np.linalg.norm(normals, axis=1).sum())
        if area > best_area + 1e-12:
            best, best_area = normals, area
    assert best is not None  # a loop has at least one triangulation
    return best


@functools.lru_cache(maxsize=None)
def unit_triangle_normals() -> tuple[np.ndarray, ...]:
    """For each of the 256 3D codes, the (k, 3) area vectors of its boundary
    triangles for unit spacing (k = 0 for codes 0 and 255)."""
    out = []
    for code in range(256):
        loops = _loops(code)
        normals = [_loop_triangle_normals(p) for p in loops]
        out.append(np.concatenate(normals) if normals else np.zeros((0, 3)))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _surface_area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    s0, s1, s2 = spacing
    scale = np.array([s1 * s2, s0 * s2, s0 * s1])
    table = np.zeros(256)
    for code, normals in enumerate(unit_triangle_normals()):
        table[code] = np.linalg.norm(normals * scale, axis=1).sum()
    table.flags.writeable = False
    return table


def surface_area_table(spacing: Sequence[float]) -> np.ndarray:
    """(256,) surface area in mm^2 of each 2x2x2 code for voxel ``spacing``
    (z, y, x) in mm. Read-only."""
    return _surface_area_table(tuple(float(s) for s in spacing))


@functools.lru_cache(maxsize=64)
def _contour_length_table(spacing: tuple[float, float]) -> np.ndarray:
    half_diagonal = 0.5 * math.hypot(spacing[0], spacing[1])
    table = np.zeros(16)
    for code in range(16):
        inside = [c for c in _corners(2) if code & corner_bit(c)]
        if len(inside) in (1, 3):
            # one corner cut off: a segment between two edge midpoints
            table[code] = half_diagonal
        elif len(inside) == 2:
            (a0, b0), (a1, b1) = inside
            if a0 == a1:  # same row: the boundary runs along axis 1
                table[code] = spacing[1]
            elif b0 == b1:  # same column: along axis 0
                table[code] = spacing[0]
            else:  # diagonal pair: two corners cut off
                table[code] = 2 * half_diagonal
    table.flags.writeable = False
    return table


def contour_length_table(spacing: Sequence[float]) -> np.ndarray:
    """(16,) boundary length in mm of each 2x2 code for pixel ``spacing``
    (y, x) in mm. Read-only."""
    return _contour_length_table(tuple(float(s) for s in spacing))
