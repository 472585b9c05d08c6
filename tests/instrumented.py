"""`python -m jaxgan.main` with test-only instruments, which the environment turns on.

  python -m tests.instrumented --config=... --workdir=...   (the flags of jaxgan.main)

The library has no hooks for tests; these patch it, or orbax, in this process only.

- JAXGAN_TEST_SHARDING=1: prints, once per compilation, how the compiler laid out each batch
  that D sees: `jaxgan-test: D's real batch, one device's part: (1, 28, 28, 1)` (and the same
  for the fake batch), from `jax.debug.inspect_array_sharding`, the sharding XLA chose.
"""

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

  def instrumented(gan, state, real, fake, *args, **kwargs):
    show('real', real)
    show('fake', fake)
    return d_step(gan, state, real, fake, *args, **kwargs)

  steps.d_step = instrumented  # train_step looks d_step up at each trace


if __name__ == '__main__':
  if os.environ.get('JAXGAN_TEST_SHARDING') == '1':
    _show_sharding()
  sys.argv[0] = 'jaxgan.main'
  runpy.run_module('jaxgan.main', run_name='__main__', alter_sys=True)
