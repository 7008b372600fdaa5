"""The self-supervised training losses of Time Flies (method.md, "Self-supervised training").

For a training clip of T frames F_1..F_T: the image is I = flip(mean_t F_t), the target of
the generated frame F~_t is F_t^flip, and the label map of I is the flipped scene map, so
real (flipped) and generated frames share one label map. Every function here is pure:
tensors in, a scalar tensor out, no device choice, no IO. Shapes:

    T               frames of the clip (the batch of the feature tensors)
    feats           list over layers of (T, C_l, H_l, W_l) feature tensors
    regions_by_layer  list over layers of Regions built at (H_l, W_l) (see regions_for)

Classwise statistics always come from model.modulation.class_stats (mean/std) and gram()
below; "classes present" at a layer are those with at least one pixel at that layer's
resolution (the global column excluded); when no class is present (a map of -1 only) the
global column stands in for them.

    L = L_adv + 0.1 L_perc + 0.05 L_content + 10 L_style + 100 L_flow + 0.05 L_cycle

plus optional pixel terms against the target frames, not in the paper: the mean absolute
error (pixel), the mean squared error (mse, the error PSNR measures) and its logarithm in
dB (log_mse = -PSNR of the clip, so every clip counts alike whatever its error's size).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from .model.modulation import Regions, class_stats

Tensor = torch.Tensor

__all__ = [
    "LossWeights", "content", "content_alpha", "cycle", "d_loss", "flow", "g_adversarial",
    "gram", "log_mse", "mse", "perceptual", "pixel", "regions_for", "style", "total", "whiten",
]


# ---------------------------------------------------------------------------- helpers

def _zero(refs: list[Tensor]) -> Tensor:
    """A scalar 0 that stays in the graph of every tensor of `refs` (gradient 0, never NaN,
    whatever they hold)."""
    return sum(r.flatten()[:0].sum() for r in refs)


def _l2(a: Tensor, b: Tensor) -> Tensor:
    """||a_t - b_t||_2 over all of a frame's elements, averaged over frames (method.md's
    norms: sums over pixels, not means, which keeps the paper's weights in balance with
    the classwise terms). a (1 or T, ...) broadcasts over b (T, ...)."""
    if a.shape[1:] != b.shape[1:] or a.shape[0] not in (1, b.shape[0]):
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not match")
    return torch.linalg.vector_norm((a - b).flatten(1), dim=1).mean()  # gradient 0 at a == b


def _layers(real_feats, fake_feats, regions_by_layer=None):
    """zip(real, fake[, regions]) with the lengths, shapes and region sizes checked."""
    real_feats, fake_feats = list(real_feats), list(fake_feats)
    if len(real_feats) != len(fake_feats) or not fake_feats:
        raise ValueError(f"need as many real as fake layers (>0): {len(real_feats)} vs {len(fake_feats)}")
    if regions_by_layer is not None and len(regions_by_layer) != len(fake_feats):
        raise ValueError(f"{len(regions_by_layer)} Regions for {len(fake_feats)} layers")
    for i, (r, f) in enumerate(zip(real_feats, fake_feats)):
        if r.shape != f.shape:
            raise ValueError(f"layer {i}: real {tuple(r.shape)} vs fake {tuple(f.shape)}")
        if regions_by_layer is not None and tuple(regions_by_layer[i].size) != tuple(f.shape[-2:]):
            raise ValueError(f"layer {i}: Regions of size {regions_by_layer[i].size} for features "
                             f"{tuple(f.shape)}; build them with regions_for")
    regions = regions_by_layer if regions_by_layer is not None else [None] * len(fake_feats)
    return list(zip(real_feats, fake_feats, regions))


def _present(regions: Regions) -> Tensor:
    """Column indices of the classes present (counts > 0, global excluded); [K] if none."""
    idx = torch.nonzero(regions.counts[:-1]).flatten()
    if idx.numel() == 0:
        idx = torch.tensor([regions.num_classes], device=regions.counts.device)
    return idx


def regions_for(labels: Tensor, num_classes: int, feats: list[Tensor]) -> list[Regions]:
    """One Regions per feature layer: labels (H, W) int64 (-1 = no class) resized (nearest)
    to each feats[l] (T, C_l, H_l, W_l) resolution. Layers of equal size share one object."""
    cache: dict[tuple[int, int], Regions] = {}
    out = []
    for f in feats:
        size = (int(f.shape[-2]), int(f.shape[-1]))
        if size not in cache:
            cache[size] = Regions(labels, num_classes, size)
        out.append(cache[size])
    return out


# ---------------------------------------------------------------------------- perceptual

def perceptual(real_feats: list[Tensor], fake_feats: list[Tensor]) -> Tensor:
    """sum_l ||Phi_l(F_t^flip) - Phi_l(F~_t)||_2, averaged over frames.

    real_feats, fake_feats: lists over the loss network's layers (relu1_1..relu4_1) of
    (T, C_l, H_l, W_l), frame t of the fake aligned with frame t of the real. Returns ().
    """
    return sum(_l2(r, f) for r, f, _ in _layers(real_feats, fake_feats))


def pixel(real: Tensor, fake: Tensor) -> Tensor:
    """Mean absolute error between the target frames F_t^flip and F~_t, (T, 3, H, W) each."""
    if real.shape != fake.shape:
        raise ValueError(f"shapes {tuple(real.shape)} and {tuple(fake.shape)} do not match")
    return (real - fake).abs().mean()


def mse(real: Tensor, fake: Tensor) -> Tensor:
    """Mean squared error between the target frames F_t^flip and F~_t, (T, 3, H, W) each."""
    if real.shape != fake.shape:
        raise ValueError(f"shapes {tuple(real.shape)} and {tuple(fake.shape)} do not match")
    return (real - fake).square().mean()


def log_mse(real: Tensor, fake: Tensor) -> Tensor:
    """10 log10 of the clip's mean squared error: minus its PSNR for frames in [0, 1]."""
    return 10 * torch.log10(mse(real, fake) + 1e-10)


