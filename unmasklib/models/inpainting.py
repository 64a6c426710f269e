"""Phase 2's networks: the inpainting U-Net G and the PatchGAN critic D.

    G([noisy masked image, occlusion, 3D render])  (B, 7, H, W) -> correction (B, 3, H, W)
    painted = clamp(3D render + correction, -1, 1)
    composite = occlusion * painted + (1 - occlusion) * masked image

G is a U-Net: a full-resolution stem, stride-2 convolutions down to a 16 x 16 bottleneck
(2 steps at 64 px, 3 at 128, 4 at 256), 6 residual blocks there, and a decoder that brings
each level up to the next finer one (a 1x1 convolution to its channels, nearest upsampling,
which avoids the checkerboard of transposed convolutions), adds the encoder's features of
that size (the skip connection, which carries the visible skin's detail to the output) and
mixes them with a 3x3 convolution. Channels double per level up to 4 x `width`. Adding the
skip rather than concatenating it halves the input of the decoder's convolutions, which
run at the finest resolutions: the whole G costs a third fewer FLOPs.
Ending the encoder at a fixed 16 x 16 whatever the image size keeps the six residual blocks,
which see the whole face, at the same cost per image at every resolution.

G paints a correction of the render rather than colours from scratch (`residual=True`): its
last convolution starts at zero, so an untrained G pastes the render, whose colours come from
the fitted face's own albedo and light, and training only has to learn what the render gets
wrong (the skin's detail, what lies off the mesh, the mouth N3D could not see). Painting from
scratch (`residual=False`, a tanh of the last convolution) is the ablation: its colours drift
(a pinker lower face than the visible one).

What G returns is the composite: pixels outside the occlusion are the input's, exactly (the
occlusion is binary). The noise in the hidden region (`inject_noise`) is what a new seed
changes: with the expression of the render it is the source of "sample another".

D is a PatchGAN critic (Isola et al. 2017): 6 convolutions, the first 4 with stride 2, so each
of its outputs judges one patch. It sees the image with the occlusion map beside it, so it
knows which pixels were painted. No normalisation layer: the gradient penalty
(`losses.gradient_penalty`) is defined per sample, and batch statistics would couple them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BOTTLENECK_SIZE = 16
RESIDUAL_BLOCKS = 6
MAX_WIDTH_FACTOR = 4
INPUT_CHANNELS = 7    # noisy masked image 3, occlusion 1, render 3
NOISE_STD = 1.0       # the hidden region's noise, in [-1, 1] image units


def inject_noise(masked: torch.Tensor, occlusion: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """`masked` `(B, 3, H, W)` in [-1, 1] with its occluded pixels (`occlusion` `(B, 1, H, W)`
    in {0, 1}) replaced by Gaussian noise of std `NOISE_STD`: the mask's own colours never
    reach G, and each noise draw is one completion. `generator` (a CPU generator) fixes the
    draw on any device; None uses the global RNG (which training seeds)."""
    noise = torch.randn(masked.shape, generator=generator, dtype=masked.dtype)
    noise = noise.to(masked.device) * NOISE_STD
    return torch.where(occlusion > 0.5, noise, masked)


def composite(painted: torch.Tensor, masked: torch.Tensor,
              occlusion: torch.Tensor) -> torch.Tensor:
    """`occlusion * painted + (1 - occlusion) * masked`, all `(B, C, H, W)`; with a binary
    occlusion the pixels outside it are `masked`'s bit for bit."""
    return torch.where(occlusion > 0.5, painted, masked)


