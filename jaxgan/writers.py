"""Where training output goes: metrics.jsonl, TensorBoard events, PNG grids, the console."""

import json
import math
import os
import sys
import time

import numpy as np
from PIL import Image


class MetricWriter:
  """Appends one JSON object per log step to metrics.jsonl and mirrors scalars to TensorBoard."""

  def __init__(
    self, workdir: str, resume_step: int = 0, tensorboard: bool = True, enabled: bool = True
  ):
    """`enabled=False` (processes other than 0) writes nothing at all."""
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.enabled = enabled
    self._tb = None
    if not enabled:
      return
    _truncate_after(self.path, resume_step)
    if tensorboard:
      from tensorboardX import SummaryWriter  # imported lazily: it pulls in protobuf

      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': step, **scalars}) + '\n')
    if self._tb:
      for k, v in scalars.items():
        self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    if self._tb:
      self._tb.add_image(name, image, step, dataformats='HWC')

  def close(self) -> None:
    if self._tb:
      self._tb.close()


def _truncate_after(path: str, step: int) -> None:
  """Drops lines logged after `step` by a run that stopped before checkpointing them."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [ln for ln in f if ln.strip()]
  keep = []
  for ln in lines:
    try:
      if json.loads(ln)['step'] <= step:
        keep.append(ln)
    except (ValueError, KeyError):
      continue  # a line cut short by a kill
  if len(keep) != len(lines):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      f.writelines(keep)
    os.replace(tmp, path)


def image_grid(images: np.ndarray, pad: int = 1, cols: int | None = None) -> np.ndarray:
  """(N, H, W, C) floats in [-1, 1] -> one uint8 grid, `cols` wide (default: near-square)."""
  n, h, w, c = images.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  pixels = np.clip((np.asarray(images, np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
  grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y : y + h, x : x + w] = pixels[i]
  return grid


def save_png(path: str, grid: np.ndarray) -> None:
  """Writes a uint8 (H, W, 1 or 3) array as PNG, atomically."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  tmp = path + '.tmp.png'
  img.save(tmp)
  os.replace(tmp, path)


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


def status_line(step: int, total: int, m: dict[str, float]) -> str:
  """One line per log step: where the run is and how the two players are doing."""
  rate = m.get('steps_per_sec', 0.0)  # 0 when the interval held only the compiling call
  speed = f'{rate:.2f} steps/s | ETA {format_duration((total - step) / rate)}' if rate else '-'
  line = (
    f'step {step}/{total} | d_loss {m["d_loss"]:.4f} g_loss {m["g_loss"]:.4f} | '
    f'D(x) {m["d_real"]:.3f} D(G(z)) {m["d_fake"]:.3f} | {speed}'
  )
  skipped = m.get('d_skipped', 0) + m.get('g_skipped', 0)
  if skipped:
    line += f' | skipped D {m["d_skipped"]:.0f} G {m["g_skipped"]:.0f}'
  return line


def eval_line(step: int, r: dict[str, float]) -> str:
  """One line per evaluation: the sample-quality metrics that exist for this dataset."""
  parts = [f'{k} {r[k]:.4g}' for k in ('fid', 'classifier_score', 'precision', 'recall') if k in r]
  if 'classes_covered' in r:
    parts.append(f'classes {r["classes_covered"]:.0f}/10')
  if 'modes_covered' in r:
    parts.append(f'modes {r["modes_covered"]:.0f}/1000')
  return f'eval step {step} | ' + ' | '.join(parts) + f' | {r.get("eval_seconds", 0):.0f} s'


class Progress:
  """A self-overwriting progress line on a terminal (stderr); silent when not a TTY."""

  def __init__(self, total: int, stream=sys.stderr):
    self.total = total
    self.stream = stream
    self.enabled = stream.isatty()
    self._last = 0.0
    self._t0 = None
    self._s0 = 0

  def update(self, step: int) -> None:
    now = time.time()
    if not self.enabled or now - self._last < 0.5:
      return
    if self._t0 is None:
      self._t0, self._s0 = now, step
    self._last = now
    rate = (step - self._s0) / max(now - self._t0, 1e-9)
    frac = step / max(self.total, 1)
    bar = '#' * int(30 * frac)
    eta = format_duration((self.total - step) / rate) if rate > 0 else '?'
    self.stream.write(f'\r[{bar:<30}] {step}/{self.total} {rate:.1f} steps/s ETA {eta} ')
    self.stream.flush()

  def clear(self) -> None:
    if self.enabled:
      self.stream.write('\r' + ' ' * 79 + '\r')
      self.stream.flush()
