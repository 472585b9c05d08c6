"""Network pickles with stylegan2-ada-pytorch's structure, made without its code, and a PyTorch
forward of their generator written here from the paper and the pickle's layout.

A snapshot is `dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=...)` whose
networks pickle as `torch_utils.persistence._reconstruct_persistent_obj(meta)` calls, meta
holding a module's source, class name and state (its __dict__: `_parameters`, `_buffers`,
`_modules`, `_init_kwargs`, plain attributes), tensors as real torch tensors. `Net` pickles that
way through a stand-in `torch_utils.persistence` module (`fake_persistence`); its weights are
random, biases and noise strengths included, so that every tensor shows in the images.
"""

import contextlib
import math
import sys
import types
from collections import OrderedDict

import numpy as np

# The official train.py's `cifar` spec, and a small network of the same kind.
CIFAR = dict(z_dim=512, w_dim=512, c_dim=10, resolution=32, map_layers=2, channel_base=32768,
             channel_max=512, num_fp16_res=4, conv_clamp=256, architecture='orig',
             mbstd=32)  # fmt: skip
SMALL = dict(z_dim=16, w_dim=24, c_dim=0, resolution=32, map_layers=3, channel_base=256,
             channel_max=32, num_fp16_res=0, conv_clamp=None, architecture='resnet',
             mbstd=4)  # fmt: skip
FILTER = [1, 3, 3, 1]
SOURCE = 'raise SystemExit("this source must never run")\n'


def _reconstruct_persistent_obj(meta):  # pickled by reference only; never called
  raise AssertionError('the stand-in persistence module is for pickling')


@contextlib.contextmanager
def fake_persistence():
  """`torch_utils.persistence` with `_reconstruct_persistent_obj`, for pickle to name."""
  package, module = types.ModuleType('torch_utils'), types.ModuleType('torch_utils.persistence')
  _reconstruct_persistent_obj.__module__ = module.__name__
  module._reconstruct_persistent_obj = _reconstruct_persistent_obj
  package.persistence = module
  saved = {k: sys.modules.get(k) for k in (package.__name__, module.__name__)}
  sys.modules.update({package.__name__: package, module.__name__: module})
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


class Net:
  """One persistent module: class name, init kwargs, tensors, sub-modules, attributes."""

  def __init__(self, class_name, init_kwargs, params=None, buffers=None, modules=None, **attrs):
    self.class_name, self.init_kwargs = class_name, init_kwargs
    self.params, self.buffers = params or {}, buffers or {}
    self.modules, self.attrs = modules or {}, attrs
    self.source = SOURCE

  def __reduce__(self):
    import torch

    state = dict(
      training=False,
      _parameters=OrderedDict((k, torch.nn.Parameter(v, False)) for k, v in self.params.items()),
      _buffers=OrderedDict(self.buffers),
      _non_persistent_buffers_set=set(),
      _forward_hooks=OrderedDict(),
      _modules=OrderedDict(self.modules),
      _init_args=(),
      _init_kwargs=self.init_kwargs,
      **self.attrs,
    )
    meta = dict(
      type='class', version=6, module_src=self.source, class_name=self.class_name, state=state
    )
    return _reconstruct_persistent_obj, (meta,)


class Maker:
  """Random tensors; `lazy`: every tensor one number broadcast (a pickle of shapes, for
  networks too large to make in a test)."""

  def __init__(self, seed: int = 0, lazy: bool = False):
    import torch

    self.torch, self.lazy = torch, lazy
    self.gen = torch.Generator().manual_seed(seed)

  def __call__(self, *shape, scale=1.0, offset=0.0):
    if self.lazy:
      return self.torch.full((1,) * len(shape), 0.5).expand(shape)
    return self.torch.randn(shape, generator=self.gen) * scale + offset

  def filter(self):
    f = self.torch.tensor(FILTER, dtype=self.torch.float32)
    return self.torch.outer(f, f) / f.sum() ** 2


