"""One code path for 1 to 8 devices: the batch is sharded over a 'data' mesh axis.

Each run is a subprocess, since the number of (fake CPU) devices is fixed when JAX starts.
Tolerances: the sharded runs sum the batch in a different order, so losses agree to float32
rounding (rtol 1e-5). Parameters are compared more loosely: Adam divides by sqrt(v), so a
rounding-level change in a near-zero gradient can change that parameter's update by up to
~lr, in either run; over n steps that bounds the difference by n * 2 * lr, with each
network's own learning rate from the run's config (`param_atol`). Each network's other arrays
(batch statistics, Adam's moments) are held to the same bound.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

from jaxgan import workdir as workdir_lib
from tests.conftest import REPO
from tests.instrumented import SHARDING_PREFIX


def run(workdir, devices: int, num_steps: int = 6):
  """Trains configs/test.py on `devices` CPU devices; returns the metrics rows.

  Also checks how the compiler laid out the batches that D sees (tests/instrumented.py): each
  device holds its 1/devices of the real and of the fake batch, not the whole batch.
  """
  env = {
    **os.environ,
    'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
    'JAXGAN_TEST_SHARDING': '1',
  }
  args = [
    sys.executable,
    '-m',
    'tests.instrumented',
    '--config=configs/test.py',
    f'--workdir={workdir}',
    '--config.log_every=1',
    f'--config.num_steps={num_steps}',
    '--config.sample_every=0',
  ]
  r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  config, image_shape, _ = workdir_lib.read_run(str(workdir))
  part = (config.batch_size // devices, *image_shape)
  shown = {line for line in r.stdout.splitlines() if line.startswith(SHARDING_PREFIX)}
  assert shown == {
    f"{SHARDING_PREFIX}D's {name} batch, one device's part: {part}" for name in ('real', 'fake')
  }
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def losses(rows):
  return np.array([[r['d_loss'], r['g_loss'], r['d_real'], r['d_fake']] for r in rows])


def param_atol(config, num_steps: int) -> dict[str, float]:
  """The bound on each network's parameter differences (the module docstring)."""
  d, g = (num_steps * 2 * lr for lr in (config.optim.d_lr, config.optim.g_lr))
  fields = {'d': ('d_params', 'd_vars', 'd_opt_state'), 'g': ('g_params', 'g_vars', 'g_opt_state')}
  return {f: d for f in fields['d']} | {f: g for f in (*fields['g'], 'g_ema_params')}


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('one')
  return workdir, run(workdir, 1)


@pytest.mark.parametrize('devices', [8])
def test_same_run_on_several_devices(one_device, tmp_path, devices):
  ref_dir, ref = one_device
  rows = run(tmp_path, devices)  # each device trained on 1/8 of each batch (checked in run)
  np.testing.assert_allclose(losses(rows), losses(ref), rtol=1e-5)
  config, _, a = workdir_lib.load_run(str(ref_dir))
  _, _, b = workdir_lib.load_run(str(tmp_path))
  atol = param_atol(config, num_steps=6)
  for field in ('step', 'rng', 'ada'):
    jax.tree.map(np.testing.assert_array_equal, getattr(a, field), getattr(b, field))
  for field, bound in atol.items():
    jax.tree.map(
      lambda x, y, bound=bound: np.testing.assert_allclose(x, y, rtol=0, atol=bound),
      getattr(a, field),
      getattr(b, field),
    )


def test_resume_on_fewer_then_more_devices(one_device, tmp_path):
  """4 devices for 2 steps, then 1 for 2, then 2 for the last 2: the same run."""
  _, ref = one_device
  for devices, num_steps in ((4, 2), (1, 4), (2, 6)):
    rows = run(tmp_path, devices, num_steps=num_steps)
  assert [r['step'] for r in rows] == [1, 2, 3, 4, 5, 6]
  np.testing.assert_allclose(losses(rows), losses(ref), rtol=1e-5)


def test_batch_must_divide_over_devices(tmp_path):
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=3'}
  args = [sys.executable, '-m', 'jaxgan.main', '--config=configs/test.py', f'--workdir={tmp_path}']
  r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2
  assert 'batch_size=8 must be divisible by the 3 devices' in r.stderr


def start_two_processes(workdir, *args) -> list[subprocess.Popen]:
  """Two local processes x 2 CPU devices, jax.distributed over loopback (gloo collectives)."""
  import socket

  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  env = {
    **os.environ,
    'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
    'PYTHONUNBUFFERED': '1',
  }
  return [
    subprocess.Popen(
      [
        sys.executable,
        '-m',
        'jaxgan.main',
        '--config=configs/test.py',
        f'--workdir={workdir}',
        *args,
        f'--coordinator_address=127.0.0.1:{port}',
        '--num_processes=2',
        f'--process_id={i}',
      ],
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]


@pytest.mark.parametrize('on_device', ['yes', 'no'])
def test_two_processes_match_one(one_device, tmp_path, on_device):
  """2 local processes x 2 CPU devices (gloo collectives over loopback) = one 4-device run,
  with the data on every device or streamed, each process then reading its half of a batch."""
  procs = start_two_processes(
    tmp_path,
    '--config.log_every=1',
    '--config.sample_every=3',
    f'--config.data.on_device={on_device}',
  )
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
  if on_device == 'no':  # batch 8 over 4 devices: rows 0-3 on process 0, 4-7 on process 1
    assert 'this process reads rows 0-3 of each 8' in outs[0]
    assert 'this process reads rows 4-7 of each 8' in outs[1]
  # Only process 0 prints status lines and writes metrics and samples.
  assert 'step 6/6' in outs[0] and 'step 6/6' not in outs[1]
  with open(tmp_path / 'metrics.jsonl') as f:
    rows = [json.loads(line) for line in f]
  np.testing.assert_allclose(losses(rows), losses(one_device[1]), rtol=1e-5)
  assert sorted(os.listdir(tmp_path / 'samples')) == ['step_000003.png', 'step_000006.png']
  _, _, state = workdir_lib.load_run(str(tmp_path))  # the jointly written checkpoint restores here
  assert int(state.step) == 6


def test_a_signal_to_one_process_stops_both_at_the_same_step(tmp_path):
  """SIGTERM to process 1 only (as when one host of a slice is preempted first): both agree
  on the stop step, write one checkpoint together and exit 0, and none waits forever in a
  collective the other never enters."""
  procs = start_two_processes(
    tmp_path,
    '--config.num_steps=100000',
    '--config.log_every=1',
    '--config.sample_every=0',
    '--config.checkpoint_every=100000',
  )
  # A deadline for the wait below: a process that fails early must fail the test, not hang it.
  watchdog = threading.Timer(600, lambda: [p.kill() for p in procs])
  watchdog.start()
  try:
    # Process 0 prints a status line per step once both train (each step is a collective).
    for line in procs[0].stdout:
      if line.startswith('step 3/'):
        break
    else:
      pytest.fail('process 0 never reached step 3 (or the 600 s deadline passed)')
    procs[1].send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=300)[0] for p in procs]
  finally:
    watchdog.cancel()
    for p in procs:
      p.kill()
  assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
  stops = [re.search(r'received: checkpoint at step (\d+) saved', out) for out in outs]
  assert all(stops), outs
  step = int(stops[0].group(1))
  assert int(stops[1].group(1)) == step and 'SIGTERM received' in outs[1]
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == [str(step)]
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert rows[-1]['step'] == step
  _, _, state = workdir_lib.load_run(str(tmp_path))
  assert int(state.step) == step
