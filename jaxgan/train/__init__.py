"""The trainer: `train_and_evaluate(config, workdir)`.

`setup` builds a run from its config (data, GAN, state, compiled step), `hooks` holds what
happens between compiled calls, `loop` the loop itself. The run folder is `jaxgan.workdir`.
"""

from jaxgan.train.loop import Diverged, train_and_evaluate
from jaxgan.train.setup import make_train_fn

__all__ = ['Diverged', 'make_train_fn', 'train_and_evaluate']
