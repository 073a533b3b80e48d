"""A user's photo in, the model's face crop out, and generated crops pasted back into the photo.

The crop follows the training data exactly (features.extract): dlib's face box, widened to a square of side
(1 + 2 * crop_margin) * box side (`face.track.square_boxes`), resized to crop_size (`face.track.crop_square`).
Pasting back resizes a generated crop to that square and blends it in through a feathered ellipse, so the
seam fades over the crop margin instead of showing the square's edges.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talking_face.face.detect import detect_faces
from talking_face.face.track import crop_square, square_boxes
from talking_face.media.errors import MediaError

logger = logging.getLogger(__name__)

# dlib's HOG detector gets slow on big photos; faces are found on a copy at most this large.
DETECT_MAX_SIDE = 1024


def decode_image(data: bytes, name: str | os.PathLike = "image") -> np.ndarray:
    """Encoded image bytes (jpg, png, bmp, webp, tiff, ...) -> RGB uint8 [H, W, 3], EXIF orientation applied."""
    if not data:
        raise MediaError(name, "image file is empty (0 bytes)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(name, "not a readable image (OpenCV cannot decode it)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image file as RGB uint8 [H, W, 3]; MediaError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file does not exist" if not path.exists() else "not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise MediaError(path, f"file cannot be read ({error.strerror or error.__class__.__name__})") from None
    return decode_image(data, path)


def find_face(image: np.ndarray, name: str | os.PathLike = "image", max_side: int = DETECT_MAX_SIDE) -> np.ndarray:
    """dlib's box (x0, y0, x1, y1, float32, photo pixels) of the largest face; warns when there are several."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = detect_faces(small, upsample_if_missing=True) / scale
    if len(boxes) == 0:
        raise MediaError(name, "no face found in the image")
    if len(boxes) > 1:
        logger.warning("%s: %d faces found, animating the largest", name, len(boxes))
    return boxes[0]


@dataclass(frozen=True)
class FacePhoto:
    """A photo with its face: the square crop box in photo pixels and the model-sized crop."""

    image: np.ndarray  # uint8 [H, W, 3] RGB
    box: np.ndarray  # float32 (x0, y0, x1, y1) square crop box, may reach outside the photo
    crop: np.ndarray  # uint8 [S, S, 3] RGB, the model's input


def face_photo(image: np.ndarray, crop_size: int, crop_margin: float, name: str | os.PathLike = "image") -> FacePhoto:
    """Finds the face and crops it like the training data (features.extract's crop_size and crop_margin)."""
    box = square_boxes(find_face(image, name)[None], crop_margin)[0]
    return FacePhoto(image, box, crop_square(image, box, crop_size))


def feather_mask(side: int, feather: float) -> np.ndarray:
    """float32 [side, side] weights: 1 inside an ellipse on the crop's face area, fading to 0 at the edges.

    The ellipse fills the square minus `feather` of its side on each border, and a Gaussian blur of that
    width softens its edge, so the weight is ~0 where the square's border meets the untouched photo.
    """
    mask = np.zeros((side, side), dtype=np.float32)
    centre = (side - 1) / 2
    axes = (max(1, int(round(side * (0.5 - feather)))),) * 2
    cv2.ellipse(mask, (int(round(centre)), int(round(centre))), axes, 0, 0, 360, 1.0, thickness=-1)
    sigma = max(0.5, feather * side / 2)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


class PasteBack:
    """Pastes generated crops into the photo at the face's crop box, blended through a feathered ellipse."""

    def __init__(self, photo: FacePhoto, feather: float = 0.12):
        x0, y0, x1, y1 = (int(v) for v in photo.box)
        height, width = photo.image.shape[:2]
        self.side = x1 - x0
        # The part of the crop box inside the photo, in photo and in crop-square coordinates.
        rows, cols = slice(max(y0, 0), min(y1, height)), slice(max(x0, 0), min(x1, width))
        self.region = (rows, cols)
        self.inside = (slice(rows.start - y0, rows.stop - y0), slice(cols.start - x0, cols.stop - x0))
        self.photo = photo.image
        self.background = photo.image[self.region].astype(np.float32)
        self.weight = feather_mask(self.side, feather)[self.inside][..., None]

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        """uint8 [S, S, 3] generated crop -> uint8 [H, W, 3] photo with the crop blended in."""
        interpolation = cv2.INTER_AREA if crop.shape[0] > self.side else cv2.INTER_CUBIC
        face = cv2.resize(crop, (self.side, self.side), interpolation=interpolation)[self.inside].astype(np.float32)
        frame = self.photo.copy()
        blended = self.background + self.weight * (face - self.background)
        frame[self.region] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return frame