def _fc(t, cin, cout, lr=1.0, bias_init=0.0, act='linear'):
  return Net(
    'FullyConnectedLayer',
    dict(in_features=cin, out_features=cout, activation=act, lr_multiplier=lr, bias_init=bias_init),
    {'weight': t(cout, cin) / lr, 'bias': t(cout, scale=0.1, offset=bias_init)},
    activation=act,
    weight_gain=np.float64(lr / np.sqrt(cin)),  # as the official layer keeps it: numpy
    bias_gain=lr,
  )


def _conv(t, cin, cout, k, bias=True, down=1, clamp=None):
  params = {'weight': t(cout, cin, k, k)}
  if bias:
    params['bias'] = t(cout, scale=0.1)
  kwargs = dict(in_channels=cin, out_channels=cout, kernel_size=k, bias=bias, down=down)
  return Net('Conv2dLayer', kwargs, params, {'resample_filter': t.filter()}, conv_clamp=clamp)


def _mapping(t, z_dim, c_dim, w_dim, num_layers, num_ws):
  modules = {}
  if c_dim:
    modules['embed'] = _fc(t, c_dim, w_dim)
  for i in range(num_layers):
    cin = (z_dim + w_dim * bool(c_dim)) if i == 0 else w_dim
    modules[f'fc{i}'] = _fc(t, cin, w_dim, 0.01, act='lrelu')
  buffers = {'w_avg': t(w_dim)} if num_ws else {}
  kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers)
  return Net('MappingNetwork', kwargs, buffers=buffers, modules=modules, num_layers=num_layers)


def _layer(t, cin, cout, w_dim, res, up, clamp):
  return Net(
    'SynthesisLayer',
    dict(in_channels=cin, out_channels=cout, w_dim=w_dim, resolution=res, up=up),
    {'weight': t(cout, cin, 3, 3), 'noise_strength': t(scale=0.3), 'bias': t(cout, scale=0.1)},
    {'resample_filter': t.filter(), 'noise_const': t(res, res)},
    {'affine': _fc(t, w_dim, cin, bias_init=1.0)},
    up=up,
    conv_clamp=clamp,
  )


def _torgb(t, cin, channels, w_dim, clamp):
  return Net(
    'ToRGBLayer',
    dict(in_channels=cin, out_channels=channels, w_dim=w_dim, conv_clamp=clamp),
    {'weight': t(channels, cin, 1, 1), 'bias': t(channels, scale=0.1)},
    modules={'affine': _fc(t, w_dim, cin, bias_init=1.0)},
    conv_clamp=clamp,
    weight_gain=np.float64(1 / np.sqrt(cin)),
  )


