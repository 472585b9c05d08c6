"""Where training output goes: metrics.jsonl, TensorBoard events, the console."""

import json
import os
import sys

import numpy as np
import tqdm

from jaxgan import files


class MetricWriter:
  """Appends one JSON object per log step to metrics.jsonl and mirrors the numbers among its
  values to TensorBoard (which takes scalars only; strings, such as an evaluation's protocol,
  stay in metrics.jsonl)."""

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
        if not isinstance(v, str):
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
    files.write_bytes(path, ''.join(keep).encode())


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


def status_line(step: int, total: int, m: dict[str, float]) -> str:
  """One line per log step: where the run is and how the two players are doing."""
  line = (
    f'step {step}/{total} | d_loss {m["d_loss"]:.4f} g_loss {m["g_loss"]:.4f} | '
    f'D(x) {m["d_real"]:.3f} D(G(z)) {m["d_fake"]:.3f}'
  )
  if rate := m.get('steps_per_sec'):  # absent when the interval held only the compiling call
    line += f' | {rate:.2f} steps/s | ETA {format_duration((total - step) / rate)}'
  skipped = m.get('d_skipped', 0) + m.get('g_skipped', 0)
  if skipped:
    line += f' | skipped D {m["d_skipped"]:.0f} G {m["g_skipped"]:.0f}'
  return line


def eval_line(step: int, r: dict[str, float]) -> str:
  """One line per evaluation: every metric the dataset's feature network gave."""
  parts = [f'{k} {v:.4g}' for k, v in r.items() if k != 'eval_seconds']
  return f'eval step {step} | ' + ' | '.join(parts) + f' | {r.get("eval_seconds", 0):.0f} s'


def progress(total: int, initial: int = 0, stream=None, unit: str = 'step') -> tqdm.tqdm:
  """A progress bar of `unit`s (steps) on a terminal (stderr); silent when that is not a TTY."""
  stream = stream or sys.stderr
  return tqdm.tqdm(
    total=total,
    initial=initial,
    file=stream,
    disable=not stream.isatty(),
    unit=unit,
    dynamic_ncols=True,
    leave=False,
  )


def console(line: str) -> None:
  """A line on stdout that a progress bar on the terminal does not garble."""
  tqdm.tqdm.write(line, file=sys.stdout)
  sys.stdout.flush()
