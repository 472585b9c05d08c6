"""`python -m jaxgan.main` with test-only instruments, which the environment turns on.

  python -m tests.instrumented --config=... --workdir=...   (the flags of jaxgan.main)

The library has no hooks for tests; these patch it, or orbax, in this process only.

- JAXGAN_TEST_SHARDING=1: prints, once per compilation, how the compiler laid out each batch
  that D sees: `jaxgan-test: D's real batch, one device's part: (1, 28, 28, 1)` (and the same
  for the fake batch), from `jax.debug.inspect_array_sharding`, the sharding XLA chose.
- JAXGAN_TEST_PAUSE_CHECKPOINT=STEP:FILE: the checkpoint writer holds step STEP's checkpoint
  in WORKDIR/checkpoints just before it commits it (orbax's rename of the temporary directory
  into place), writes the temporary directory's path to FILE and waits there for ever, for a
  test to kill the process in the middle of that write.
"""

import asyncio
import os
import runpy
import sys

import jax

SHARDING_PREFIX = 'jaxgan-test: '


def _show_sharding() -> None:
  from jaxgan import steps

  d_step = steps.d_step

  def show(name: str, x: jax.Array) -> None:
    def callback(sharding):
      print(f"{SHARDING_PREFIX}D's {name} batch, one device's part: {sharding.shard_shape(shape)}")

    shape = x.shape
    jax.debug.inspect_array_sharding(x, callback=callback)

  def instrumented(gan, state, batch, fake, *args, **kwargs):
    show('real', batch.images)
    show('fake', fake.images)
    return d_step(gan, state, batch, fake, *args, **kwargs)

  steps.d_step = instrumented  # train_step looks d_step up at each trace


def _pause_checkpoint(step: str, marker: str) -> None:
  from orbax.checkpoint.path import atomicity

  # Every way orbax commits a checkpoint: the rename (the default on local disks) or a commit
  # file; each class defines its own finalize.
  for cls in (atomicity.AtomicRenameTemporaryPath, atomicity.CommitFileTemporaryPath):
    finalize = cls.finalize

    async def paused(self, finalize=finalize):
      final = self.get_final()
      if final.name == step and final.parent.name == 'checkpoints':
        with open(marker + '.tmp', 'w') as f:
          f.write(str(self.get()))
        os.replace(marker + '.tmp', marker)  # the test never reads a half-written marker
        while True:
          await asyncio.sleep(3600)
      await finalize(self)

    cls.finalize = paused


if __name__ == '__main__':
  if os.environ.get('JAXGAN_TEST_SHARDING') == '1':
    _show_sharding()
  if pause := os.environ.get('JAXGAN_TEST_PAUSE_CHECKPOINT'):
    _pause_checkpoint(*pause.split(':', 1))
  sys.argv[0] = 'jaxgan.main'
  runpy.run_module('jaxgan.main', run_name='__main__', alter_sys=True)
