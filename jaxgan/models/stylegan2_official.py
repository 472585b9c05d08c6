"""stylegan2-ada-pytorch's networks (as `jaxgan.network_pickle` reads them) in jaxgan's
stylegan2 family: the model config their init arguments describe, and their weights as
jaxgan's variables.

jaxgan's modules carry the official names (mapping/fc0, synthesis/b8/conv0, b4/fc, ...), so the
mapping is by name, with the layouts changed: dense weights (out, in) -> kernel (in, out); conv
weights (out, in, kh, kw) -> (kh, kw, in, out) (both sides scale the stored weights at run time
alike, and jaxgan's upsampling convolution flips the kernel as the official one does); the 4x4
constant (C, 4, 4) -> (4, 4, C); D's last-but-one dense layer reads its input flattened NCHW
officially and NHWC here, so its rows are permuted. Buffers: G's w_avg and each layer's
noise_const go to the 'buffers' collection; the FIR filters are jaxgan's fixed [1, 3, 3, 1],
checked, not copied.

What jaxgan's family does not have (other activations, filters, architectures, embedding or
layer widths, a mapping without w_avg, layers without noise) is refused with a one-line
ConfigError naming the option.
"""

from typing import Any

import numpy as np

from jaxgan.errors import ConfigError
from jaxgan.models import upfirdn
from jaxgan.network_pickle import Module

_FILTER = np.outer(upfirdn.setup_filter(), upfirdn.setup_filter())


def _defaulted(kwargs: dict, where: str, **supported) -> None:
  """Refuses kwargs[k] other than its default supported[k] (a tuple: any of them)."""
  for key, allowed in supported.items():
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    value = kwargs.get(key, allowed[0])
    if isinstance(value, tuple):
      value = list(value)
    if value not in [list(a) if isinstance(a, tuple) else a for a in allowed]:
      raise ConfigError(
        f"{where}: {key}={value!r}; jaxgan's stylegan2 has {' or '.join(map(repr, allowed))} only"
      )


def model_config(g: Module, d: Module) -> dict[str, Any]:
  """{config key: value} of jaxgan's stylegan2 that builds G and D as the pickle's init
  arguments describe them, with 'data.num_classes' and 'image_shape'."""
  for net, name in ((g, 'Generator'), (d, 'Discriminator')):
    if net.class_name != name:
      raise ConfigError(f'expected a StyleGAN2-ADA {name}, found a {net.class_name}')
  gk, dk = g.init_kwargs, d.init_kwargs
  mapping, synthesis = dict(gk.get('mapping_kwargs', {})), dict(gk.get('synthesis_kwargs', {}))
  d_mapping, epilogue = dict(dk.get('mapping_kwargs', {})), dict(dk.get('epilogue_kwargs', {}))
  block = dict(dk.get('block_kwargs', {}))
  filt = ((1, 3, 3, 1),)
  _defaulted(mapping, 'G mapping_kwargs', embed_features=None, layer_features=None,
             activation='lrelu', w_avg_beta=0.995)  # fmt: skip
  _defaulted(synthesis, 'G synthesis_kwargs', architecture='skip', resample_filter=filt,
             activation='lrelu', kernel_size=3, use_noise=True)  # fmt: skip
  _defaulted(d_mapping, 'D mapping_kwargs', embed_features=None, layer_features=None,
             activation='lrelu')  # fmt: skip
  _defaulted(block, 'D block_kwargs', activation='lrelu', resample_filter=filt)
  _defaulted(epilogue, 'D epilogue_kwargs', activation='lrelu')
  _defaulted(dk, 'D', architecture=('resnet', 'orig'), cmap_dim=None)
  g_lr, d_lr = (m.get('lr_multiplier', 0.01) for m in (mapping, d_mapping))
  if g_lr != d_lr and gk['c_dim']:
    raise ConfigError(f"mapping lr_multiplier: G's {g_lr}, D's {d_lr}; jaxgan shares one")
  shared = {}
  for key, default in (('channel_base', 32768), ('channel_max', 512), ('conv_clamp', None)):
    g_value, d_value = synthesis.get(key, default), dk.get(key, default)
    if g_value != d_value:
      raise ConfigError(f"{key}: G's {g_value}, D's {d_value}; jaxgan's G and D share one")
    shared[key] = g_value
  group = epilogue.get('mbstd_group_size', 4)
  if group is None:
    raise ConfigError('D mbstd_group_size=None (the whole batch) is not in jaxgan: give a number')
  resolution, channels = gk['img_resolution'], gk['img_channels']
  if (dk['img_resolution'], dk['img_channels'], dk['c_dim']) != (resolution, channels, gk['c_dim']):
    raise ConfigError("G's and D's image shapes or classes differ")
  return {
    'model.latent_dim': gk['z_dim'],
    'model.w_dim': gk['w_dim'],
    'model.mapping_layers': mapping.get('num_layers', 8),
    'model.mapping_lr': float(g_lr),
    'model.channel_base': shared['channel_base'],
    'model.channel_max': shared['channel_max'],
    # bfloat16 off-CPU where the official code has float16: G's count (D's is the same in
    # every official config).
    'model.num_fp16_res': synthesis.get('num_fp16_res', 0),
    'model.conv_clamp': float(shared['conv_clamp'] or 0),
    'model.d_architecture': dk.get('architecture', 'resnet'),
    'model.d_mapping_layers': d_mapping.get('num_layers', 8),
    'model.mbstd_group': group,
    'model.mbstd_channels': epilogue.get('mbstd_num_channels', 1),
    'model.conditional': gk['c_dim'] > 0,
    'data.num_classes': gk['c_dim'],
    'image_shape': (resolution, resolution, channels),
  }


