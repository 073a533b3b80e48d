"""A frame strip of a photo animated by a model, at the photo's resolution: the photo, a few frames, and
where the frames differ from the photo (the mean difference over all frames, amplified), so a reader sees
what changes. Frames come from the generation path of `talking-face generate` (the face found and cropped,
`serving.animate`, the full-resolution paste-back), before video encoding, whose noise would cover the map.

    .venv/bin/python scripts/photo_strip.py --photo face.png --audio speech.wav --model model.pt --out strip.png
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from talking_face.serving.animate import animate
from talking_face.serving.photo import PasteBack, face_photo, read_image
from talking_face.serving.resolve import load_model
from talking_face.serving.video import read_speech


def difference_map(photo: np.ndarray, frames: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """uint8 [H, W, 3]: the mean per-pixel difference from the photo over all frames, x gain, as a heat map."""
    mean = np.abs(frames.astype(np.float32) - photo.astype(np.float32)).max(axis=3).mean(axis=0)
    heat = cv2.applyColorMap(np.clip(mean * gain, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--photo", "--audio", "--model", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    model = load_model(args.model)
    photo = face_photo(read_image(args.photo), model.image_size, float(model.features["crop_margin"]), args.photo)
    audio = read_speech(args.audio, int(model.features["audio"]["sample_rate"]))
    compose = PasteBack(photo)
    frames = np.stack([compose(frame) for frame in animate(model, photo.crop, audio)])
    picks = np.linspace(len(frames) // 6, len(frames) - 1 - len(frames) // 6, args.frames).astype(int)
    strip = np.concatenate([photo.image, *frames[picks], difference_map(photo.image, frames)], axis=1)
    cv2.imwrite(args.out, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    print(f"{args.out}: photo, frames {picks.tolist()}, mean difference x8 ({strip.shape[1]}x{strip.shape[0]})")


if __name__ == "__main__":
    main()
