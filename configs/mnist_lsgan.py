"""LSGAN (Mao et al. 2017) on MNIST: least-squares loss (targets real 1, fake 0), DCGAN otherwise.

  python -m jaxgan.main --config=configs/mnist_lsgan.py --workdir=runs/mnist_lsgan

Runtime: 2,000 iterations trained in 170 s (11.8 steps/s) on the 2-core CPU of
docs/results.md, shared with other work, so its 5,000 take about 7 minutes, plus compilation
and 6-10 s per evaluation. What it reached at 1,000 and 2,000: docs/results.md.
"""

from configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.train.loss = 'least_squares'
  return config
