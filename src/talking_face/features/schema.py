"""The per-clip feature file: one compressed npz per clip, every array with the same T frames.

This is the contract between the `features` pipeline (writer) and training, evaluation and notebooks
(readers). S is `features.crop_size`; heatmaps are always at the paper's 96x96.
"""

from __future__ import annotations

import os

import numpy as np

N_MEL = 256  # mel bands per audio window (the MAN audio branch)
N_MFCC = 13  # MFCC-like coefficients per frame (the generator's first layers)
N_LEVELS = 256  # quantization levels of pitch and energy (one-hot in the data loader)
N_HEATMAPS = 15  # facial-part contour heatmaps
HEATMAP_SIZE = 96
N_VISEMES = 12  # viseme classes of the speech source (features.phonemes.VISEME_OF)
N_VISEME_FEATURES = N_VISEMES + 1  # the classes' share of each frame and the mouth openness they ask for

FEATURE_KEYS = {
    "frames": "uint8 [T, S, S, 3] RGB face crop",
    "landmarks": "float32 [T, 68, 2] dlib points (x, y) in crop pixels",
    "heatmaps": "uint8 [T, 15, 96, 96] contour heatmaps, value / 255 in [0, 1]",
    "flow": "float16 [T, 2, S, S] Farneback flow from frame t to t + 1 in crop pixels; flow[T-1] = 0",
    "mel": "float32 [T, 256] log-mel of the audio window centred on frame t",
    "mfcc": "float32 [T, 13]",
    "f0": "float32 [T] pyworld F0 in Hz, 0 where unvoiced",
    "pitch": "uint8 [T] quantized F0: 0 unvoiced, 1..255 log-spaced voiced levels",
    "energy_raw": "float32 [T] L2 norm of the STFT magnitude frame",
    "energy": "uint8 [T] quantized log energy, 0..255",
    "boxes": "float32 [T, 4] smoothed crop box (x0, y0, x1, y1) in source-video pixels",
    "fps": "float32 scalar, always the configured fps (25)",
    "audio": "float32 [T * 640] mono 16 kHz audio of the clip, cut or zero-padded to T frames of 640 samples",
}

# Header keys stored in every feature file beside the arrays, so a file says what produced it.
RECORD_KEYS = {
    "params_hash": "str scalar, hash of the extraction parameters and code version (features.extract)",
    "content_hash": "str scalar, the manifest's content_hash of the clip's video (and sidecar audio)",
    "summary": "str scalar, JSON of the clip's feature summary row (features.extract.feature_summary)",
    "error": "str scalar, only in the file of a clip that could not be used: why; it then holds no arrays",
}

IDENTITY_KEYS = ("content_hash", "params_hash")  # the header keys that say what a feature file holds


def file_identity(path: str | os.PathLike) -> dict[str, str]:
    """A feature file's content_hash and params_hash ("" where absent), read without loading its arrays."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: str(archive[key]) if key in archive.files else "" for key in IDENTITY_KEYS}
