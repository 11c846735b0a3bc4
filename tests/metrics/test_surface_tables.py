import numpy as np
import pytest

from medsam.metrics.surface_tables import contour_length_table, surface_area_table, unit_triangle_normals

lookup_tables = pytest.importorskip("surface_distance.lookup_tables")

SPACINGS_3D = [(1.0, 1.0, 1.0), (5.0, 0.314453, 0.314453), (2.5, 0.7, 0.9), (0.3, 1.7, 4.0), (3.0, 3.0, 1.5)]


@pytest.mark.parametrize("spacing", SPACINGS_3D)
def test_every_3d_code_matches_deepmind(spacing):
    ours = surface_area_table(spacing)
    ref = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_random_anisotropic_spacings_3d():
    rng = np.random.default_rng(7)
    for spacing in rng.uniform(0.1, 6.0, size=(10, 3)):
        np.testing.assert_allclose(surface_area_table(spacing),
                                   lookup_tables.create_table_neighbour_code_to_surface_area(spacing),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 2.0), (0.314453, 0.314453), (3.1, 0.2)])
def test_every_2d_code_matches_deepmind(spacing):
    np.testing.assert_allclose(contour_length_table(spacing),
                               lookup_tables.create_table_neighbour_code_to_contour_length(spacing),
                               rtol=1e-12, atol=1e-12)


def test_table_properties():
    normals = unit_triangle_normals()
    assert len(normals) == 256
    assert normals[0].shape == (0, 3) and normals[255].shape == (0, 3)
    table = surface_area_table((1, 1, 1))
    # complementary configurations have the same boundary
    np.testing.assert_allclose(table, table[::-1])
    # one corner cut off: the triangle through three edge midpoints
    assert table[1] == pytest.approx(np.sqrt(3) / 8)
    # half the cube: a unit square
    assert table[0b00001111] == pytest.approx(1.0)
    assert not table.flags.writeable