# --- weights ----------------------------------------------------------------------------------


def _tensor(m: Module, name: str, where: str) -> np.ndarray:
  # A frozen layer (Freeze-D) keeps its weight as a buffer.
  value = m.params.get(name, m.buffers.get(name))
  if value is None:
    raise ConfigError(f'{where}: no {name}')
  return np.asarray(value, np.float32)


def _child(m: Module, name: str, where: str) -> Module:
  child = m.modules.get(name)
  if child is None:
    raise ConfigError(f'{where}: no module {name}')
  for key, value in child.buffers.items():
    if key == 'resample_filter' and not np.allclose(value, _FILTER, atol=1e-6):
      raise ConfigError(f'{where}.{name}: a resampling filter other than [1, 3, 3, 1]')
  return child


def _dense(m: Module, where: str) -> dict:
  return {'kernel': _tensor(m, 'weight', where).T, 'bias': _tensor(m, 'bias', where)}


def _conv(m: Module, where: str) -> dict:
  out = {'kernel': _tensor(m, 'weight', where).transpose(2, 3, 1, 0)}
  if m.params.get('bias', m.buffers.get('bias')) is not None:
    out['bias'] = _tensor(m, 'bias', where)
  return out


def _mapping(m: Module, where: str) -> dict:
  names = ['embed'] * ('embed' in m.modules) + sorted(
    (n for n in m.modules if n.startswith('fc')), key=lambda n: int(n[2:])
  )
  return {n: _dense(_child(m, n, where), f'{where}.{n}') for n in names}


def _modulated(m: Module, where: str) -> tuple[dict, dict]:
  """(params, buffers) of a SynthesisLayer or ToRGBLayer."""
  params = {
    'affine': _dense(_child(m, 'affine', where), f'{where}.affine'),
    'kernel': _tensor(m, 'weight', where).transpose(2, 3, 1, 0),
    'bias': _tensor(m, 'bias', where),
  }
  if 'noise_strength' not in m.params:  # ToRGB
    return params, {}
  params['noise_strength'] = _tensor(m, 'noise_strength', where)
  return params, {'noise_const': _tensor(m, 'noise_const', where)}


def generator_variables(g: Module) -> tuple[dict, dict]:
  """(params, buffers) of jaxgan's Generator from the official one."""
  synthesis = _child(g, 'synthesis', 'G')
  params, buffers = {}, {}
  for name, block in synthesis.modules.items():
    where = f'G.synthesis.{name}'
    block = _child(synthesis, name, 'G.synthesis')
    p, b = {}, {}
    if 'const' in block.params:
      p['const'] = _tensor(block, 'const', where).transpose(1, 2, 0)
    for layer in ('conv0', 'conv1', 'torgb'):
      if layer in block.modules:
        p[layer], b_layer = _modulated(_child(block, layer, where), f'{where}.{layer}')
        if b_layer:
          b[layer] = b_layer
    params[name], buffers[name] = p, b
  mapping = _child(g, 'mapping', 'G')
  return (
    {'synthesis': params, 'mapping': _mapping(mapping, 'G.mapping')},
    {'synthesis': buffers, 'mapping': {'w_avg': _tensor(mapping, 'w_avg', 'G.mapping')}},
  )


def discriminator_params(d: Module) -> dict:
  """jaxgan's Discriminator params from the official one."""
  params = {}
  for name in d.modules:
    where = f'D.{name}'
    module = _child(d, name, 'D')
    if name == 'mapping':
      params[name] = _mapping(module, where)
      continue
    layers = {n: _child(module, n, where) for n, c in module.modules.items() if c is not None}
    if name == 'b4':
      fc = _dense(layers.pop('fc'), f'{where}.fc')
      # Official rows are the conv output flattened (C, 4, 4); jaxgan's (4, 4, C).
      k = fc['kernel']
      c = layers['conv'].params['weight'].shape[0]
      fc['kernel'] = k.reshape(c, 4, 4, -1).transpose(1, 2, 0, 3).reshape(k.shape)
      params[name] = {'conv': _conv(layers['conv'], f'{where}.conv'), 'fc': fc}
      params[name]['out'] = _dense(layers['out'], f'{where}.out')
      continue
    params[name] = {n: _conv(layer, f'{where}.{n}') for n, layer in layers.items()}
  return params
