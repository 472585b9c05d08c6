"""Pixels: uint8 <-> [-1, 1] floats (the range of G's tanh), sample grids and PNG files."""

import math

import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxgan import files


def to_float(images):
  """uint8 pixels -> float32 in [-1, 1]; float images pass through as float32.

  Works on numpy and jax arrays alike (it runs inside the jitted step too).
  """
  xp = jnp if not isinstance(images, np.ndarray) else np
  if images.dtype == np.uint8:
    return images.astype(xp.float32) / 127.5 - 1.0
  return images.astype(xp.float32)


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 pixels, rounded to nearest."""
  return np.clip((np.asarray(images, np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def grid(images, pad: int = 1, cols: int | None = None) -> np.ndarray:
  """(N, H, W, C) floats in [-1, 1] -> one uint8 grid, `cols` wide (default: near-square)."""
  n, h, w, c = images.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  pixels = to_uint8(images)
  out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    out[y : y + h, x : x + w] = pixels[i]
  return out


def save_png(path: str, pixels: np.ndarray) -> None:
  """Writes a uint8 (H, W, 1 or 3) array as PNG, atomically."""
  img = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
  with files.atomic_path(path, suffix='.png') as tmp:
    img.save(tmp)
