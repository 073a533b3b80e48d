"""dlib landmarks for a whole frame sequence, computed once and shared by LMD, blinks, sync and identity."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talking_face.evaluation.metrics import whole_image_box
from talking_face.face import detect

TRACK_SIZE = 256  # frames are landmarked at this size: dlib's detector misses faces much under 80 pixels


@dataclass(frozen=True)
class LandmarkTrack:
    """Per-frame face boxes and 68 landmarks, in the pixels of the frames given to `track_landmarks`."""

    landmarks: np.ndarray  # float32 [T, 68, 2] (x, y)
    boxes: np.ndarray  # float32 [T, 4] (x0, y0, x1, y1) the landmarks were fitted in
    detected: np.ndarray  # bool [T]: the box came from a detection (on this frame or the last one run), not a fallback

    @property
    def detected_fraction(self) -> float:
        return float(self.detected.mean()) if len(self.detected) else 0.0


def track_landmarks(frames: np.ndarray, redetect_every: int = 1) -> LandmarkTrack:
    """dlib's 68 points on every frame of a face-crop sequence [T, H, W, 3].

    The face is detected on every `redetect_every`-th frame (1: every frame) and the last box is reused in
    between. A frame where the detector finds no face falls back to the previous frame's box, or to the
    whole frame when no earlier frame had a face (a generated crop is mostly face, so the shape predictor
    still lands close). A frame identical to the previous one reuses its result, which makes a
    static-frame sequence cost one frame. Frames whose side is not 256 are resized to 256 for dlib and the
    points are mapped back.
    """
    frames = np.asarray(frames)
    count, height, width = frames.shape[:3]
    scale = np.array([TRACK_SIZE / width, TRACK_SIZE / height], dtype=np.float32)
    landmarks = np.zeros((count, 68, 2), dtype=np.float32)
    boxes = np.zeros((count, 4), dtype=np.float32)
    detected = np.zeros(count, dtype=bool)
    box = None
    for index in range(count):
        if index and np.array_equal(frames[index], frames[index - 1]):
            landmarks[index], boxes[index] = landmarks[index - 1], boxes[index - 1]
            detected[index] = detected[index - 1]
            continue
        image = _at_track_size(frames[index])
        if box is None or index % max(1, int(redetect_every)) == 0:
            found = detect.detect_faces(image, upsample_if_missing=False)
            detected[index] = len(found) > 0
            box = found[0] if len(found) else (box if box is not None else whole_image_box(image))
        else:
            detected[index] = detected[index - 1]
        landmarks[index] = detect.landmarks(image, box) / scale
        boxes[index] = box / np.tile(scale, 2)
    return LandmarkTrack(landmarks=landmarks, boxes=boxes, detected=detected)


def _at_track_size(frame: np.ndarray) -> np.ndarray:
    if frame.shape[:2] == (TRACK_SIZE, TRACK_SIZE):
        return frame
    return cv2.resize(frame, (TRACK_SIZE, TRACK_SIZE), interpolation=cv2.INTER_LINEAR)
