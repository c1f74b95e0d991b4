"""Store boolean tensors at 1 bit per element: `ceil(n / 8)` uint8 bytes, most significant bit first."""

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F


def _bit_values(device: torch.device) -> torch.Tensor:
    return torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=device)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A flat uint8 tensor of `ceil(mask.numel() / 8)` bytes holding `mask`'s truth values."""
    flat = mask.detach().flatten().to(torch.uint8)
    flat = F.pad(flat, (0, -flat.numel() % 8))  # the last byte is padded with zero bits
    return (flat.view(-1, 8) * _bit_values(flat.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The boolean tensor of `shape` that `pack_bits` stored in `packed`."""
    bits = packed.unsqueeze(1).bitwise_and(_bit_values(packed.device)).ne(0)
    return bits.flatten()[:math.prod(shape)].view(shape)
