"""jaxgan: functional GAN training on JAX/Flax."""

__version__ = '0.1.0'