def downsampling_steps(image_size: int) -> int:
    """Stride-2 steps from `image_size` to the `BOTTLENECK_SIZE` bottleneck (at least 1)."""
    if image_size % BOTTLENECK_SIZE or image_size < 2 * BOTTLENECK_SIZE:
        raise ValueError(f"image size must be a multiple of {BOTTLENECK_SIZE} and at least "
                         f"{2 * BOTTLENECK_SIZE}, got {image_size}")
    return int(math.log2(image_size // BOTTLENECK_SIZE))


def conv_norm_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    # Batch normalisation (running statistics in eval mode) rather than instance
    # normalisation: on a CPU the latter's reshapes and copies took a fifth of a step.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))), channels kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class InpaintingGenerator(nn.Module):
    """U-Net G of phase 2 for square images of side `image_size`.

    forward(masked, occlusion, render, generator=None) -> composite `(B, 3, H, W)` in [-1, 1]:
        masked `(B, 3, H, W)` in [-1, 1], the face with its mask; occlusion `(B, 1, H, W)` in
        {0, 1} (1: hidden); render `(B, 3, H, W)` in [-1, 1], the 3D face to follow (black
        background). `generator` fixes the noise of the hidden region (`inject_noise`).
    use_render=False builds the "no 3D prior" ablation: same network, render channels zeroed
    (and with `residual`, a correction of mid-grey). residual=False: G paints from scratch.
    matched_guide: whether the render it follows is `painting.photo_matched_render` (its
    callers make that render; G only remembers which it learned).
    """

    def __init__(self, image_size: int, width: int = 32, use_render: bool = True,
                 residual: bool = True, matched_guide: bool = True) -> None:
        super().__init__()
        self.image_size, self.use_render, self.residual = image_size, use_render, residual
        # Read by its callers (`painting.render_guide`): which render G learned to follow.
        self.matched_guide = matched_guide
        levels = downsampling_steps(image_size)
        channels = [width * min(2 ** level, MAX_WIDTH_FACTOR) for level in range(levels + 1)]
        self.stem = conv_norm_relu(INPUT_CHANNELS, channels[0])
        self.down = nn.ModuleList(conv_norm_relu(channels[k], channels[k + 1], stride=2)
                                  for k in range(levels))
        self.bottleneck = nn.Sequential(*(ResidualBlock(channels[-1])
                                          for _ in range(RESIDUAL_BLOCKS)))
        # Level k of the decoder brings level k+1's output to level k's size and channels.
        self.lift = nn.ModuleList(nn.Conv2d(channels[k + 1], channels[k], 1)
                                  for k in reversed(range(levels)))
        self.mix = nn.ModuleList(conv_norm_relu(channels[k], channels[k])
                                 for k in reversed(range(levels)))
        self.to_rgb = nn.Conv2d(channels[0], 3, 3, padding=1)
        if residual:
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)

    def paint(self, inputs: torch.Tensor) -> torch.Tensor:
        """The raw painting `(B, 3, H, W)` in [-1, 1] of G's 7-channel input (every pixel,
        before compositing): the render (its last 3 channels) plus G's correction, or G's
        colours alone without `residual`."""
        x = self.stem(inputs)
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.bottleneck(x)
        for lift, mix, skip in zip(self.lift, self.mix, reversed(skips[:-1]), strict=True):
            x = mix(F.interpolate(lift(x), scale_factor=2.0, mode="nearest") + skip)
        if self.residual:
            return (inputs[:, -3:] + self.to_rgb(x)).clamp(-1, 1)
        return torch.tanh(self.to_rgb(x))

    def inputs(self, masked: torch.Tensor, occlusion: torch.Tensor, render: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """G's input `(B, 7, H, W)`: noisy masked image, occlusion, render (zeros without
        the 3D prior). Checks the shapes and names what is wrong."""
        size = (self.image_size, self.image_size)
        for name, x, channels in (("masked", masked, 3), ("occlusion", occlusion, 1),
                                  ("render", render, 3)):
            if x.dim() != 4 or x.shape[1] != channels or tuple(x.shape[-2:]) != size:
                raise ValueError(f"{name} must be (B, {channels}, {size[0]}, {size[1]}), "
                                 f"got {tuple(x.shape)}")
        if not self.use_render:
            render = torch.zeros_like(render)
        return torch.cat([inject_noise(masked, occlusion, generator), occlusion.to(masked),
                          render], 1)

    def forward(self, masked: torch.Tensor, occlusion: torch.Tensor, render: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        painted = self.paint(self.inputs(masked, occlusion, render, generator))
        return composite(painted, masked, occlusion)


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: `(B, 3, H, W)` image in [-1, 1] and `(B, 1, H, W)` occlusion ->
    `(B, 1, H/16, W/16)` realness scores (any real; larger: more real).

    6 convolutions: 4 x 4 with stride 2 four times (`width`, 2x, 4x, 8x channels), then two
    3 x 3 with stride 1; LeakyReLU(0.2) between them.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        channels = [4, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for k in range(4):
            layers += [nn.Conv2d(channels[k], channels[k + 1], 4, stride=2, padding=1),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(channels[-1], channels[-1], 3, padding=1),
                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(channels[-1], 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([images, occlusion.to(images)], 1))
