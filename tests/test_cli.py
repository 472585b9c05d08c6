"""The command line as a user runs it: real subprocesses, real signals, exit codes."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, SHARED_MNIST

CMD = [sys.executable, '-m', 'jaxgan.main', '--config=configs/test.py']


def run(workdir, *args, timeout=240):
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  return subprocess.run(
    [*CMD, f'--workdir={workdir}', *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def start_long_run(workdir, log_every: int, checkpoint_every: int) -> subprocess.Popen:
  """A training process that runs until it is signalled; its status lines on stdout."""
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  args = [
    *CMD,
    f'--workdir={workdir}',
    '--config.num_steps=100000',
    '--config.sample_every=0',
    f'--config.log_every={log_every}',
    f'--config.checkpoint_every={checkpoint_every}',
  ]
  return subprocess.Popen(
    args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
  )


def test_train_command(tmp_path):
  r = run(tmp_path)
  assert r.returncode == 0, r.stderr[-2000:]
  status = [ln for ln in r.stdout.splitlines() if ln.startswith('step ')]
  assert len(status) == 3 and 'D(G(z))' in status[-1] and 'steps/s' in status[-1]
  assert (tmp_path / 'samples' / 'step_000006.png').exists()


@pytest.mark.parametrize(
  'args, message',
  [
    (['--config.nonexistent=1'], 'unknown config key'),
    (['--config.batch_size=abc'], 'batch_size'),
    (['--config.batch_size=0'], 'config.batch_size must be >= 1'),
    (['--config.optim.g_lr=-0.1'], 'config.optim.g_lr must be > 0'),
    (['--config.model.upsample=bilinear'], 'config.model.upsample must be one of'),
    (['--config.data.dir=/nonexistent/mnist'], 'train-images-idx3-ubyte'),
  ],
  ids=['unknown-key', 'wrong-type', 'batch-0', 'negative-lr', 'bad-upsample', 'missing-data'],
)
def test_bad_input_one_line_error(tmp_path, args, message):
  r = run(tmp_path / 'w', *args)
  assert r.returncode == 2
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert len(errors) == 1 and message in errors[0], r.stderr[-2000:]
  assert 'Traceback' not in r.stderr


def _one_error_line(r) -> str:
  """The single `jaxgan: error:` line of a failed command, which exited with code 2."""
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
  assert 'Traceback' not in r.stderr
  return errors[0]


def test_unwritable_workdir_cli(tmp_path):
  (tmp_path / 'file').write_text('not a directory')
  r = run(tmp_path / 'file' / 'w')
  assert 'is not writable: Not a directory' in _one_error_line(r)
  assert sorted(os.listdir(tmp_path)) == ['file']


@pytest.fixture
def corrupt_mnist(tmp_path):
  """The MNIST folder with its training images cut short (their first 100,000 bytes)."""
  folder = tmp_path / 'mnist'
  folder.mkdir()
  for name in os.listdir(SHARED_MNIST):
    (folder / name).symlink_to(SHARED_MNIST / name)
  images = folder / 'train-images-idx3-ubyte.gz'
  images.unlink()
  images.write_bytes((SHARED_MNIST / images.name).read_bytes()[:100_000])
  return folder


def test_corrupt_data_cli(tmp_path, corrupt_mnist):
  r = run(tmp_path / 'w', f'--config.data.dir={corrupt_mnist}')
  line = _one_error_line(r)
  assert 'train-images-idx3-ubyte.gz: corrupt or truncated' in line, line
  assert not (tmp_path / 'w').exists()  # nothing written: not even the new workdir
  (tmp_path / 'mine').mkdir()  # a workdir the user made is kept, and left empty
  _one_error_line(run(tmp_path / 'mine', f'--config.data.dir={corrupt_mnist}'))
  assert os.listdir(tmp_path / 'mine') == []


def test_verbose_shows_the_traceback(tmp_path, corrupt_mnist):
  r = run(tmp_path / 'w', f'--config.data.dir={corrupt_mnist}', '--verbose')
  assert r.returncode not in (0, 2), r.stderr[-2000:]
  assert 'Traceback (most recent call last)' in r.stderr
  assert 'jaxgan.errors.DataError: ' in r.stderr and 'corrupt or truncated' in r.stderr
  assert 'jaxgan: error:' not in r.stderr


def test_incompatible_checkpoint_cli(tmp_path):
  assert run(tmp_path, '--config.num_steps=3').returncode == 0
  r = run(tmp_path, '--config.model.g_features=(32,8)')
  assert r.returncode == 2
  assert 'does not fit this config' in r.stderr and 'Traceback' not in r.stderr
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3']


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_checkpoints_and_resumes(tmp_path, sig, code):
  proc = start_long_run(tmp_path, log_every=20, checkpoint_every=100000)
  try:
    deadline = time.time() + 180
    for line in proc.stdout:
      if line.startswith('step ') or time.time() > deadline:
        break
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
  finally:
    proc.kill()
  assert proc.returncode == code
  assert 'checkpoint at step' in out
  steps = [int(s) for s in os.listdir(tmp_path / 'checkpoints') if s.isdigit()]
  assert len(steps) == 1 and steps[0] >= 20
  if sig != signal.SIGTERM:
    return  # resuming does not depend on the signal that stopped the run
  # Running the same command again resumes from there and finishes.
  r = run(tmp_path, f'--config.num_steps={steps[0] + 2}', '--config.log_every=1')
  assert r.returncode == 0, r.stderr[-2000:]
  assert f'Resumed from step {steps[0]}' in r.stderr
  assert [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith('step ')] == [
    f'{steps[0] + 1}/{steps[0] + 2}',
    f'{steps[0] + 2}/{steps[0] + 2}',
  ]


def test_one_run_per_workdir_and_lock_freed_by_kill(tmp_path):
  first = start_long_run(tmp_path, log_every=10, checkpoint_every=10)
  try:
    for line in first.stdout:
      if line.startswith('step '):
        break
    second = run(tmp_path)
    assert second.returncode == 2
    assert f'is in use by another jaxgan run (pid {first.pid})' in second.stderr
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  # SIGKILL leaves no time to clean up; the OS frees the lock and the next run resumes.
  latest = max(int(s) for s in os.listdir(tmp_path / 'checkpoints') if s.isdigit())
  again = run(tmp_path, f'--config.num_steps={latest + 2}', '--config.sample_every=0')
  assert again.returncode == 0, again.stderr[-2000:]
  assert f'Resumed from step {latest}' in again.stderr


def test_cli_modules_import_together():
  # Each defines its flags only when run, so a library user can import them all in one process.
  modules = 'jaxgan.main, jaxgan.prepare, jaxgan.bench, jaxgan.evaluate'
  result = subprocess.run(
    [sys.executable, '-c', f'import {modules}'], cwd=REPO, capture_output=True, text=True
  )
  assert result.returncode == 0, result.stderr[-2000:]
