"""R3GAN's own networks (brownvc/R3GAN, read as `jaxgan.network_pickle.Module`s) as jaxgan's
`r3gan` model: model keys from their weights' shapes, and each weight by its name.

A snapshot's G is `training.networks.Generator` around `R3GAN.Networks.Generator` (`Model`),
and D likewise. Their pickles hold no init arguments (plain torch modules), so the structure
comes from the modules themselves: stage i of G is `Model.MainLayers.i`, whose `Layers` are a
transition (the generative basis, or an `UpsampleLayer` with a 1x1 `LinearLayer` where the
width changes) then residual blocks (`LinearLayer1`, `NonLinearity1`, `LinearLayer2` grouped,
`NonLinearity2`, `LinearLayer3`); D's stages are blocks then a transition (a `DownsampleLayer`,
or the discriminative basis last), after its `ExtractionLayer`. Widths are output channels,
the cardinality a grouped kernel's output over its input channels, the expansion a block's
hidden width over its width, and the bfloat16 stages those whose `DataType` is bfloat16.

torch keeps a conv's kernel as (out, in / groups, k, k) and a linear map's as (out, in); flax
as (k, k, in / groups, out) and (in, out): each maps by a transpose. An `EmbeddingLayer` is a
bias-free linear map of one-hot labels: its transpose is jaxgan's embedding table.
"""

from collections.abc import Callable

import numpy as np

from jaxgan.errors import JaxganError
from jaxgan.network_pickle import Module

GENERATOR, DISCRIMINATOR = 'training.networks.Generator', 'training.networks.Discriminator'
BLOCK = 'R3GAN.Networks.ResidualBlock'


def is_r3gan(nets: dict) -> bool:
  """Whether a snapshot's networks are R3GAN's."""
  g, d = nets.get('G'), nets.get('D')
  return (
    isinstance(g, Module)
    and g.class_name == GENERATOR
    and getattr(d, 'class_name', '') == DISCRIMINATOR
  )


def _child(m: Module | None, path: str, what: str) -> Module:
  for name in path.split('.'):
    m = m.modules.get(name) if isinstance(m, Module) else None
  if not isinstance(m, Module):
    raise JaxganError(f"{what} has no module {path}: not R3GAN's structure")
  return m


def _stages(net: Module, what: str) -> list[list[Module]]:
  stages = _child(net, 'Model.MainLayers', what)
  return [
    [layer for _, layer in sorted(_child(stage, 'Layers', what).modules.items(), key=_index)]
    for _, stage in sorted(stages.modules.items(), key=_index)
  ]


def _index(item) -> int:
  return int(item[0])


def _weight(m: Module, name: str, what: str) -> np.ndarray:
  w = m.params.get(name)
  if w is None:
    raise JaxganError(f'{what}: a {m.class_name} without its {name}')
  return w


def _conv(m: Module) -> np.ndarray:
  """A `Convolution`'s kernel in flax's layout (k, k, in / groups, out)."""
  return _weight(_child(m, 'Layer', m.class_name), 'weight', m.class_name).transpose(2, 3, 1, 0)


def _dense(m: Module) -> np.ndarray:
  return _weight(m, 'weight', m.class_name).T


def _block(m: Module) -> dict:
  return {
    'conv1': {'kernel': _conv(_child(m, 'LinearLayer1', BLOCK))[0, 0]},
    'act1': {'bias': _weight(_child(m, 'NonLinearity1', BLOCK), 'Bias', BLOCK)},
    'conv2': _conv(_child(m, 'LinearLayer2', BLOCK)),
    'act2': {'bias': _weight(_child(m, 'NonLinearity2', BLOCK), 'Bias', BLOCK)},
    'conv3': {'kernel': _conv(_child(m, 'LinearLayer3', BLOCK))[0, 0]},
  }


def _blocks(layers: list[Module], i: int) -> dict:
  blocks = [m for m in layers if m.class_name == BLOCK]
  return {f'stage{i}_block{j}': _block(m) for j, m in enumerate(blocks)}


def generator_params(g: Module) -> dict:
  """G's (or G_ema's) weights as jaxgan's r3gan Generator's params."""
  params = {}
  for i, layers in enumerate(_stages(g, 'G')):
    transition = layers[0]
    if i == 0:
      params['basis'] = {
        'basis': _weight(transition, 'Basis', 'G').transpose(1, 2, 0),
        'linear': {'kernel': _dense(_child(transition, 'LinearLayer', 'G'))},
      }
    elif 'LinearLayer' in transition.modules:
      params[f'transition{i}'] = {'kernel': _conv(transition.modules['LinearLayer'])[0, 0]}
    params.update(_blocks(layers, i))
  params['out'] = {'kernel': _conv(_child(g, 'Model.AggregationLayer', 'G'))[0, 0]}
  if 'EmbeddingLayer' in g.modules['Model'].modules:
    params['embed'] = {'embedding': _dense(_child(g, 'Model.EmbeddingLayer', 'G'))}
  return params


