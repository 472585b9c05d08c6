"""The DCGAN on CIFAR-10: the recipe configs/cifar10_dcgan.py, under the name older commands use.

python -m jaxgan.main --config=configs/cifar10.py --workdir=runs/cifar10
"""

from jaxgan.configs.cifar10_dcgan import get_config

__all__ = ['get_config']
