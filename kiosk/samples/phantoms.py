"""Phantom pixel images for the synthetic studies (numpy only, no DICOM).

A chest-like CT slice in Hounsfield units (`ct_phantom_hu`), used by the sample
disc's CT and by `kiosk.samples.bulk.write_study`, and a chest radiograph
(`cr_chest`) for the sample disc's CR study. Deterministic except for the
optional noise, which comes from the caller's seeded generator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cr_chest", "ct_phantom_hu"]


def _grid(rows: int, columns: int, fov_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in mm, origin at the image centre."""
    spacing = fov_mm / max(rows, columns)
    y = (np.arange(rows, dtype=np.float32) - (rows - 1) / 2) * spacing
    x = (np.arange(columns, dtype=np.float32) - (columns - 1) / 2) * spacing
    return np.meshgrid(x, y)


def ct_phantom_hu(
    rows: int, columns: int, z_fraction: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A chest-like CT slice in Hounsfield units (float32).

    Air outside, soft-tissue body, two lungs whose size changes along z, a
    spine and ribs (bone), the heart/aorta, and a lung nodule that only shows
    in the middle third of the stack, so slices differ like a real scan.

    Parameters
    ----------
    rows, columns : int
        Image size in pixels.
    z_fraction : float
        Position in the stack, 0 (top) to 1 (bottom).
    rng : numpy.random.Generator, optional
        When given, adds mild quantum-like noise (sigma 8 HU).
    """
    x, y = _grid(rows, columns, 350.0)
    img = np.full((rows, columns), -1000.0, dtype=np.float32)

    def ellipse(cx: float, cy: float, a: float, b: float) -> np.ndarray:
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0

    img[ellipse(0, 10, 160, 115)] = -90.0  # subcutaneous fat
    img[ellipse(0, 10, 148, 104)] = 40.0  # muscle / soft tissue
    lung_a = 45 + 20 * np.sin(np.pi * z_fraction)  # lungs widest mid-chest
    img[ellipse(-75, 0, lung_a, 80)] = -850.0
    img[ellipse(75, 0, lung_a, 80)] = -850.0
    if 0.3 < z_fraction < 0.9:  # heart appears below the arch
        img[ellipse(15, -5, 45, 40)] = 45.0
    img[ellipse(-15, 35, 14, 14)] = 160.0  # aorta, contrast-enhanced
    img[ellipse(0, 85, 20, 18)] = 700.0  # vertebral body
    ring = ellipse(0, 10, 140, 98) & ~ellipse(0, 10, 132, 90) & (np.abs(y - 10) > 40)
    img[ring] = 500.0  # rib arcs
    if 0.35 < z_fraction < 0.65:  # a solid nodule in the right lung
        r = 12 * np.sin(np.pi * (z_fraction - 0.35) / 0.3) + 1
        img[ellipse(-75, -25, r, r)] = 30.0
    if rng is not None:
        img += rng.normal(0.0, 8.0, img.shape).astype(np.float32)
    return img


def cr_chest(rows: int, columns: int, lateral: bool) -> np.ndarray:
    """A chest radiograph-like image, 12-bit, MONOCHROME2 (bone is bright)."""
    x, y = _grid(rows, columns, 430.0)
    img = np.full((rows, columns), 150.0, dtype=np.float32)  # direct exposure

    def ellipse(cx: float, cy: float, a: float, b: float) -> np.ndarray:
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0

    if lateral:
        img[ellipse(0, 20, 130, 200)] = 1700.0
        img[ellipse(-10, -10, 90, 150)] = 900.0  # lungs superimposed
        img[ellipse(25, 40, 55, 65)] = 1900.0  # heart
        img[ellipse(105, 20, 16, 170) & ellipse(0, 20, 130, 200)] = 2500.0  # spine
    else:
        img[ellipse(0, 20, 190, 200)] = 1700.0  # soft tissue
        img[ellipse(-85, -10, 70, 150)] = 850.0
        img[ellipse(85, -10, 70, 150)] = 850.0
        img[ellipse(20, 60, 75, 70)] = 1950.0  # heart, left of patient
        img[(np.abs(x) < 14) & ellipse(0, 20, 190, 200)] = 2300.0  # spine
        ribs = (np.sin((y + 0.0008 * x**2) / 11.0) > 0.85) & ellipse(0, -10, 170, 170)
        img[ribs] += 600.0
    # Smooth heel-effect gradient, like a real detector exposure.
    img *= 1.0 + 0.08 * (y / float(np.abs(y).max() or 1.0))
    return np.clip(img, 0, 4095).astype(np.uint16)
