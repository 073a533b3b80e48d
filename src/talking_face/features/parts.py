"""Where a talking face moves: the eyes and the mouth with the jaw below it, as a soft map on a face crop.

    parts = moving_parts(landmarks[0], S)    # float32 [S, S] in [0, 1], 1 on the eyes, the mouth and the chin

The map caps the composite head's mask (`models.generator`, `mask_region: parts`): in training from the
source frame's landmarks, in generation from the user's photo's (`serving.parts`), so nothing outside the
eyes, the mouth and the chin changes (hair, background, cheeks: painting there only adds the training
speakers' looks and blurs against head motion that speech cannot tell). Training also weighs the mask's
sparsity by 1 - parts, so the mask is free where speech and blinks change the face. At generation the mouth
region can be scaled down (`mouth_strength`): the mask and the lips' motion there shrink toward the photo.

    points, shifts = mouth_motion(landmarks)  # float32 [T, P, 2] each: where the mouth and jaw points are
                                              # and the displacement back to the source frame's, in pixels

teach the composite head's warp to move the lips and the jaw the way the speaker's do.

    inside = inner_mouth(landmarks, S)        # float32 [T, S, S] in [0, 1]: inside the inner lips

is where an open mouth shows its dark interior and teeth, which the photo of a closed mouth cannot give.
"""

from __future__ import annotations

import cv2
import numpy as np

from talking_face.features.eyes import eye_blobs

MOUTH = np.arange(48, 68)
CHIN = 8
JAW = np.arange(6, 11)  # the chin and the jaw beside it: it drops when the mouth opens
INNER_LIPS = np.arange(60, 68)
NOSE = np.arange(27, 36)  # the nose does not move with speech: its shift is the head's
WIDTH_MARGIN = 0.75  # the mouth region's half-width, as a fraction of the mouth's width (corner to corner)
REACH = 1.25  # the map falls off as a Gaussian of the normalised distance and is cut at this many half-axes


def mouth_region(points: np.ndarray, size: int) -> np.ndarray:
    """float32 [size, size]: an ellipse centred on the mouth, as wide as the mouth plus margins and reaching
    the chin below (the jaw drops when the mouth opens), 1 inside its half-axes and falling off outside."""
    points = np.asarray(points, dtype=np.float64)
    mouth = points[MOUTH]
    centre = mouth.mean(0)
    half_width = max(WIDTH_MARGIN * np.linalg.norm(mouth[0] - mouth[6]), 1.0)
    half_height = max(points[CHIN, 1] - centre[1], half_width / 2)
    grid = np.arange(size, dtype=np.float64)
    distance = np.sqrt(((grid[None, :] - centre[0]) / half_width) ** 2 + ((grid[:, None] - centre[1]) / half_height) ** 2)
    region = np.exp(-0.5 * np.maximum(distance - 1.0, 0.0) ** 2 / 0.25)
    return np.where(distance <= REACH, region, 0.0).astype(np.float32)


def moving_parts(points: np.ndarray, size: int, mouth_strength: float = 1.0) -> np.ndarray:
    """float32 [size, size] in [0, 1]: the eyes (`features.eyes.eye_blobs`) and the mouth region of one
    frame's 68 landmarks (x, y in pixels of a size x size crop), the mouth region scaled by `mouth_strength`
    (generation's calibrated strength, `evaluation.calibration`; training uses 1)."""
    return np.maximum(eye_blobs(points, size), mouth_strength * mouth_region(points, size))


def mouth_motion(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lip and jaw points of every frame with the head's motion since frame 0 taken out [T, P, 2]
    (P = 25, pixels of the crop; the head's motion is the nose's mean displacement) and the displacement
    from each back to the same point in frame 0 [T, P, 2]: a backward warp of frame 0 by that displacement at
    those points moves its lips and jaw into the frame's shape. The head's own motion cannot be told from
    speech, so it is left out."""
    points = np.asarray(points, dtype=np.float32)
    head = (points[:1, NOSE] - points[:, NOSE]).mean(1, keepdims=True)
    moving = points[:, np.concatenate([MOUTH, JAW])] + head
    return moving, (moving[:1] - moving).astype(np.float32)


def inner_mouth(landmarks: np.ndarray, size: int) -> np.ndarray:
    """float32 [T, size, size] in [0, 1]: each frame's inner-lip polygon (points 60-67), anti-aliased, so
    a mouth a pixel open still counts in part."""
    subpixel = 4  # fillPoly's fractional bits: the lips move by less than a pixel at 64 px
    inside = np.zeros((len(landmarks), size, size), dtype=np.uint8)
    for frame, points in zip(inside, np.asarray(landmarks, dtype=np.float64)):
        polygon = np.round(points[INNER_LIPS] * 2**subpixel).astype(np.int32)
        cv2.fillPoly(frame, [polygon], 255, lineType=cv2.LINE_AA, shift=subpixel)
    return inside.astype(np.float32) / 255.0
