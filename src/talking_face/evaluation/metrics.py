"""Frame and landmark metrics of generated against real video: SSIM, PSNR, LMD and identity distance.

Frames are RGB uint8 arrays [T, H, W, 3]; landmarks are dlib's 68 points [T, 68, 2] (x, y) in the pixels of
the frames they came from. CPBD sharpness, blinks and audio-visual sync live in their own modules.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talking_face.face import detect

MOUTH_POINTS = np.arange(48, 68)  # dlib's outer (48-59) and inner (60-67) lip contours
ALL_POINTS = np.arange(68)
LMD_REFERENCE_SIZE = 256  # LMD is expressed in pixels of a 256x256 crop, as in the paper


def ssim_per_frame(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """SSIM of each generated frame against the real one, float64 [T], unitless, 1 for identical frames.

    scikit-image's `structural_similarity` over the three colour channels (7x7 uniform window, data range
    255), averaged over channels.
    """
    _check_pairs(real, generated)
    return np.array(
        [structural_similarity(r, g, channel_axis=-1, data_range=255) for r, g in zip(real, generated)]
    )


def psnr_per_frame(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """PSNR of each generated frame against the real one in dB, float64 [T]; +inf for identical frames.

    scikit-image's `peak_signal_noise_ratio` with data range 255 over all pixels and channels. Average the
    dB values over frames only after capping the infinite ones (`evaluate_clip` caps at a parameter).
    """
    _check_pairs(real, generated)
    with np.errstate(divide="ignore"):  # identical frames: a zero error gives +inf, by definition
        return np.array([peak_signal_noise_ratio(r, g, data_range=255) for r, g in zip(real, generated)])


def lmd_per_frame(
    real_landmarks: np.ndarray,
    generated_landmarks: np.ndarray,
    crop_size: int,
    points: np.ndarray = MOUTH_POINTS,
) -> np.ndarray:
    """Landmark distance (LMD) of each frame in pixels of a 256x256 crop, float64 [T].

    For every frame, each set of `points` (default the 20 mouth points 48-67; `ALL_POINTS` for all 68) is
    centred on its own mean, so a face that is only displaced scores 0; the LMD is the mean Euclidean
    distance between corresponding centred points, scaled by 256 / `crop_size` (the side of the square
    crop the landmarks are measured in). Both sets must come from the same landmark procedure.
    """
    real = np.asarray(real_landmarks, dtype=np.float64)[:, points]
    generated = np.asarray(generated_landmarks, dtype=np.float64)[:, points]
    if real.shape != generated.shape:
        raise ValueError(f"landmark sequences differ in shape: real {real.shape}, generated {generated.shape}")
    real = real - real.mean(axis=1, keepdims=True)
    generated = generated - generated.mean(axis=1, keepdims=True)
    distances = np.linalg.norm(real - generated, axis=-1)
    return distances.mean(axis=1) * (LMD_REFERENCE_SIZE / crop_size)


def image_embedding(image: np.ndarray) -> np.ndarray:
    """dlib's 128-d face-recognition embedding of the largest face in `image` (the whole image if none)."""
    boxes = detect.detect_faces(image)
    box = boxes[0] if len(boxes) else whole_image_box(image)
    return detect.face_embedding(image, box)


def sequence_embeddings(frames: np.ndarray, boxes: np.ndarray, count: int = 8) -> np.ndarray:
    """Embeddings [N, 128] of `count` frames evenly spaced over the sequence (first and last included).

    The embedding network is the costly part of identity scoring (about 0.1 s a frame on one core), so a
    fixed sample keeps the cost flat however long the clip is; each frame uses its own face box, and a
    sampled frame identical to the one sampled before it reuses its embedding.
    """
    count = max(1, min(int(count), len(frames)))
    indices = np.unique(np.linspace(0, len(frames) - 1, num=count).round().astype(int))
    embeddings = []
    for position, index in enumerate(indices):
        if position and np.array_equal(frames[index], frames[indices[position - 1]]):
            embeddings.append(embeddings[-1])
        else:
            embeddings.append(detect.face_embedding(frames[index], boxes[index]))
    return np.stack(embeddings)


def identity_distance(source_embedding: np.ndarray, frame_embeddings: np.ndarray) -> dict[str, float]:
    """The paper's ACD: how far the generated faces are from the source identity (unitless, 0 = same).

    Per-frame distances between each generated frame's dlib embedding and the source image's, averaged
    over frames (not the distance of the mean embedding): "cosine" is 1 - cosine similarity (0 to 2),
    "euclidean" the L2 distance (dlib calls two faces the same person below about 0.6).
    """
    source = np.asarray(source_embedding, dtype=np.float64)
    frames = np.atleast_2d(np.asarray(frame_embeddings, dtype=np.float64))
    cosine = frames @ source / (np.linalg.norm(frames, axis=1) * np.linalg.norm(source))
    return {
        "cosine": float(np.mean(np.clip(1.0 - cosine, 0.0, 2.0))),
        "euclidean": float(np.mean(np.linalg.norm(frames - source, axis=1))),
    }


def whole_image_box(image: np.ndarray) -> np.ndarray:
    """The box (x0, y0, x1, y1) covering the whole image: the fallback when no face is detected."""
    height, width = image.shape[:2]
    return np.array([0, 0, width - 1, height - 1], dtype=np.float32)


def _check_pairs(real: np.ndarray, generated: np.ndarray) -> None:
    if real.shape != generated.shape:
        raise ValueError(f"frame sequences differ in shape: real {real.shape}, generated {generated.shape}")
