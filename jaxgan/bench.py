"""Training-step throughput of the real trainer step, optionally against the PyTorch reference.

  python -m jaxgan.bench --config=configs/mnist_unconditional.py [--config.batch_size=256] \
    [--steps=50] [--torch]

Runs `train.make_train_fn`, jitted as the trainer jits it with the XLA options of
`jaxgan.xla_cpu.compiler_options()`, on synthetic uint8 images of the dataset's shape
(no data files needed): reports compile time, steps/s, images/s, XLA's FLOP
count per step and the FLOP/s achieved (and the fraction of the chip's peak where known). With
--torch it alternates rounds of JAX and of the PyTorch reference (same network and step,
run in a worker process of its own, on the GPU when JAX runs on one), so that both see the
same machine load, and reports the median per-round ratio. The reference mirrors the model
families `dcgan` and `resnet` (SNGAN), in float32 or bfloat16 (`--config.model.dtype`), with the
config's D/G schedule, and `stylegan2` (benchmarks/torch_stylegan2.py: lazy R1 and path length
on their intervals, EMA; without ADA or style mixing); other configs are refused before
anything is timed (`unmirrored` in benchmarks/torch_reference.py, which --torch needs: it is
part of a checkout of the repository, not of the installed package, and it needs PyTorch). On
CPU the JAX side runs with the trainer's malloc settings (`jaxgan.allocator`); PyTorch with
glibc's defaults, or with the same settings given --torch_malloc=tuned. Works from any folder:
--config takes a path (the configs of a checkout import `configs.common`: put the checkout's
root on PYTHONPATH). Prints a table and one JSON line (also written to --out).
"""

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jaxlib
import numpy as np
from absl import app, flags

