"""A user's photo in, the model's face crop out, and generated crops pasted back into the photo.

The crop follows the training data exactly (features.extract): dlib's face box, widened to a square of side
(1 + 2 * crop_margin) * box side (`face.track.square_boxes`), resized to crop_size (`face.track.crop_square`).
Pasting back works at the photo's own resolution, as the composite head composes the crop: the photo's face
box is warped by the generator's motion field (upsampled, in photo pixels) and the painted pixels enter only
where its mask (upsampled, feathered) is on, so wherever nothing moves the output is the sharp photo itself.
Mask and motion fade out through a feathered ellipse, so nothing changes at the square's edges. (The
direct head's mask is all ones: its whole crop is blended in through the ellipse.) Where the mask is on
but the painted pixels barely differ from the warped photo seen at the crop's resolution, the photo's own
finer detail is kept on top of them, fading out as the painted change grows (an open mouth is the model's
own): a 64-pixel crop pasted into a 512-pixel photo would otherwise blur the whole of its mask.
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
# Painted change (grey levels, 0-255) at which the photo's finer-than-the-crop detail is fully replaced.
DETAIL_FADE = 32.0


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


def whole_photo(image: np.ndarray, crop_size: int) -> FacePhoto:
    """A square image that already is the face crop (a feature file's frames) as the photo to animate."""
    box = np.array([0, 0, image.shape[1], image.shape[0]], dtype=np.float32)
    return FacePhoto(image, box, crop_square(image, box, crop_size))


class PasteBack:
    """Composes generated frames (anything with `painted`, `mask` and `motion`, e.g. serving.animate's
    GeneratedFrame) into the photo at the face's crop box, at the photo's resolution."""

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
        self.weight = feather_mask(self.side, feather)[self.inside]
        # Photo coordinates of the region's pixels: where the motion field samples the photo from.
        self.xs, self.ys = np.meshgrid(np.arange(cols.start, cols.stop), np.arange(rows.start, rows.stop))
        self.xs, self.ys = self.xs.astype(np.float32), self.ys.astype(np.float32)

    def _to_box(self, image: np.ndarray, interpolation: int) -> np.ndarray:
        """A crop-sized map resized to the crop box, cut to the part inside the photo."""
        return cv2.resize(image, (self.side, self.side), interpolation=interpolation)[self.inside]

    @staticmethod
    def _kept_detail(warped: np.ndarray, painted: np.ndarray, scale: float, on: tuple[slice, slice]) -> np.ndarray:
        """The warped photo's detail finer than the crop (itself minus its copy at the crop's resolution) in the
        region `on` (`painted` is that region), faded out where the painted pixels differ from that copy by
        DETAIL_FADE grey levels or more."""
        if scale <= 1:
            return np.zeros_like(painted)
        height, width = warped.shape[:2]
        small = (max(1, round(width / scale)), max(1, round(height / scale)))
        coarse = cv2.resize(cv2.resize(warped, small, interpolation=cv2.INTER_AREA), (width, height),
                            interpolation=cv2.INTER_CUBIC)[on]  # fmt: skip
        difference = cv2.absdiff(painted, coarse)
        # The largest channel, pairwise: numpy's max over a 3-long last axis cost 15x more (10 ms at 720 px).
        change = np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2])[..., None]
        return (warped[on] - coarse) * np.clip(1.0 - change / DETAIL_FADE, 0.0, 1.0)

    def __call__(self, frame) -> np.ndarray:
        """A generated frame (crop size S) -> uint8 [H, W, 3] photo with it composed in at full resolution."""
        scale = self.side / frame.painted.shape[0]
        upsample = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        # One crop pixel of blur removes the upsampled mask's steps: taken at the crop's size, where it costs
        # 1/scale^2 of the same blur at the box's; replicated borders keep an all-ones mask one. Not upsampled
        # (a crop composed at its own size), the mask has no steps, and a blur would thin a blink's lids.
        mask = frame.mask
        if scale > 1:
            mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.0, borderType=cv2.BORDER_REPLICATE)
        mask = np.clip(self._to_box(mask, cv2.INTER_LINEAR), 0.0, 1.0) * self.weight
        warped = self.background
        if np.any(frame.motion):
            motion = self._to_box(frame.motion * scale, cv2.INTER_LINEAR) * self.weight[..., None]
            map_x, map_y = self.xs + motion[..., 0], self.ys + motion[..., 1]
            warped = cv2.remap(self.photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            warped = warped.astype(np.float32)
        composed = warped.copy()
        # Painted pixels only count where the mask is on (the mouth and eyes): composed there, not over the box.
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            on = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            painted = self._to_box(frame.painted, upsample)[on].astype(np.float32)
            detail = self._kept_detail(warped, painted, scale, on)
            composed[on] += mask[on][..., None] * (painted + detail - warped[on])
        out = self.photo.copy()
        out[self.region] = np.clip(composed + 0.5, 0, 255).astype(np.uint8)
        return out
