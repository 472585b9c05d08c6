"""XLA compiler options for jaxgan's jitted steps on CPU: the trainer and the bench pass
`compiler_options()` to `jax.jit`; empty on other backends."""

import functools

import jax

# XLA:CPU hands convolutions to YNNPACK by default. XLA's own (Eigen) convolution kernels ran
# the three products of jaxgan.convs faster at batch 64-256, and so the whole train step
# (docs/benchmarks.md), so on CPU keep YNNPACK for matmuls and reductions only.
_XLA_CPU_OPTIONS = {
  'xla_cpu_experimental_ynn_fusion_type': (
    'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'
  ),
}


def compiler_options(backend: str | None = None) -> dict[str, str]:
  """XLA options for `jax.jit(compiler_options=...)` of a train step on `backend`.

  Empty off CPU, and where this jaxlib does not know the options (they are experimental).
  """
  if (backend or jax.default_backend()) != 'cpu' or not _cpu_options_known():
    return {}
  return dict(_XLA_CPU_OPTIONS)


@functools.cache
def _cpu_options_known() -> bool:
  try:
    jax.jit(lambda x: x + 1, compiler_options=_XLA_CPU_OPTIONS).lower(0.0).compile()
  except Exception:  # an unknown option name or value
    return False
  return True
