"""Class-activation-map layer (U-GAT-IT, Kim et al. 2020), used in the generator and in every discriminator scale.

    cam = CAMLayer(channels=64)
    features, cam_logit, attention = cam(x)   # x [B,64,h,w] -> [B,64,h,w], [B,2], [B,1,h,w]

Global average and global max pooling each feed a bias-free linear classifier (one logit each, so
`cam_logit` is [B,2]: GAP and GMP). The classifier weights then re-weight the feature channels (the CAM
idea: channels that decide the class get more say), the GAP- and GMP-weighted maps are concatenated and a
1x1 conv brings them back to C channels. `attention` is the channel sum of the result, for visualisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CAMLayer(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        # Two classifiers as in U-GAT-IT: with one shared weight the GAP and GMP maps would be identical.
        self.gap_fc = nn.Linear(channels, 1, bias=False)
        self.gmp_fc = nn.Linear(channels, 1, bias=False)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gap_logit = self.gap_fc(x.mean((2, 3)))
        gmp_logit = self.gmp_fc(x.amax((2, 3)))
        weighted = torch.cat(
            [x * self.gap_fc.weight.view(1, -1, 1, 1), x * self.gmp_fc.weight.view(1, -1, 1, 1)], dim=1
        )
        features = F.leaky_relu(self.fuse(weighted), 0.2)
        attention = features.sum(1, keepdim=True)
        return features, torch.cat([gap_logit, gmp_logit], 1), attention
