"""G = (E_GI, E_GV, D_G): F~_t = D_G(E_GI(I), E_GV(V_t)).

Two ways to run it, equal to float precision:
- `forward`: the whole generator for every frame, as the reference code does;
- `encode_image` once, then `decode` per batch of windows: E_GI and D_G up to the first
  modulation depend on the image alone, so they are computed once and cached.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .affine import apply_affine, smooth
from .color import LAB_EPS, lab_transfer, linear_to_lab, rgb_to_lab, srgb_to_linear
from .config import GeneratorConfig
from . import local
from .decoder import Decoder
from .encoders import VGGEncoder, VideoEncoder
from .modulation import Border, Regions, SoftLabels, border_content, class_stats, modulate
from .night import LightHead, LightSites, albedo, greenery, light_cues, light_up, lit_share, night_transfer, \
    place_lights, read_night, shading, window_map, with_windows


@dataclass
class ImageCache:
    """What the image contributes to every frame (batch dimension 1)."""
    features: torch.Tensor    # D_relu2.1 before modulation: (1, C2, H/2, W/2)
    stats: tuple              # its class_stats: mean, std, each (1, C2, K+1)
    high1: torch.Tensor       # pool-1 high bands unpooled: (1, C1, H, W)
    regions2: Regions         # image classes at H/2
    regions1: Regions         # image classes at H
    num_classes: int
    # Sizes: H x W above is the network's working size (config.work_size); the photo's own
    # size, which `base` and everything below it have, is `size`.
    work: tuple[int, int] = (0, 0)
    size: tuple[int, int] = (0, 0)
    regions: Regions | None = None    # image classes at the photo's size (= regions1 if the same)
    base: torch.Tensor | None = None  # affine output: the photo, or its Lab for the transfer
    base_stats: tuple | None = None   # affine_base "transfer": class_stats of the Lab photo
    border: Border | None = None      # night: what its soft border pixels mix (border_content)
    sky_id: int | None = None         # the sky's class (night: never lit)
    shade: torch.Tensor | None = None  # night: the photo's daytime shading (1, 1, H, W)
    sites: LightSites | None = None    # night: where its lights are, in switch-on order
    albedo: torch.Tensor | None = None  # night: surface colour for the light lamps throw
    ground: torch.Tensor | None = None  # night: weight of the photo's pixels outside its sky (1, 1, H, W)
    class_mean: torch.Tensor | None = None  # night: base_stats' class means per pixel
    night_share: float | None = None   # night: lamps on at full night (DarkestNight), None: per frame
    local: local.LocalTransfer | None = None  # local transfer: the photo's view against the anchor


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or GeneratorConfig()
        self.image_encoder = VGGEncoder(self.config, pool="haar")
        self.video_encoder = VideoEncoder(self.config)
        self.decoder = Decoder(self.config)
        self.night = self.config.night and self.config.output == "affine" and self.config.affine_base == "transfer"
        if self.night:
            self.light_head = LightHead()

    def encode_image(self, image: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     sky_id: int | None = None, seed: int = 0, anchor: torch.Tensor | None = None,
                     night_share: float | None = None, night_fill: float | None = None) -> ImageCache:
        """image (B, 3, H, W) in [0, 1]; labels (H, W) int64 in 0..K-1 (-1 = no class);
        sky_id: the sky's class (night: no lights there); seed: where the lights are;
        anchor (1, 3, h, w): the reference frame most like the photo (local transfer);
        night_share: the lit share of the reference's darkest frame (night.DarkestNight),
        the lamps on at full night; None: each frame's own share; night_fill: the share of a
        lit cell's pixels lit in that frame (night.window_map), None: WINDOW_FILL."""
        size = tuple(image.shape[-2:])
        work = self.work_shape(size)
        net_image = image if work == size else F.interpolate(image, size=work, mode="area")
        relu4_1, skips, sizes, _ = self.image_encoder(net_image)
        x = self.decoder.head(relu4_1, skips, sizes)
        device = image.device
        regions2 = Regions(labels, num_classes, tuple(x.shape[-2:])).to(device)
        regions1 = Regions(labels, num_classes, sizes[0]).to(device)
        cache = ImageCache(x, class_stats(x, regions2, self.config.eps),
                           self.decoder.image_high(skips[0], sizes[0]),
                           regions2, regions1, num_classes, work, size)
        cache.regions = regions1 if work == size else Regions(labels, num_classes, size).to(device)
        if self.config.output == "affine":
            if self.config.affine_base == "photo":
                cache.base = image
            else:
                linear = srgb_to_linear(image)  # once: the Lab base and the local transfer
                cache.base = linear_to_lab(linear)
                cache.base_stats = class_stats(cache.base, cache.regions, LAB_EPS)
                if self.night:
                    self._encode_night(cache, net_image[:1], labels, sky_id, seed, night_fill)
                    cache.night_share = night_share
                if self.config.local and anchor is not None:
                    cache.local = local.prepare(image[:1], anchor, linear[:1])
        return cache

    def work_shape(self, size: tuple[int, int]) -> tuple[int, int]:
        """(h, w) the network works at for a photo of `size` = (H, W): its own size, or shrunk
        to the long side config.work_size."""
        limit = self.config.work_size
        if limit is None or max(size) <= limit:
            return tuple(size)
        scale = limit / max(size)
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))

    def light_logits(self, lab: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
        """The light head's logits (B, 1, H/4, W/4) for the photo's Lab (B, 3, H, W) and sky
        weight (B, 1, H, W): where this photo's lights go."""
        return self.light_head(light_cues(lab, sky))

    def _encode_night(self, cache: ImageCache, net_image: torch.Tensor, labels, sky_id: int | None, seed: int,
                      fill: float | None = None) -> None:
        ids = labels.ids if isinstance(labels, SoftLabels) else labels
        ids = ids.to(cache.base.device)
        k = cache.num_classes
        masks = F.one_hot(torch.where(ids < 0, k, ids), k + 1).permute(2, 0, 1)[None].to(cache.base.dtype)
        sky = (ids == sky_id).to(cache.base.dtype)[None, None] if sky_id is not None else torch.zeros_like(masks[:, :1])
        cache.sky_id, cache.shade = sky_id, shading(cache.base[:1], masks)
        # Ranked at the working size: the same photo gets its lamps in the same places at any
        # output size (edge densities change with the scale they are read at).
        net_lab = cache.base[:1] if cache.work == cache.size else rgb_to_lab(net_image)
        logits = self.light_logits(net_lab, F.interpolate(sky, size=cache.work, mode="area"))
        # Lamps in tree crowns and on lawns only when every other place has one.
        green = greenery(cache.base[:1])
        cache.sites = place_lights(logits, sky, tuple(ids.shape), seed, last=green)
        if self.config.windows:
            cache.sites = with_windows(cache.sites, window_map(cache.base[:1], (1 - sky) * (1 - green), fill))
        cache.albedo = albedo(cache.base[:1], cache.shade)
        cache.border = border_content(cache.base[:1], cache.regions)
        cache.ground = 1 - sky
        cache.class_mean = cache.regions.gather(cache.base_stats[0])

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
        frame = windows[:, 6:9]  # the newest frame F_t of each window
        light = self._read_night(frame, style1, cache) if self.night else None
        if light is not None and cache.night_share is not None:
            light = replace(light, share=cache.night_share * light.night)
        trust = cache.local.trust if cache.local is not None else 0.0
        # At trust 1 the same-view transfer replaces the classwise base whole: not computed.
        base = self._classwise_base(cache, frame, style1, light, image) if trust < 1 else None
        already = None  # the share of light cells lit before any lamp
        if trust > 0:
            base = local.transfer(cache.local, frame, base, image)
            if light is not None and bool((light.share > 0).any()):  # lamps where the reference has more lit
                # places than the view's own (with none asked for, there is nothing to subtract)
                already = lit_share(base, cache.ground)
                light = replace(light, share=(light.share - already).clamp(min=0))
        out = apply_affine(smooth(out, self.config.affine_smooth), base)  # interpolated to the base's size
        return out if light is None else light_up(out, cache.sites, cache.albedo, cache.ground, light, already)

    def _classwise_base(self, cache: ImageCache, frame: torch.Tensor, style1: Regions, light,
                        image: torch.Tensor | None) -> torch.Tensor:
        """What the affine matrices act on, class by class: the photo (or `image`), its Lab
        transfer to the frames, or at night to their ambient light."""
        base = cache.base
        if image is not None:
            base = image if self.config.affine_base == "photo" else rgb_to_lab(image)
        if light is not None:
            return night_transfer(base, cache.regions, cache.base_stats, cache.class_mean, cache.shade, light,
                                  cache.border)
        if self.config.affine_base == "transfer":
            return lab_transfer(base, cache.regions, frame, style1, cache.base_stats)
        return base

    def _read_night(self, frame: torch.Tensor, style1: Regions, cache: ImageCache):
        """The light of reference frames (B, 3, h, w); style1: their classes at (h, w)."""
        sky = None
        if cache.sky_id is not None:
            sky = (style1.index == cache.sky_id).view(frame.shape[-2:])
        return read_night(frame, rgb_to_lab(frame), style1.index, cache.num_classes, sky, LAB_EPS)

    def forward(self, image: torch.Tensor, labels: torch.Tensor, windows: torch.Tensor,
                ref_labels: torch.Tensor, num_classes: int, noise: torch.Tensor | None,
                sky_id: int | None = None, seed: int = 0, anchor: torch.Tensor | None = None,
                night_share: float | None = None, night_fill: float | None = None) -> torch.Tensor:
        """The full generator for every frame: image (B, 3, H, W), one copy per window."""
        cache = self.encode_image(image, labels, num_classes, sky_id, seed, anchor, night_share, night_fill)
        return self.decode(cache, windows, ref_labels, noise)
