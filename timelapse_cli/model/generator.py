"""G = (E_GI, E_GV, D_G): F~_t = D_G(E_GI(I), E_GV(V_t)).

Two ways to run it, equal to float precision:
- `forward`: the whole generator for every frame, as the reference code does;
- `encode_image` once, then `decode` per batch of windows: E_GI and D_G up to the first
  modulation depend on the image alone, so they are computed once and cached.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .affine import apply_affine, smooth
from .color import LAB_EPS, lab_transfer, rgb_to_lab
from .config import GeneratorConfig
from .decoder import Decoder
from .encoders import VGGEncoder, VideoEncoder
from .modulation import Regions, class_stats, modulate


@dataclass
class ImageCache:
    """What the image contributes to every frame (batch dimension 1)."""
    features: torch.Tensor    # D_relu2.1 before modulation: (1, C2, H/2, W/2)
    stats: tuple              # its class_stats: mean, std, each (1, C2, K+1)
    high1: torch.Tensor       # pool-1 high bands unpooled: (1, C1, H, W)
    regions2: Regions         # image classes at H/2
    regions1: Regions         # image classes at H
    num_classes: int
    base: torch.Tensor | None = None  # affine output: the photo, or its Lab for the transfer
    base_stats: tuple | None = None   # affine_base "transfer": class_stats of the Lab photo


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or GeneratorConfig()
        self.image_encoder = VGGEncoder(self.config, pool="haar")
        self.video_encoder = VideoEncoder(self.config)
        self.decoder = Decoder(self.config)

    def encode_image(self, image: torch.Tensor, labels: torch.Tensor, num_classes: int) -> ImageCache:
        """image (B, 3, H, W) in [0, 1]; labels (H, W) int64 in 0..K-1 (-1 = no class)."""
        relu4_1, skips, sizes, _ = self.image_encoder(image)
        x = self.decoder.head(relu4_1, skips, sizes)
        device = image.device
        regions2 = Regions(labels, num_classes, tuple(x.shape[-2:])).to(device)
        regions1 = Regions(labels, num_classes, sizes[0]).to(device)
        cache = ImageCache(x, class_stats(x, regions2, self.config.eps),
                           self.decoder.image_high(skips[0], sizes[0]),
                           regions2, regions1, num_classes)
        if self.config.output == "affine":
            if self.config.affine_base == "photo":
                cache.base = image
            else:
                cache.base = rgb_to_lab(image)
                cache.base_stats = class_stats(cache.base, regions1, LAB_EPS)
        return cache

    def seed_video_encoder(self) -> None:
        """Start E_GV from E_GI's first layers: conv1_1 tiled over the 3 frames and divided
        by 3, so a window of three equal frames f gives E_GV(f, f, f) = E_GI's relu1_1(f)."""
        enc, venc = self.image_encoder, self.video_encoder
        with torch.no_grad():
            venc.conv1_1.weight.copy_(enc.conv1_1.weight.repeat(1, venc.frames, 1, 1) / venc.frames)
            venc.conv1_1.bias.copy_(enc.conv1_1.bias)
            venc.conv1_2.load_state_dict(enc.conv1_2.state_dict())
            venc.conv2_1.load_state_dict(enc.conv2_1.state_dict())

    def decode(self, cache: ImageCache, windows: torch.Tensor, ref_labels: torch.Tensor,
               noise: torch.Tensor | None, image: torch.Tensor | None = None) -> torch.Tensor:
        """windows (B, 9, h, w): 3 reference frames each, in [0, 1]; ref_labels (h, w);
        noise z (B, 1, H, W) or None -> frames (B, 3, H, W), not clamped.

        image (B, 3, H, W), affine head only: recolour these photos (e.g. the photo with its
        sky moved) instead of the encoded one; the colour matrices still come from the cache.
        """
        eps = self.config.eps
        relu1_1, relu2_1 = self.video_encoder(windows)
        k = cache.num_classes
        style2 = Regions(ref_labels, k, tuple(relu2_1.shape[-2:])).to(windows.device)
        style1 = Regions(ref_labels, k, tuple(relu1_1.shape[-2:])).to(windows.device)
        # Classwise AdaIN at D_relu2.1.
        x = modulate(cache.features, cache.regions2, relu2_1, style2, eps, content_stats=cache.stats)
        x = self.decoder.middle(x, cache.high1)
        # Classwise NoiseAdaIN at D_relu1.1.
        y = modulate(x, cache.regions1, relu1_1, style1, eps, noise)
        mix = self.config.noise_mix
        if mix != 1.0:
            y = mix * y + (1.0 - mix) * x
        out = self.decoder.to_rgb(y)
        if self.config.output == "rgb":
            return out
        base = cache.base
        if image is not None:
            base = image if self.config.affine_base == "photo" else rgb_to_lab(image)
        if self.config.affine_base == "transfer":  # the newest frame F_t of each window
            base = lab_transfer(base, cache.regions1, windows[:, 6:9], style1, cache.base_stats)
        return apply_affine(smooth(out, self.config.affine_smooth), base)

    def forward(self, image: torch.Tensor, labels: torch.Tensor, windows: torch.Tensor,
                ref_labels: torch.Tensor, num_classes: int, noise: torch.Tensor | None) -> torch.Tensor:
        """The full generator for every frame: image (B, 3, H, W), one copy per window."""
        cache = self.encode_image(image, labels, num_classes)
        return self.decode(cache, windows, ref_labels, noise)