def _width(spec, res):
  return min(spec['channel_base'] // res, spec['channel_max'])


def generator(spec: dict, t: Maker, channels: int = 3) -> Net:
  res_log2 = int(np.log2(spec['resolution']))
  w_dim, clamp = spec['w_dim'], spec['conv_clamp']
  blocks = {}
  for res in (2**i for i in range(2, res_log2 + 1)):
    cout = _width(spec, res)
    params, modules = {}, {}
    if res == 4:
      params['const'] = t(cout, 4, 4)
    else:
      modules['conv0'] = _layer(t, _width(spec, res // 2), cout, w_dim, res, 2, clamp)
    modules['conv1'] = _layer(t, cout, cout, w_dim, res, 1, clamp)
    modules['torgb'] = _torgb(t, cout, channels, w_dim, clamp)
    buffers = {'resample_filter': t.filter()}
    blocks[f'b{res}'] = Net('SynthesisBlock', dict(resolution=res), params, buffers, modules)
  synthesis_kwargs = dict(
    channel_base=spec['channel_base'],
    channel_max=spec['channel_max'],
    num_fp16_res=spec['num_fp16_res'],
    conv_clamp=clamp,
  )
  num_ws = 2 * res_log2 - 2
  kwargs = dict(
    z_dim=spec['z_dim'],
    c_dim=spec['c_dim'],
    w_dim=w_dim,
    img_resolution=spec['resolution'],
    img_channels=channels,
    mapping_kwargs=dict(num_layers=spec['map_layers']),
    synthesis_kwargs=synthesis_kwargs,
  )
  synthesis = Net('SynthesisNetwork', dict(synthesis_kwargs, w_dim=w_dim), modules=blocks)
  mapping = _mapping(t, spec['z_dim'], spec['c_dim'], w_dim, spec['map_layers'], num_ws)
  return Net(
    'Generator',
    kwargs,
    modules={'synthesis': synthesis, 'mapping': mapping},
    z_dim=spec['z_dim'],
    c_dim=spec['c_dim'],
    num_ws=num_ws,
  )


def discriminator(spec: dict, t: Maker, channels: int = 3) -> Net:
  clamp, resolution = spec['conv_clamp'], spec['resolution']
  modules = {}
  res = resolution
  while res > 4:
    tmp, out = _width(spec, res), _width(spec, res // 2)
    layers = {}
    if res == resolution:
      layers['fromrgb'] = _conv(t, channels, tmp, 1, clamp=clamp)
    layers['conv0'] = _conv(t, tmp, tmp, 3, clamp=clamp)
    layers['conv1'] = _conv(t, tmp, out, 3, down=2, clamp=clamp)
    if spec['architecture'] == 'resnet':
      layers['skip'] = _conv(t, tmp, out, 1, bias=False, down=2)
    buffers = {'resample_filter': t.filter()}
    block = Net('DiscriminatorBlock', dict(resolution=res), buffers=buffers, modules=layers)
    modules[f'b{res}'] = block
    res //= 2
  c4 = _width(spec, 4)
  cmap_dim = c4 if spec['c_dim'] else 0
  if spec['c_dim']:
    modules['mapping'] = _mapping(t, 0, spec['c_dim'], cmap_dim, 8, None)
  mbstd = Net('MinibatchStdLayer', dict(group_size=spec['mbstd']), group_size=spec['mbstd'])
  epilogue = {
    'mbstd': mbstd,
    'conv': _conv(t, c4 + 1, c4, 3, clamp=clamp),
    'fc': _fc(t, c4 * 16, c4, act='lrelu'),
    'out': _fc(t, c4, cmap_dim or 1),
  }
  modules['b4'] = Net('DiscriminatorEpilogue', dict(cmap_dim=cmap_dim), modules=epilogue)
  kwargs = dict(
    c_dim=spec['c_dim'],
    img_resolution=resolution,
    img_channels=channels,
    architecture=spec['architecture'],
    channel_base=spec['channel_base'],
    channel_max=spec['channel_max'],
    num_fp16_res=spec['num_fp16_res'],
    conv_clamp=clamp,
    block_kwargs={},
    mapping_kwargs={},
    epilogue_kwargs=dict(mbstd_group_size=spec['mbstd']),
  )
  return Net('Discriminator', kwargs, modules=modules, c_dim=spec['c_dim'])


def augment_pipe(t: Maker, p: float) -> Net:
  ops = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness',
         'contrast', 'lumaflip', 'hue', 'saturation')  # fmt: skip
  return Net(
    'AugmentPipe', dict.fromkeys(ops, 1), buffers={'p': t.torch.tensor(p), 'Hz_geom': t(12)}
  )


def snapshot(spec: dict, seed: int = 0, lazy: bool = False, path: str = '/data/mydata.zip', p=0.25):
  """The dict the official trainer pickles, with G_ema a perturbed copy of G's weights."""
  t = Maker(seed, lazy)
  g = generator(spec, t)
  g_ema = generator(spec, Maker(seed + 1, lazy))
  _share_buffers(g, g_ema)  # the trainer copies G's buffers into G_ema's
  kwargs = dict(
    class_name='training.dataset.ImageFolderDataset',
    path=path,
    use_labels=bool(spec['c_dim']),
    max_size=1000,
    xflip=False,
    resolution=spec['resolution'],
  )
  return dict(
    training_set_kwargs=kwargs,
    G=g,
    D=discriminator(spec, t),
    G_ema=g_ema,
    augment_pipe=augment_pipe(t, p),
  )


def _share_buffers(src: Net, dst: Net) -> None:
  dst.buffers.update(src.buffers)
  for name, child in src.modules.items():
    _share_buffers(child, dst.modules[name])


# --- the generator's forward pass, in PyTorch ---------------------------------------------------


def _dense(m: Net, x, act=False):
  y = x @ (m.params['weight'] * float(m.attrs['weight_gain'])).T
  y = y + m.params['bias'] * m.attrs['bias_gain']
  return _lrelu(y) if act else y


def _lrelu(x):
  import torch

  return torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2)


def _normalize(x):
  return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


def _upsample(x, pad=(2, 1)):
  """upfirdn2d's 2x upsampling: a zero after each sample, zeros padded (before, after), then
  the [1, 3, 3, 1] filter (x 4). Padding (2, 1) keeps the size, the output's sample 2i at input
  sample i; an upsampling 3x3 layer pads (3, 2) and then convolves without padding."""
  import torch
  import torch.nn.functional as F

  n, c, h, w = x.shape
  up = x.new_zeros(n, c, 2 * h, 2 * w)
  up[:, :, ::2, ::2] = x
  f = torch.tensor(FILTER, dtype=x.dtype)
  f2 = (torch.outer(f, f) / f.sum() ** 2 * 4).expand(c, 1, 4, 4)
  return F.conv2d(F.pad(up, (pad[0], pad[1]) * 2), f2, groups=c)


def _modulated(x, weight, styles, demodulate: bool, up: bool):
  """Per-image weights weight * style (over inputs), demodulated to unit norm per output; the
  upsampling layer convolves (flipped kernel) the upsampled input, the others correlate."""
  import torch.nn.functional as F

  n, (o, i, k, _) = x.shape[0], weight.shape
  w = weight[None] * styles[:, None, :, None, None]
  if demodulate:
    w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
  if up:
    x, w = _upsample(x, (k // 2 + 2, k // 2 + 1)), w.flip((3, 4))
  padding = 0 if up else k // 2
  x = x.reshape(1, n * i, *x.shape[2:])
  y = F.conv2d(x, w.reshape(n * o, i, k, k), padding=padding, groups=n)
  return y.reshape(n, o, *y.shape[2:])


def _clamped(x, clamp):
  return x if clamp is None else x.clamp(-clamp, clamp)


def _synthesis_layer(m: Net, x, w):
  x = _modulated(x, m.params['weight'], _dense(m.modules['affine'], w), True, m.attrs['up'] == 2)
  x = x + m.buffers['noise_const'] * m.params['noise_strength']  # noise_mode='const'
  return _clamped(_lrelu(x + m.params['bias'][None, :, None, None]), m.attrs['conv_clamp'])


def _to_rgb(m: Net, x, w):
  styles = _dense(m.modules['affine'], w) * float(m.attrs['weight_gain'])
  x = _modulated(x, m.params['weight'], styles, False, False)
  return _clamped(x + m.params['bias'][None, :, None, None], m.attrs['conv_clamp'])


def generate(g: Net, z, labels, psi: float):
  """Images (N, C, H, W) of G for latents z, labels (ints or None) and its constant noise, every
  layer taking the same w truncated towards w_avg by psi."""
  import torch

  mapping = g.modules['mapping']
  x = _normalize(z)
  if labels is not None:
    onehot = torch.nn.functional.one_hot(labels.long(), g.attrs['c_dim']).float()
    x = torch.cat([x, _normalize(_dense(mapping.modules['embed'], onehot))], dim=1)
  for i in range(mapping.attrs['num_layers']):
    x = _dense(mapping.modules[f'fc{i}'], x, act=True)
  w_avg = mapping.buffers['w_avg']
  w = w_avg + psi * (x - w_avg)
  x = img = None
  for block in g.modules['synthesis'].modules.values():  # 4x4 first
    if x is None:
      x = block.params['const'][None].repeat(z.shape[0], 1, 1, 1)
    else:
      x = _synthesis_layer(block.modules['conv0'], x, w)
    x = _synthesis_layer(block.modules['conv1'], x, w)
    y = _to_rgb(block.modules['torgb'], x, w)
    img = y if img is None else _upsample(img) + y
  return img
