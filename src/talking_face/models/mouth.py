"""The mouth layer of the composite head: how far speech opens the mouth, and the photo's mouth opened to it.

    opening = MouthOpening(MouthOpeningConfig(window=5))(mel, mfcc)   # [N, K, 256], [N, K, 13] -> [N]
    shape = MouthShape.from_landmarks(points)          # the photo's mouth, from its 68 landmarks (crop pixels)
    layer = shape.layer(opening, size=64)              # PartLayer: motion [N,2,S,S], alpha [N,1,S,S], colour [N,3,S,S]

Why it exists: a GAN trained on a few dozen people paints a timid mouth on a new face. Where speech does not
tell the exact shape, a half-open mouth is closest to every real frame on average, so the real-data model's
mouth moved a fifth as far as the real one. `MouthOpening` predicts one number per frame from the speech
window, the inner-lip gap over the mouth width (`evaluation.sync.mouth_opening`, the measure evaluation
scores), trained on every training person's landmarks; on held-out people its `gain` stretches its spread to
the real one's. `MouthShape.layer` then does what a photo of a closed mouth cannot: the lower lip and the jaw
move down and the upper lip up a little (a backward warp of the photo's own pixels, so the lips stay sharp
when pasted back at the photo's resolution), and the gap between them is painted as a mouth's interior, dark
with a band of upper teeth. The generator composes its own motion and paint on top (`CompositeHead`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
import numpy as np
import torch
from torch import nn

from talking_face.features.schema import N_MEL, N_MFCC
from talking_face.models.layer import PartLayer, pixel_grid

UPPER_SHARE = 0.2  # of the extra opening, the upper lip's part; the jaw carries the rest
CORNER_FALLOFF = 0.4  # the lips' vertical motion falls off as a Gaussian of this many mouth widths from the centre
BELOW_CHIN = 0.25  # below the chin the jaw's motion fades over this many mouth widths (the neck stays)
ABOVE_LIP = 0.25  # the upper lip's motion fades toward the nose over this many mouth widths
TEETH_SHARE = 0.3  # of the painted gap, the upper teeth's band
TEETH_MAX = 0.08  # ... at most this many mouth widths high
CAVITY_RGB = (50, 20, 22)  # the interior behind the teeth (0-255)
TEETH_RGB = (205, 195, 185)


@dataclass
class MouthOpeningConfig:
    window: int = 5  # frames of speech around each frame (the generator's audio_window)
    hidden: int = 128
    dropout: float = 0.3


class MouthOpening(nn.Module):
    """Speech window -> the inner-lip gap over the mouth width, one per frame. `mean`/`scale` standardise the
    inputs (set from the training frames); the output is `closed + gain * (prediction - closed)`, at least 0:
    `gain` is fitted on held-out people so the predicted spread matches theirs (1 as trained)."""

    def __init__(self, config: MouthOpeningConfig | dict | None = None):
        super().__init__()
        config = config if isinstance(config, MouthOpeningConfig) else MouthOpeningConfig(**(config or {}))
        self.config = config
        inputs = config.window * (N_MEL + N_MFCC)
        self.net = nn.Sequential(
            nn.Linear(inputs, config.hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, 1)
        )
        self.register_buffer("mean", torch.zeros(inputs))
        self.register_buffer("scale", torch.ones(inputs))
        self.register_buffer("closed", torch.zeros(()))
        self.register_buffer("gain", torch.ones(()))

    @staticmethod
    def inputs(mel: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """The flat input rows [N, K * (256 + 13)] of the conditioning's mel and MFCC windows."""
        return torch.cat([mel.flatten(1), mfcc.flatten(1)], 1).float()

    def raw(self, rows: torch.Tensor) -> torch.Tensor:
        """The network's own prediction [N] for input rows (`inputs`), before the gain."""
        return self.net((rows - self.mean) / self.scale).squeeze(1)

    def forward(self, mel: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        raw = self.raw(self.inputs(mel, mfcc))
        return (self.closed + self.gain * (raw - self.closed)).clamp_min(0.0)

    def state(self) -> dict:
        return {"config": asdict(self.config), "weights": self.state_dict()}

    @classmethod
    def from_state(cls, state: dict) -> MouthOpening:
        model = cls(state["config"])
        model.load_state_dict(state["weights"])
        return model.eval()


@dataclass(frozen=True)
class MouthShape:
    """The photo's mouth in crop pixels: the inner mouth's centre, the mouth's roll, its width (corner to
    corner), the inner lips' half-width and gap, and how far below the centre the chin is."""

    centre: tuple[float, float]
    roll: float  # radians, the corners' line against the horizontal
    width: float
    inner_half_width: float
    gap: float  # the photo's own inner-lip gap in pixels (mean of the three facing pairs)
    chin: float  # the chin's distance below the centre, along the face's vertical

    @classmethod
    def from_landmarks(cls, points: np.ndarray) -> MouthShape:
        points = np.asarray(points, dtype=np.float64)
        left, right = points[48], points[54]
        roll = math.atan2(right[1] - left[1], right[0] - left[0])
        centre = points[60:68].mean(0)
        down = np.array([-math.sin(roll), math.cos(roll)])
        gap = float(np.mean([np.linalg.norm(points[a] - points[b]) for a, b in ((61, 67), (62, 66), (63, 65))]))
        return cls(
            centre=(float(centre[0]), float(centre[1])),
            roll=roll,
            width=max(float(np.linalg.norm(right - left)), 1.0),
            inner_half_width=max(float(np.linalg.norm(points[64] - points[60])) / 2, 0.5),
            gap=gap,
            chin=max(float((points[8] - centre) @ down), 1.0),
        )

    def layer(self, opening: torch.Tensor, size: int, strength: float = 1.0) -> PartLayer:
        """The mouth opened to `opening` [N] (inner-lip gap over mouth width) on a size x size crop, its
        departure from the photo's own gap scaled by `strength` (0: the photo's mouth)."""
        opening = opening.float().reshape(-1, 1, 1)
        target = self.gap + strength * (opening * self.width - self.gap)  # the gap in pixels
        extra = target - self.gap  # < 0 closes a photo's open mouth
        upper, lower = UPPER_SHARE * extra, (1 - UPPER_SHARE) * extra
        ys, xs = pixel_grid(size)
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        dx, dy = xs - self.centre[0], ys - self.centre[1]
        along, down = dx * cos + dy * sin, -dx * sin + dy * cos  # the mouth's own axes
        across = torch.exp(-0.5 * (along / (CORNER_FALLOFF * self.width)) ** 2)
        beyond_chin = (down - self.chin).clamp_min(0) / (BELOW_CHIN * self.width)
        jaw = torch.exp(-0.5 * beyond_chin**2)
        lip = torch.exp(-0.5 * (down / (ABOVE_LIP * self.width)) ** 2)
        below = torch.sigmoid(down / 0.5)  # the seam between the lips, half a pixel wide
        # Forward motion along the face's vertical (down > 0); the backward flow samples from where a pixel came.
        shift = across * (below * lower * jaw - (1 - below) * upper * lip)
        motion = torch.stack([shift * sin, -shift * cos], 1)
        centre_down = (lower - upper) / 2  # the gap's centre moves with the lips around it
        half_height = (target / 2).clamp_min(1e-3)
        reach = torch.sqrt((along / self.inner_half_width) ** 2 + ((down - centre_down) / half_height) ** 2)
        # A one-pixel anti-aliased edge; the paint fades in over the first pixel of opening beyond the photo's.
        alpha = ((1 - reach) * half_height + 0.5).clamp(0, 1) * extra.clamp(0, 1)
        top = centre_down - half_height
        teeth_height = torch.minimum(TEETH_SHARE * 2 * half_height, torch.full_like(half_height, TEETH_MAX * self.width))
        teeth = ((top + teeth_height - down) + 0.5).clamp(0, 1)[:, None]
        cavity, white = (torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 127.5 - 1 for rgb in (CAVITY_RGB, TEETH_RGB))
        colour = teeth * white + (1 - teeth) * cavity
        return PartLayer(motion, alpha[:, None], colour.expand(len(opening), 3, size, size))