# ---------------------------------------------------------------------------- content

class _InvSqrtSym(torch.autograd.Function):
    """(C + eps I)^-1/2 of symmetric PSD 3x3 matrices (B, 3, 3), through eigh.

    Autograd's eigh backward divides by eigenvalue gaps and gives inf/NaN for repeated
    eigenvalues (a grey image, a constant image). This backward uses the Daleckii-Krein
    formula, grad_C = V (K o V^T G V) V^T, whose divided differences of
    f(l) = (l + eps)^-1/2 have the closed form K_ij = -1 / (s_i s_j (s_i + s_j)),
    s = sqrt(l + eps): finite and exact even when l_i == l_j (then K_ii = f'(l_i)).
    Computed in float64 (3x3: free), returned in the input dtype.
    """

    @staticmethod
    def forward(ctx, cov: Tensor, eps: float) -> Tensor:
        evals, evecs = torch.linalg.eigh(cov.double())
        s = torch.sqrt(evals.clamp(min=0) + eps)  # (B, 3)
        ctx.save_for_backward(evecs, s)
        return (evecs / s[..., None, :] @ evecs.transpose(-1, -2)).to(cov.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        evecs, s = ctx.saved_tensors
        g = grad.double()
        g = (g + g.transpose(-1, -2)) / 2
        k = -1 / (s[..., :, None] * s[..., None, :] * (s[..., :, None] + s[..., None, :]))
        vt = evecs.transpose(-1, -2)
        return (evecs @ (k * (vt @ g @ evecs)) @ vt).to(grad.dtype), None


def whiten(images: Tensor, eps: float = 1e-5) -> Tensor:
    """h: ZCA colour decorrelation of each image, images (B, 3, H, W) -> (B, 3, H, W).

    Subtracts the image's mean colour and multiplies by Cov^-1/2, Cov the 3x3 colour
    covariance over its pixels (divided by H*W) with eps added to its eigenvalues; the
    output's colour covariance is ~identity. Differentiable, with finite gradients even
    for images whose covariance has repeated eigenvalues.
    """
    b, c, h, w = images.shape
    x = images.reshape(b, c, h * w)
    x = x - x.mean(-1, keepdim=True)
    cov = x @ x.transpose(1, 2) / (h * w)  # (B, 3, 3)
    return (_InvSqrtSym.apply(cov, eps) @ x).view(b, c, h, w)


def content(feat_image: Tensor, feat_fake: Tensor, white_image: Tensor, white_fake: Tensor,
            alpha: float) -> Tensor:
    """alpha ||E_GI(I) - E_GI(F~_t)||_2 + (1 - alpha) ||h(I) - h(F~_t)||_2, mean over frames.

    feat_image (1 or T, C, h, w) = E_GI relu4_1 of I, broadcast over the T frames of
    feat_fake (T, C, h, w); white_image (1 or T, 3, H, W) = whiten(I) and white_fake
    (T, 3, H, W) = whiten(F~). A term whose weight is 0 is not computed at all (alpha=1
    ignores the whitened images, alpha=0 the features). Returns ().
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    terms = []
    if alpha > 0:
        terms.append(alpha * _l2(feat_image, feat_fake))
    if alpha < 1:
        terms.append((1 - alpha) * _l2(white_image, white_fake))
    return sum(terms)


def content_alpha(step: int, decay: float) -> float:
    """The content loss' alpha at optimiser step `step` (>= 0): decay ** step, so 1 at the
    start and decaying exponentially (decay in (0, 1], e.g. 0.999). The reference code
    declared this schedule but never applied it."""
    if step < 0 or not 0.0 < decay <= 1.0:
        raise ValueError(f"need step >= 0 and 0 < decay <= 1, got step={step}, decay={decay}")
    return float(decay) ** step


# ---------------------------------------------------------------------------- style, flow

def style(real_feats: list[Tensor], fake_feats: list[Tensor], regions_by_layer: list[Regions],
          eps: float = 1e-5) -> Tensor:
    """Classwise style loss, summed over layers l:

        mean over present classes s and frames t of
            ||mu_s(Phi_l(F_t^flip)) - mu_s(Phi_l(F~_t))||_2 + ||sigma_s(.) - sigma_s(.)||_2

    norms over channels. feats: lists of (T, C_l, H_l, W_l); real and fake frames share
    the label map, so one Regions per layer (size (H_l, W_l)). eps: class_stats' variance
    eps. Returns ().
    """
    loss = []
    for r, f, reg in _layers(real_feats, fake_feats, regions_by_layer):
        idx = _present(reg)
        r_mean, r_std = class_stats(r, reg, eps)  # (T, C, K+1) each
        f_mean, f_std = class_stats(f, reg, eps)
        d_mean = (r_mean - f_mean).index_select(-1, idx)  # (T, C, S)
        d_std = (r_std - f_std).index_select(-1, idx)
        loss.append(torch.linalg.vector_norm(d_mean, dim=1).mean()
                    + torch.linalg.vector_norm(d_std, dim=1).mean())
    return sum(loss)


def flow(real_feats: list[Tensor], fake_feats: list[Tensor], regions_by_layer: list[Regions],
         eps: float = 1e-5) -> Tensor:
    """Classwise feature-flow loss, summed over layers l.

    Flow_s^l(A, B) = mu_s(Phi_l(B) - Phi_l(A)), the class-s mean of the feature change
    (C_l,); since the mean is linear this equals mu_s(Phi_l(B)) - mu_s(Phi_l(A)), so the
    class means come from one class_stats per clip. Pairs: adjacent (t, t+1), t=1..T-1,
    and long range (1, t), t=2..T. The loss is the mean absolute difference between the
    real and the generated flows, over channels, present classes and all 2(T-1) pairs.
    feats: (T, C_l, H_l, W_l) each; when T < 2 there is no pair and the result is a 0 that
    keeps every fake layer in the graph (zero gradients). Returns ().
    """
    pairs = _layers(real_feats, fake_feats, regions_by_layer)
    if fake_feats[0].shape[0] < 2:
        return _zero(fake_feats)
    loss = []
    for r, f, reg in pairs:
        idx = _present(reg)
        r_mean = class_stats(r, reg, eps)[0].index_select(-1, idx)  # (T, C, S)
        f_mean = class_stats(f, reg, eps)[0].index_select(-1, idx)
        d = r_mean - f_mean  # a flow difference is a difference of these
        diffs = torch.cat([d[1:] - d[:-1], d[1:] - d[:1]])  # (2(T-1), C, S)
        loss.append(diffs.abs().mean())
    return sum(loss)


# ---------------------------------------------------------------------------- cycle

def gram(feat: Tensor, regions: Regions) -> Tensor:
    """Classwise Gram matrices of feat (B, C, h, w) -> (B, K+1, C, C).

    Column s: X_s X_s^T / (n_s C), X_s (C, n_s) the features of the n_s pixels of class s
    (uncentred). The last column is the Gram matrix of the whole map, and so is every
    absent class' column (as class_stats does for its statistics).
    """
    b, c, h, w = feat.shape
    if tuple(regions.size) != (h, w):
        raise ValueError(f"Regions of size {regions.size} for features {tuple(feat.shape)}")
    k = regions.num_classes
    x = feat.reshape(b, c, h * w)
    whole = x @ x.transpose(1, 2) / (h * w * c)  # (B, C, C)
    cols = [whole] * (k + 1)
    if regions.single is None:
        for s in torch.nonzero(regions.counts[:-1]).flatten().tolist():
            xs = x.index_select(-1, torch.nonzero(regions.index == s).flatten())
            cols[s] = xs @ xs.transpose(1, 2) / (xs.shape[-1] * c)
    return torch.stack(cols, 1)


def cycle(real_feats: list[Tensor], fake_feats: list[Tensor], regions_by_layer: list[Regions]) -> Tensor:
    """Classwise Gram distance between E_GV features of the generated 3-frame windows and
    of the real (flipped) windows: sum over layers of the MSE between their gram()s over
    the present classes (mean over windows, classes and C x C entries).

    feats: VideoEncoder outputs [relu1_1, relu2_1], each (T, C_l, H_l, W_l), T windows.
    Returns ().
    """
    loss = []
    for r, f, reg in _layers(real_feats, fake_feats, regions_by_layer):
        idx = _present(reg)
        loss.append((gram(r, reg) - gram(f, reg)).index_select(1, idx).square().mean())
    return sum(loss)


# ---------------------------------------------------------------------------- adversarial

def d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN discriminator loss: softplus(-real).mean() + softplus(fake).mean()
    = -log sigmoid(real) - log(1 - sigmoid(fake)). Logits of any shape. Returns ()."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_adversarial(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: softplus(-fake).mean() = -log sigmoid(fake). Returns ()."""
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------------------- total

@dataclass
class LossWeights:
    """The paper's weights: L_adv + 0.1 L_perc + 0.05 L_content + 10 L_style + 100 L_flow
    + 0.05 L_cycle. Field names are the keys of total()'s `terms`."""

    adv: float = 1.0
    perc: float = 0.1
    content: float = 0.05
    style: float = 10.0
    flow: float = 100.0
    cycle: float = 0.05
    pixel: float = 0.0   # not in the paper: L1 to the target frames
    mse: float = 0.0     # not in the paper: squared error to the target frames
    log_mse: float = 0.0  # not in the paper: the clip's squared error in dB (-PSNR)


def total(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """sum_k weights.k * terms[k] over the LossWeights fields. A term whose weight is 0 is
    skipped entirely (no multiply by 0, so a NaN there cannot leak and it adds no gradient)
    and may be absent from `terms`; a weighted term that is absent, or a key that is no
    LossWeights field, raises. Returns () (a plain 0 if every weight is 0)."""
    names = [f.name for f in fields(weights)]
    unknown = set(terms) - set(names)
    if unknown:
        raise KeyError(f"unknown loss terms {sorted(unknown)}; expected some of {names}")
    out = []
    for name in names:
        w = getattr(weights, name)
        if w == 0:
            continue
        if name not in terms:
            raise KeyError(f"loss term {name!r} has weight {w} but was not computed")
        out.append(w * terms[name])
    if not out:
        ref = next(iter(terms.values()), None)
        return ref.new_zeros(()) if ref is not None else torch.zeros(())
    return sum(out)