def discriminator_params(d: Module) -> dict:
  """D's weights as jaxgan's r3gan Discriminator's params."""
  params = {'extract': {'kernel': _conv(_child(d, 'Model.ExtractionLayer', 'D'))[0, 0]}}
  stages = _stages(d, 'D')
  for i, layers in enumerate(stages):
    params.update(_blocks(layers, i))
    transition = layers[-1]
    if i + 1 < len(stages):
      if 'LinearLayer' in transition.modules:
        params[f'transition{i}'] = {'kernel': _conv(transition.modules['LinearLayer'])[0, 0]}
    else:
      basis = _weight(_child(transition, 'Basis', 'D'), 'weight', 'D')  # (C, 1, 4, 4)
      params['basis'] = {
        'basis': basis[:, 0].transpose(1, 2, 0),
        'linear': {'kernel': _dense(_child(transition, 'LinearLayer', 'D'))},
      }
  if 'EmbeddingLayer' in d.modules['Model'].modules:
    params['embed'] = {'embedding': _dense(_child(d, 'Model.EmbeddingLayer', 'D'))}
  return params


def model_config(g: Module) -> dict:
  """The r3gan model keys of G's structure (D is checked against it by its shapes), with
  'image_shape' and 'data.num_classes' for the caller."""
  stages = _stages(g, 'G')
  blocks = [[m for m in layers if m.class_name == BLOCK] for layers in stages]
  if not all(blocks):
    raise JaxganError("G has a stage without residual blocks: not R3GAN's structure")
  widths, cards, expansions = [], [], set()
  for stage in blocks:
    w2 = _conv(_child(stage[0], 'LinearLayer2', BLOCK))  # (k, k, hidden / groups, hidden)
    width = _conv(_child(stage[0], 'LinearLayer1', BLOCK)).shape[2]
    widths.append(width)
    cards.append(w2.shape[3] // w2.shape[2])
    expansions.add(w2.shape[3] // width)
  if len(expansions) != 1:
    raise JaxganError(f"G's stages have different expansion factors {sorted(expansions)}")
  params = generator_params(g)
  num_classes = params['embed']['embedding'].shape[0] if 'embed' in params else 0
  z_dim = params['basis']['linear']['kernel'].shape[0] - (
    params['embed']['embedding'].shape[1] if num_classes else 0
  )
  dtypes = [s.attrs.get('DataType') for s in _child(g, 'Model.MainLayers', 'G').modules.values()]
  side = 4 * 2 ** (len(widths) - 1)
  channels = params['out']['kernel'].shape[1]
  return {
    'model.widths': tuple(widths),
    'model.cardinalities': tuple(cards),
    'model.blocks': tuple(len(b) for b in blocks),
    'model.expansion': expansions.pop(),
    'model.kernel_size': w2.shape[0],
    'model.latent_dim': z_dim,
    'model.g_embed_dim': params['embed']['embedding'].shape[1] if num_classes else 0,
    'model.bf16_stages': sum(d == 'torch.bfloat16' for d in dtypes),
    'image_shape': (side, side, channels),
    'data.num_classes': num_classes,
  }


def d_embed_dim(d: Module) -> int:
  """D's projection dimension (0: unconditional)."""
  params = discriminator_params(d)
  return params['embed']['embedding'].shape[1] if 'embed' in params else 0


def param_names(net: Module) -> list[str]:
  """The net's parameters' names in torch's `parameters()` order (an optimizer's indices)."""
  names = []

  def walk(m: Module, prefix: str) -> None:
    names.extend(f'{prefix}{k}' for k, v in m.params.items() if v is not None)
    for k, child in m.modules.items():
      if child is not None:
        walk(child, f'{prefix}{k}.')

  walk(net, '')
  return names


def optimizer_moments(
  net: Module, opt_state: dict, to_params: Callable[[Module], dict]
) -> tuple[dict, dict, int]:
  """torch Adam's `exp_avg` and `exp_avg_sq` of each parameter as jaxgan params trees, and its
  step count: the net with its weights swapped for the moments, mapped as the weights are."""
  state, groups = opt_state.get('state'), opt_state.get('param_groups')
  if not isinstance(state, dict) or not isinstance(groups, list):
    raise JaxganError('an optimizer state without state and param_groups')
  indices = [i for g in groups for i in g.get('params', ())]
  names = param_names(net)
  if len(indices) != len(names):
    raise JaxganError(f'an optimizer state of {len(indices)} parameters for a net of {len(names)}')
  moments, steps = {}, set()
  for key in ('exp_avg', 'exp_avg_sq'):
    tensors = {}
    for name, index in zip(names, indices, strict=True):
      entry = state.get(index) or {}
      value = entry.get(key)
      if value is None:
        raise JaxganError(f'the optimizer state has no {key} for {name}')
      tensors[name] = np.asarray(value, np.float32)
      steps.add(int(np.asarray(entry.get('step', 0))))
    moments[key] = to_params(_swapped(net, tensors, ''))
  if len(steps) != 1:
    raise JaxganError(f'the optimizer state has different step counts {sorted(steps)}')
  return moments['exp_avg'], moments['exp_avg_sq'], steps.pop()


def _swapped(m: Module, tensors: dict, prefix: str) -> Module:
  params = {k: tensors.get(f'{prefix}{k}', v) for k, v in m.params.items()}
  modules = {
    k: _swapped(c, tensors, f'{prefix}{k}.') if c is not None else None
    for k, c in m.modules.items()
  }
  return Module(m.class_name, params, m.buffers, modules, m.init_kwargs, m.attrs)
