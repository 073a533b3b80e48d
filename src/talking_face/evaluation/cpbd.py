"""CPBD sharpness: the Cumulative Probability of Blur Detection of Narvekar and Karam (IEEE TIP, 2011).

A no-reference metric in [0, 1], higher is sharper. Canny edges decide which 64x64 blocks hold edges; the
Sobel edges with a mostly horizontal gradient are where edge widths are measured, along the image row
(Marziliano's method: from the local extremum before the edge to the one after it). Each width w, against
the just-noticeable-blur width w_JNB of its block's contrast, gives the probability that a viewer detects
blur there, P = 1 - exp(-|w / w_JNB|^beta); CPBD is the fraction of edges with P <= P_JNB.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2gray
from skimage.feature import canny
from skimage.util import img_as_float

BLOCK_SIZE = 64
EDGE_BLOCK_FRACTION = 0.002  # a block is an edge block when more than this fraction of its pixels are edges
BETA = 3.6
# The paper's "63%" is the blur probability at w = w_JNB exactly, 1 - 1/e; an edge at the JNB width is
# therefore counted as not noticeably blurred (as the reference's 1%-bin histogram also does).
P_JNB = 1.0 - math.exp(-1.0)
CONTRAST_SPLIT = 50  # grey levels (0-255): block contrast <= 50 gives w_JNB = 5, higher contrast w_JNB = 3
CANNY_SIGMA = math.sqrt(2.0)
# Widths are measured along rows, so only edges whose gradient lies within 22.5 degrees of horizontal
# count (the reference quantizes gradient angles to multiples of 45 degrees and keeps 0 and 180).
MAX_SLOPE = math.tan(math.radians(22.5))


def cpbd_sharpness(
    image: np.ndarray,
    block_size: int = BLOCK_SIZE,
    edge_block_fraction: float = EDGE_BLOCK_FRACTION,
    beta: float = BETA,
    p_jnb: float = P_JNB,
) -> float:
    """CPBD of one image: fraction (0 to 1, unitless) of edge pixels whose blur is below the JNB.

    `image` is RGB [H, W, 3] or grey [H, W], uint8 or float in [0, 1]. Blocks at the right and bottom
    borders may be smaller than `block_size`; their edge-pixel threshold scales with their area. Returns
    NaN when the image has no measurable edge (a flat image is neither sharp nor blurred).
    """
    grey = _grey_levels(image)
    canny_edges = _canny_edges(grey)
    widths = edge_widths(grey)
    height, width = grey.shape
    width_limit = (-math.log(1.0 - p_jnb)) ** (1.0 / beta)  # P(w) <= p_jnb  <=>  w / w_JNB <= width_limit
    sharp = total = 0
    for y in range(0, height, block_size):
        for x in range(0, width, block_size):
            block = (slice(y, y + block_size), slice(x, x + block_size))
            n_pixels = canny_edges[block].size
            if canny_edges[block].sum() <= edge_block_fraction * n_pixels:
                continue
            block_widths = widths[block][widths[block] > 0]
            contrast = grey[block].max() - grey[block].min()
            width_jnb = 5.0 if contrast <= CONTRAST_SPLIT else 3.0
            sharp += int(np.count_nonzero(block_widths / width_jnb <= width_limit + 1e-9))
            total += block_widths.size
    return sharp / total if total else float("nan")


def edge_widths(grey: np.ndarray) -> np.ndarray:
    """Edge width in pixels at each Sobel edge pixel (0 elsewhere), measured along the row.

    Edge pixels: the squared horizontal Sobel response above 4x its image mean (MATLAB's automatic
    cutoff), thinned to row-wise maxima, keeping pixels whose gradient is within 22.5 degrees of
    horizontal. The width runs from the start to the end of the monotonic intensity ramp through the pixel.
    """
    grad_x = ndi.sobel(grey, axis=1)
    grad_y = ndi.sobel(grey, axis=0)
    strength = grad_x**2
    left = np.pad(strength, ((0, 0), (1, 0)))[:, :-1]
    right = np.pad(strength, ((0, 0), (0, 1)))[:, 1:]
    edges = (
        (strength > 4.0 * strength.mean())
        & (strength > left)
        & (strength >= right)
        & (np.abs(grad_y) <= MAX_SLOPE * np.abs(grad_x))
    )
    steps = np.diff(grey, axis=1)
    rise_start, rise_end = _run_bounds(steps > 0)
    fall_start, fall_end = _run_bounds(steps < 0)
    widths = np.where(grad_x > 0, rise_end - rise_start, fall_end - fall_start)
    return np.where(edges, widths, 0).astype(np.float64)


def _run_bounds(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a row-wise step mask [H, W-1], the first and last pixel of the run of steps through each pixel.

    A pixel x belongs to the run when the step into it (x-1 -> x) or out of it (x -> x+1) is in the mask;
    otherwise start = end = x. Computed with running minima and maxima instead of walking each edge.
    """
    height, n_steps = steps.shape
    columns = np.arange(n_steps + 1)
    stop = np.ones((height, 1), dtype=bool)
    # Step into pixel x is steps[x-1]; the run starts at the last pixel x whose incoming step is not in it.
    not_into = ~np.concatenate([~stop, steps], axis=1)
    start = np.maximum.accumulate(np.where(not_into, columns, 0), axis=1)
    # Step out of pixel x is steps[x]; the run ends at the first pixel x whose outgoing step is not in it.
    not_out = ~np.concatenate([steps, ~stop], axis=1)
    end = np.minimum.accumulate(np.where(not_out, columns, n_steps)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def _grey_levels(image: np.ndarray) -> np.ndarray:
    """Grey image as float64 in 0-255 grey levels (the scale of the paper's contrast threshold)."""
    image = np.asarray(image)
    if image.ndim == 3:
        grey = rgb2gray(image)
    elif image.ndim == 2:
        grey = img_as_float(image)
    else:
        raise ValueError(f"CPBD needs an [H, W] or [H, W, 3] image, got shape {image.shape}")
    return grey.astype(np.float64) * 255.0


def _canny_edges(grey: np.ndarray) -> np.ndarray:
    """Canny edges with MATLAB's automatic thresholds: high = 70th percentile of the gradient, low = 0.4x."""
    smoothed = ndi.gaussian_filter(grey, CANNY_SIGMA)
    magnitude = np.hypot(ndi.sobel(smoothed, axis=0), ndi.sobel(smoothed, axis=1))
    high = float(np.percentile(magnitude, 70))
    if high <= 0:
        return np.zeros(grey.shape, dtype=bool)
    return canny(grey, sigma=CANNY_SIGMA, low_threshold=0.4 * high, high_threshold=high)
