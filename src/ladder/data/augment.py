"""Training-time image augmentation on a batch: random crop, horizontal flip, rotation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ladder.config import AugmentConfig

if TYPE_CHECKING:
    import torch


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly augment an (N, C, H, W) batch; the same generator state gives the same result.

    Flip (p=0.5 per image) if `cfg.hflip`; crop back to H x W at a random offset after
    zero-padding by `cfg.crop_padding`; rotate by an angle uniform in [-rotation, rotation]
    degrees (bilinear, zeros outside).
    """
    import torch

    if not cfg.enabled or x.shape[0] == 0:
        return x
    n = x.shape[0]
    draw = {"device": generator.device}
    if cfg.hflip:
        flip = torch.rand(n, generator=generator, **draw) < 0.5
        x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    if cfg.crop_padding > 0:
        offsets = torch.randint(0, 2 * cfg.crop_padding + 1, (2, n), generator=generator, **draw)
        x = _crop(x, cfg.crop_padding, offsets.to(x.device))
    if cfg.rotation > 0:
        u = torch.rand(n, generator=generator, **draw).to(x.device)
        angles = (2 * u - 1) * math.radians(cfg.rotation)
        x = _rotate(x, angles)
    return x


def _crop(x: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad by `padding`, then take an H x W window at offsets (2, N) = (top, left)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (N, C, H + 2p, W + 2p)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by `angles` (radians, (N,))."""
    import torch
    import torch.nn.functional as F

    _, _, h, w = x.shape
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid works in coordinates normalized to [-1, 1] per axis; the H/W factors keep the
    # rotation rigid in pixel space for non-square images.
    theta = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