from jaxgan import allocator, cli, data, files, parallel, train, xla_cpu
from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan.errors import JaxganError
from jaxgan.state import init_state
from jaxgan.train import feed

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The CLI's flags, defined only when run as a program, so that importing this module
  (JaxStep, benchmark) beside another CLI module defines no flag twice."""
  cli.define_config_flag()
  flags.DEFINE_integer('steps', 50, 'Train steps timed per round (per framework with --torch).')
  flags.DEFINE_integer('rounds', 5, 'Timed rounds; with --torch, JAX and PyTorch alternate.')
  flags.DEFINE_bool(
    'torch', False, 'Also time the PyTorch reference (benchmarks/torch_reference.py).'
  )
  flags.DEFINE_list('image_shape', None, 'H,W,C of the images; default: known for the dataset.')
  flags.DEFINE_float(
    'quiet_below',
    None,
    'Before each round, wait (up to a minute) until other processes use fewer '
    'CPU cores than this; for shared machines. Each round reports the cores others used.',
  )
  flags.DEFINE_bool(
    'layer_options',
    True,
    "Compile with jaxgan's XLA options (xla_cpu.compiler_options()), "
    'as the trainer should; --nolayer_options measures XLA defaults.',
  )
  flags.DEFINE_multi_string('xla_option', [], 'KEY=VALUE XLA compiler option to try, on top.')
  flags.DEFINE_bool(
    'tune_malloc',
    True,
    "On CPU, run JAX with the trainer's malloc settings (jaxgan.allocator); "
    '--notune_malloc measures glibc defaults.',
  )
  flags.DEFINE_enum(
    'torch_malloc',
    'default',
    ['default', 'tuned'],
    "PyTorch worker's malloc: glibc defaults (as PyTorch users run it) or jaxgan's settings.",
  )
  flags.DEFINE_string('out', None, 'Also write the JSON result to this file.')


NUM_IMAGES = 60_000  # MNIST's size: the on-device sampler gathers from an array this long
# The checkout this jaxgan was imported from, if it was: the PyTorch reference lives there.
REPO = Path(__file__).resolve().parent.parent

# Dense peak FLOP/s per device from vendor datasheets: (bfloat16, float32 without tensor cores).
# Matched as a substring of jax's device_kind, first match wins.
PEAK_FLOPS = (
  ('H100 PCIe', 756e12, 51e12),
  ('H100', 989e12, 67e12),  # SXM
  ('H200', 989e12, 67e12),
  ('A100', 312e12, 19.5e12),
  ('L4', 121e12, 30.3e12),
  ('TPU v4', 275e12, None),
  ('TPU v5 lite', 197e12, None),
  ('TPU v5', 459e12, None),  # v5p
  ('TPU v6 lite', 918e12, None),
)


class JaxStep:
  """The trainer's jitted step on synthetic data: `compile()` once, then `run(n)` -> seconds."""

  def __init__(self, config, image_shape: tuple[int, ...], compiler_options: dict | None = None):
    self.steps_per_call = config.steps_per_call
    if config.model.conditional and not (config.data.clusters or config.data.num_classes):
      config.data.num_classes = 10  # synthetic data: the count sizes the class embeddings only
    gan = gan_lib.from_config(config, image_shape)
    # The same mesh, shardings and jit arguments as train.train_and_evaluate.
    mesh = parallel.mesh()
    replicated = parallel.replicated(mesh)
    rng = jax.random.PRNGKey(config.seed)
    state_key, data_key, _ = jax.random.split(rng, 3)
    # Drawn as uint8 directly: as int64 first, CIFAR-sized images would take 1.5 GB.
    rng_np = np.random.default_rng(config.seed)
    self.images_host = rng_np.integers(0, 256, (NUM_IMAGES, *image_shape), np.uint8)
    # A conditional GAN's step takes the real images' classes too.
    labels = None
    if gan.num_classes:
      classes = np.random.default_rng(config.seed).integers(0, gan.num_classes, NUM_IMAGES)
      labels = classes.astype(np.int32)
    draws = feed.Draws(data_key, (gan.d_steps, config.batch_size))
    resident = feed.Resident((self.images_host, labels), draws, mesh)
    self.data = resident(0, 1)
    init = jax.jit(lambda key: init_state(gan, key, image_shape), out_shardings=replicated)
    self.state = init(state_key)
    self.jitted = jax.jit(
      train.make_train_fn(gan, resident),
      static_argnums=2,
      donate_argnums=0,
      compiler_options=compiler_options or None,
    )
    self.compiled = None

  def compile(self) -> float:
    """Lowers and compiles the step; returns the seconds it took."""
    t0 = time.perf_counter()
    args = (self.state, self.data, self.steps_per_call)
    self.compiled = self.jitted.lower(*args).compile()
    return time.perf_counter() - t0

  def flops_per_step(self) -> float | None:
    """XLA's FLOP count of one train step, or None if the backend gives none.

    Taken from the one-step program (XLA counts a while loop's body once, not per iteration),
    as lowered: counting the compiled program would compile it a second time (29 s against
    1.2 s for a narrow SNGAN on a busy 2-core CPU) for a count within 0.5% of this one.
    """
    if self.steps_per_call == 1:
      cost = self.compiled.cost_analysis()
    else:
      cost = self.jitted.lower(self.state, self.data, 1).cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    flops = (cost or {}).get('flops')
    return flops if flops and flops > 0 else None

  def run(self, num_steps: int) -> float:
    """Runs at least num_steps steps (whole calls); returns seconds per step."""
    calls = max(1, -(-num_steps // self.steps_per_call))
    t0 = time.perf_counter()
    for _ in range(calls):
      self.state, _ = self.compiled(self.state, self.data)
    jax.block_until_ready(self.state)
    return (time.perf_counter() - t0) / (calls * self.steps_per_call)


class TorchStep:
  """The PyTorch reference step of the same network, in a worker process: `run(n)` -> s/step.

  A process of its own, so that jaxgan's process-wide settings (malloc, XLA threads) are not
  PyTorch's: `malloc='tuned'` gives it jaxgan's malloc settings too. It runs on the GPU when
  JAX does (`device='cuda'`). The worker starts building at once; `ready()` waits for it (and
  raises JaxganError for a config the reference does not mirror), so that its start-up can
  overlap JAX's compilation. The worker is benchmarks/torch_reference.py of the checkout this
  jaxgan was imported from; without one, or without PyTorch, a JaxganError says so.
  """

  def __init__(
    self, config, image_shape: tuple[int, ...], malloc: str = 'default', device: str = 'cpu'
  ):
    if not (REPO / 'benchmarks' / 'torch_reference.py').is_file():
      raise JaxganError(
        f'--torch needs a checkout of the jaxgan repository (its benchmarks/torch_reference.py '
        f'is not part of the installed package); this jaxgan is in {REPO / "jaxgan"}'
      )
    if importlib.util.find_spec('torch') is None:
      raise JaxganError('--torch needs PyTorch: pip install torch')
    env = dict(os.environ) | (allocator.env() if malloc == 'tuned' else {})
    cmd = [sys.executable, '-m', 'benchmarks.torch_reference', '--serve', f'--device={device}']
    cmd += [f'--image_shape={",".join(map(str, image_shape))}', f'--num_images={NUM_IMAGES}']
    self.batch_size = config.batch_size
    # From the checkout's root, so that the worker imports its benchmarks/ and jaxgan/.
    self.proc = subprocess.Popen(
      cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    self.malloc = malloc
    self._send(config.to_json())
    self.hello = None

  def ready(self) -> dict:
    """The worker's versions and device, once it has built the network."""
    if self.hello is None:
      self.hello = self._receive()
      if 'error' in self.hello:
        self.close()
        raise JaxganError(f'--torch: {self.hello["error"]}')
    return self.hello

  def _send(self, line: str) -> None:
    self.proc.stdin.write(line + '\n')
    self.proc.stdin.flush()

  def _receive(self):
    answer = self.proc.stdout.readline()
    if not answer:
      raise JaxganError(
        '--torch: the PyTorch worker (python -m benchmarks.torch_reference --serve) exited; '
        'its error is above'
      )
    return json.loads(answer)

  def run(self, num_steps: int) -> float:
    self.ready()
    self._send(str(num_steps))
    return self._receive() / num_steps

  def close(self) -> None:
    self.proc.stdin.close()
    self.proc.wait()


def _busy_jiffies(pids: tuple[int, ...] = ()) -> tuple[int, int]:
  """CPU time used so far (clock ticks) by the whole machine and by this process and `pids`.

  Linux only; (0, 0) elsewhere.
  """
  try:
    with open('/proc/stat') as f:
      ticks = [int(v) for v in f.readline().split()[1:]]
    own = 0
    for pid in ('self', *pids):
      with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
      own += int(fields[11]) + int(fields[12])  # utime, stime
  except OSError:
    return 0, 0
  return sum(ticks) - ticks[3] - ticks[4], own  # all minus idle and iowait


class OtherLoad:
  """Measures the CPU cores that other processes (not this one or `pids`) use in the block."""

  def __init__(self, pids: tuple[int, ...] = ()):
    self.pids = pids

  def __enter__(self):
    self.t0, self.jiffies = time.perf_counter(), _busy_jiffies(self.pids)
    return self

  def __exit__(self, *exc):
    (all1, own1), (all0, own0) = _busy_jiffies(self.pids), self.jiffies
    seconds = (time.perf_counter() - self.t0) * os.sysconf('SC_CLK_TCK')
    self.cores = max(0.0, (all1 - all0) - (own1 - own0)) / seconds


def wait_until_quiet(max_cores: float, timeout_s: float = 60) -> float:
  """Waits until other processes use fewer than max_cores cores; returns their last usage."""
  deadline = time.perf_counter() + timeout_s
  while True:
    with OtherLoad() as load:
      time.sleep(0.5)
    if load.cores < max_cores or time.perf_counter() > deadline:
      return load.cores


def peak_flops(device_kind: str) -> tuple[float | None, float | None]:
  """(bf16, fp32) dense peak FLOP/s of one device, None where unknown."""
  for name, bf16, fp32 in PEAK_FLOPS:
    if name in device_kind:
      return bf16, fp32
  return None, None


def image_shape_for(config, override: list[str] | None) -> tuple[int, ...]:
  """The images' (H, W, C): --image_shape, else the data source's, so no data files are read."""
  if override:
    return tuple(int(v) for v in override)
  shape = data.image_shape(config.data)
  if shape is None:
    name = config.data.name
    raise app.UsageError(f'unknown image shape for dataset {name!r}: pass --image_shape=H,W,C')
  return shape


def benchmark(
  config,
  image_shape: tuple[int, ...],
  steps: int = 50,
  rounds: int = 5,
  with_torch: bool = False,
  compiler_options: dict | None = None,
  quiet_below: float | None = None,
  tune_malloc: bool = True,
  torch_malloc: str = 'default',
) -> dict:
  """Compiles and times the train step (alternating with PyTorch); returns the results."""
  config_lib.complete(config)
  tuned = tune_malloc and jax.default_backend() == 'cpu' and allocator.tune()
  torch_step = None
  if with_torch:  # first: it builds its network while JAX compiles
    torch_device = 'cuda' if jax.default_backend() == 'gpu' else 'cpu'
    torch_step = TorchStep(config, image_shape, torch_malloc, torch_device)
  try:
    jax_step = JaxStep(config, image_shape, compiler_options)
    compile_s = jax_step.compile()
    if torch_step:
      torch_step.ready()
    # Warm-up: first-call allocations here, oneDNN's primitive cache (on GPU cuDNN's
    # autotuning) in PyTorch.
    jax_step.run(min(steps, 5))
    if torch_step:
      torch_step.run(min(steps, 5))
    jax_s, torch_s, other_cores = [], [], []
    for _ in range(rounds):
      if quiet_below is not None:
        wait_until_quiet(quiet_below)
      with OtherLoad((torch_step.proc.pid,) if torch_step else ()) as load:
        jax_s.append(jax_step.run(steps))
        if torch_step:
          torch_s.append(torch_step.run(steps))
      other_cores.append(load.cores)
  finally:
    if torch_step:
      torch_step.close()
  step_s = statistics.median(jax_s)
  flops = jax_step.flops_per_step()
  device = jax.devices()[0]
  result = {
    'model': config.model.name,
    'dtype': config.model.get('dtype', 'float32'),  # a family may have no dtype key
    'd_steps': config.train.d_steps,
    'g_steps': config.train.g_steps,
    'batch_size': config.batch_size,
    'image_shape': list(image_shape),
    'steps_per_s': 1 / step_s,
    'images_per_s': config.batch_size / step_s,
    'step_ms': 1e3 * step_s,
    'compile_s': compile_s,
    'gflop_per_step': flops / 1e9 if flops else None,
    'gflop_per_s': flops / step_s / 1e9 if flops else None,
    'rounds': rounds,
    'steps_per_round': steps,
    'jax_steps_per_s_rounds': [1 / s for s in jax_s],
    'backend': jax.default_backend(),
    'device_kind': device.device_kind,
    'num_devices': jax.device_count(),
    'jax': jax.__version__,
    'jaxlib': jaxlib.__version__,
    'compiler_options': compiler_options or {},
    'malloc_tuned': bool(tuned),
    'cpu': _cpu_model(),
    'nproc': os.cpu_count(),
    'other_processes_cores_rounds': other_cores,
  }
  bf16, fp32 = peak_flops(device.device_kind) if result['backend'] != 'cpu' else (None, None)
  if flops and bf16:
    result['fraction_of_peak_bf16'] = flops / step_s / (bf16 * jax.device_count())
  if flops and fp32:
    result['fraction_of_peak_fp32'] = flops / step_s / (fp32 * jax.device_count())
  if torch_step:
    ratios = [t / j for j, t in zip(jax_s, torch_s, strict=True)]
    result.update(
      torch_steps_per_s=1 / statistics.median(torch_s),
      torch_steps_per_s_rounds=[1 / s for s in torch_s],
      ratio_jax_over_torch=statistics.median(ratios),
      torch=torch_step.hello['torch'],
      torch_threads=torch_step.hello['threads'],
      torch_device=torch_step.hello['device'],
      torch_tf32=torch_step.hello['tf32'],
      torch_malloc=torch_step.malloc,
    )
  return result


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def format_table(r: dict) -> str:
  """The results as aligned `name  value` lines."""

  def num(v, fmt):
    return '-' if v is None else format(v, fmt)

  rows = [
    (
      'device',
      f'{r["backend"]}: {r["num_devices"]} x {r["device_kind"]} ({r["cpu"]}, {r["nproc"]} CPUs)',
    ),
    ('versions', f'jax {r["jax"]}' + (f', torch {r["torch"]}' if 'torch' in r else '')),
    (
      'model',
      f'{r["model"]}, {r["dtype"]}; a step is {r["d_steps"]} D and {r["g_steps"]} G updates',
    ),
    ('batch, image', f'{r["batch_size"]}, {"x".join(map(str, r["image_shape"]))}'),
    ('compile', f'{r["compile_s"]:.1f} s'),
    ('malloc', 'jaxgan.allocator settings' if r['malloc_tuned'] else 'glibc defaults'),
    (
      'jax steps/s',
      f'{r["steps_per_s"]:.2f}  (rounds: '
      + ' '.join(f'{v:.2f}' for v in r['jax_steps_per_s_rounds'])
      + ')',
    ),
    ('images/s', f'{r["images_per_s"]:.0f}'),
    ('GFLOP/step', num(r['gflop_per_step'], '.2f')),
    ('GFLOP/s', num(r['gflop_per_s'], '.1f')),
  ]
  for key in ('fraction_of_peak_bf16', 'fraction_of_peak_fp32'):
    if key in r:
      rows.append((key.replace('_', ' '), f'{r[key]:.1%}'))
  if 'torch' in r:
    rows += [
      (
        'torch steps/s',
        f'{r["torch_steps_per_s"]:.2f}  (rounds: '
        + ' '.join(f'{v:.2f}' for v in r['torch_steps_per_s_rounds'])
        + f'; {r["torch_device"]}, {r["torch_threads"]} threads, {r["torch_malloc"]} malloc)',
      ),
      ('jax / torch', f'{r["ratio_jax_over_torch"]:.2f}x  (median of per-round ratios)'),
    ]
  others = ' '.join(f'{v:.2f}' for v in r['other_processes_cores_rounds'])
  rows.append(('other load', f'{others} cores (per round, other processes)'))
  width = max(len(k) for k, _ in rows)
  return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


def main():
  options = xla_cpu.compiler_options() if FLAGS.layer_options else {}
  options |= dict(o.split('=', 1) for o in FLAGS.xla_option)
  config = FLAGS.config
  cli.guarded(lambda: config_lib.validate(config), FLAGS.verbose)
  result = cli.guarded(
    lambda: benchmark(
      config,
      image_shape_for(config, FLAGS.image_shape),
      steps=FLAGS.steps,
      rounds=FLAGS.rounds,
      with_torch=FLAGS.torch,
      compiler_options=options,
      quiet_below=FLAGS.quiet_below,
      tune_malloc=FLAGS.tune_malloc,
      torch_malloc=FLAGS.torch_malloc,
    ),
    FLAGS.verbose,
  )
  print(format_table(result))
  print(json.dumps(result), flush=True)
  if FLAGS.out:
    files.write_json(FLAGS.out, result)
  sys.stdout.flush()


if __name__ == '__main__':
  _define_flags()
  cli.run(main, with_config=True)
