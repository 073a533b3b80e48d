"""A talking head from one photograph: speaker looks of the astronaut portrait and a landmark-driven warp rig.

The rig moves the photo's own dlib landmarks (lower lip and jaw down to open the mouth, upper eyelids down
to blink), turns those point moves into a smooth thin-plate-spline displacement field and resamples the
portrait with cv2.remap; the newly opened gap between the lips is painted as a dark mouth interior.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from skimage import data

from talking_face.face.detect import detect_faces, landmarks

# dlib 68-point indices.
LOWER_LIP_OUTER, LOWER_LIP_INNER, MOUTH_CORNERS = (55, 56, 57, 58, 59), (65, 66, 67), (48, 54, 60, 64)
EYES = (((36, 37, 38, 39, 40, 41), range(17, 22)), ((42, 43, 44, 45, 46, 47), range(22, 27)))  # (lids, brow)
# How far each jaw point drops relative to the lower lip when the mouth opens (chin drops most).
JAW_DROP = {3: 0.1, 4: 0.25, 5: 0.45, 6: 0.7, 7: 0.9, 8: 1.0, 9: 0.9, 10: 0.7, 11: 0.45, 12: 0.25, 13: 0.1}
MAX_OPENING = 0.32  # widest lip gap, as a fraction of the mouth width
MOUTH_INTERIOR = np.array([52, 18, 24], dtype=np.float32)
GRID_STEP = 2  # the mouth field is evaluated on a coarse grid and upsampled: 4x fewer spline evaluations


@dataclass(frozen=True)
class FaceLook:
    """How one speaker variant shows the photo: framing, mirror and colour."""

    frame_size: int = 256
    face_width: float = 0.42  # width of dlib's face box as a fraction of the frame
    offset: tuple[float, float] = (0.0, 0.0)  # face-centre offset from the frame centre, fraction of frame
    tilt_deg: float = 0.0
    mirror: bool = False
    channel_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance
    saturation: float = 1.0
    gamma: float = 1.0


@lru_cache(maxsize=1)
def _photo_and_face_box() -> tuple[np.ndarray, np.ndarray]:
    photo = data.astronaut()
    boxes = detect_faces(photo)
    if len(boxes) == 0:
        raise RuntimeError("skimage.data.astronaut(): dlib finds no face in the photo")
    return photo, boxes[0]


def _recolour(image: np.ndarray, look: FaceLook) -> np.ndarray:
    rgb = image.astype(np.float32) / 255.0
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    rgb = grey[..., None] + look.saturation * (rgb - grey[..., None])
    rgb = np.clip(rgb * np.asarray(look.channel_gains, dtype=np.float32), 0.0, 1.0) ** look.gamma
    return np.round(rgb * 255.0).astype(np.uint8)


def portrait(look: FaceLook) -> np.ndarray:
    """The still frame of a speaker variant: the astronaut photo reframed, recoloured and maybe mirrored."""
    photo, box = _photo_and_face_box()
    size = look.frame_size
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    scale = look.face_width * size / (box[2] - box[0])
    matrix = cv2.getRotationMatrix2D(centre, look.tilt_deg, scale)
    target = (size * (0.5 + look.offset[0]), size * (0.5 + look.offset[1]))
    matrix[:, 2] += np.array(target) - np.array(centre)
    framed = cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    framed = _recolour(framed, look)
    return np.ascontiguousarray(framed[:, ::-1]) if look.mirror else framed


class FaceRig:
    """Renders a portrait with a given mouth opening (0..1), eye closure (0..1) and head pose."""

    def __init__(self, image: np.ndarray, points: np.ndarray):
        self.image = image
        self.points = points.astype(np.float64)
        height, width = image.shape[:2]
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        face_w, face_h = x1 - x0, y1 - y0
        # The warp lives in a box around the face; its border and far points stay fixed.
        self.roi = (
            int(max(0, x0 - 0.35 * face_w)),
            int(max(0, y0 - 0.5 * face_h)),
            int(min(width, x1 + 0.35 * face_w)),
            int(min(height, y1 + 0.6 * face_h)),
        )
        self.mouth_width = float(np.linalg.norm(points[54] - points[48]))
        self._anchors = self._border_anchors()
        self._mouth = self._mouth_moves()
        self._eyes = [self._eye_geometry(lids, brow) for lids, brow in EYES]
        self._identity = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).astype(np.float32)
        x0, y0, x1, y1 = self.roi
        nodes_x, nodes_y = np.arange(x0, x1 + GRID_STEP, GRID_STEP), np.arange(y0, y1 + GRID_STEP, GRID_STEP)
        self._coarse_nodes = np.stack(np.meshgrid(nodes_x, nodes_y), axis=-1)
        # Where each ROI pixel falls on the coarse grid, for exact bilinear upsampling of the field.
        self._coarse_coords = ((self._identity[y0:y1, x0:x1] - (x0, y0)) / GRID_STEP).astype(np.float32)

    def _border_anchors(self) -> np.ndarray:
        x0, y0, x1, y1 = self.roi
        xs, ys = np.linspace(x0, x1 - 1, 9), np.linspace(y0, y1 - 1, 9)
        border = [(x, y0) for x in xs] + [(x, y1 - 1) for x in xs] + [(x0, y) for y in ys] + [(x1 - 1, y) for y in ys]
        return np.unique(np.array(border, dtype=np.float64), axis=0)  # corners appear twice

    def _mouth_moves(self) -> np.ndarray:
        """Per landmark displacement [68, 2] at full mouth opening: lower lip and jaw drop."""
        p = self.points
        drop = MAX_OPENING * self.mouth_width
        mouth = np.zeros_like(p)
        for i in LOWER_LIP_OUTER + LOWER_LIP_INNER:
            mouth[i, 1] = drop
        for i, weight in JAW_DROP.items():
            mouth[i, 1] = drop * weight
        centre_x = (p[48, 0] + p[54, 0]) / 2
        for i in MOUTH_CORNERS:
            mouth[i] = (0.06 * (centre_x - p[i, 0]), 0.2 * drop)  # corners draw in and down a little
        return mouth

    def _eye_geometry(self, lid_ids, brow_ids) -> dict:
        """Per pixel column across one eye: heights of the brow, the upper and the lower lid."""
        p = self.points
        corner_a, upper_a, upper_b, corner_b, lower_b, lower_a = (p[i] for i in lid_ids)
        left, right = sorted((corner_a[0], corner_b[0]))
        xs = np.arange(int(np.ceil(left)), int(np.floor(right)) + 1)
        # Parabolas through the corners and lid points give smooth lid curves (lens-shaped eye opening).
        upper = np.polyval(np.polyfit(*np.array([corner_a, upper_a, upper_b, corner_b]).T, 2), xs)
        lower = np.polyval(np.polyfit(*np.array([corner_a, lower_a, lower_b, corner_b]).T, 2), xs)
        brow = p[list(brow_ids)]
        brow = np.interp(xs, *brow[np.argsort(brow[:, 0])].T)
        return {"xs": xs, "upper": upper, "gap": np.maximum(lower - upper, 0.0), "crease": (brow + upper) / 2}

    def _add_blink(self, field: np.ndarray, closure: float) -> None:
        """Closes the eyes: the upper lid slides down over the eye and the skin above it stretches.

        Output pixels above the moved lid line read from higher up in the photo; the eye below it is untouched.
        """
        for eye in self._eyes:
            travel = closure * eye["gap"]
            crease, upper = eye["crease"][None, :], eye["upper"][None, :]
            top, bottom = int(np.floor(crease.min())), int(np.ceil((upper + travel).max())) + 1
            ys = np.arange(top, bottom)[:, None].astype(np.float64)
            stretch = travel * np.clip((ys - crease) / np.maximum(upper - crease, 1.0), 0.0, 1.0)
            shift = np.where(ys <= upper + travel, stretch, 0.0)
            field[top:bottom, eye["xs"][0] : eye["xs"][-1] + 1, 1] -= shift.astype(np.float32)

    def _backward_field(self, opening: float, closure: float) -> np.ndarray:
        """Source coordinates [H, W, 2] for every output pixel."""
        field = self._identity.copy()
        if opening > 0:
            # Exact inverse of the mouth move: the spline is fitted at the moved points, valued by the way back.
            moves = np.concatenate([opening * self._mouth, np.zeros_like(self._anchors)])
            targets = np.concatenate([self.points, self._anchors]) + moves
            nodes = self._coarse_nodes
            coarse = RBFInterpolator(targets, -moves, kernel="thin_plate_spline")(nodes.reshape(-1, 2))
            coarse = coarse.reshape(*nodes.shape[:2], 2).astype(np.float32)
            x0, y0, x1, y1 = self.roi
            coords = self._coarse_coords
            field[y0:y1, x0:x1] += cv2.remap(coarse, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR)
        if closure > 0:
            self._add_blink(field, closure)
        return field

    def _mouth_mask(self, opening: float) -> np.ndarray:
        """Coverage [H, W] of the newly opened gap between the lips, the part of the mouth that was hidden."""
        p = self.points
        moved = p + opening * self._mouth
        gap = np.concatenate([moved[[60]], p[[67, 66, 65]], moved[[64, 65, 66, 67]]])
        mask = np.zeros(self.image.shape[:2], dtype=np.float32)
        cv2.fillPoly(mask, [np.round(gap * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
        # A barely parted mouth shows a thin shadow rather than a black line.
        return cv2.GaussianBlur(mask, (0, 0), 0.8) * min(1.0, opening * self._mouth[66, 1] / 2.0)

    def render(self, opening: float, closure: float, shift=(0.0, 0.0), angle_deg: float = 0.0) -> np.ndarray:
        """One RGB frame: the warped portrait, its mouth interior painted, moved rigidly by the head pose."""
        field = self._backward_field(float(opening), float(closure))
        mask = self._mouth_mask(float(opening)) if opening > 0 else None
        if shift != (0.0, 0.0) or angle_deg:
            # The head pose is composed into the field so the photo is resampled only once.
            height, width = field.shape[:2]
            matrix = cv2.getRotationMatrix2D(tuple(self.points[30]), angle_deg, 1.0)
            matrix[:, 2] += shift
            field = cv2.warpAffine(field, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
            if mask is not None:
                mask = cv2.warpAffine(mask, matrix, (width, height))
        frame = cv2.remap(self.image, field[..., 0], field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if mask is not None:
            frame = np.round(frame * (1 - mask[..., None]) + MOUTH_INTERIOR * mask[..., None]).astype(np.uint8)
        return frame


@lru_cache(maxsize=8)
def face_rig(look: FaceLook) -> FaceRig:
    """The rig of a speaker variant, its landmarks found once with dlib on the still portrait."""
    image = portrait(look)
    boxes = detect_faces(image)
    if len(boxes) == 0:
        raise ValueError(f"speaker look {look}: dlib finds no face in the portrait (face_width too small?)")
    return FaceRig(image, landmarks(image, boxes[0]))
