"""StyleGAN2's networks (Karras et al. 2020), in the structure of the ADA paper's code
(stylegan2-ada-pytorch): G with the skip (toRGB) architecture, D residual.

G = synthesis(mapping(z, labels)). The mapping network normalises z (and the class
embedding) to unit second moment and maps it to w through `mapping_layers` dense layers with a
0.01 learning-rate multiplier; it keeps `w_avg`, a running mean of w for truncation. The
synthesis network starts from a learned 4x4 constant and doubles it block by block, each block
a modulated 3x3 convolution with weight demodulation that upsamples (FIR [1, 3, 3, 1]) and
one that does not, each followed by noise with a learned strength, a bias and leaky ReLU
(gain sqrt(2), optionally clamped); each block's toRGB (a modulated 1x1, no demodulation) is
added to the upsampled image so far. Every layer takes its own w: `num_ws` of them, the
first 2 * log2(side) - 3 for the convolutions and the last for the final toRGB (a block's
toRGB shares the w of the next block's first convolution).

D: fromRGB at full size, then blocks of two 3x3 convolutions, the second with FIR
downsampling, plus a 1x1 downsampling shortcut (`architecture='resnet'`; 'orig' has none),
down to 4x4; then the minibatch standard deviation, a 3x3 convolution, two dense layers, and
for conditional models the projection onto a mapped class embedding (`cmap`).

Every weight is stored at N(0, 1) and scaled at run time by gain / sqrt(fan_in) (equalized
learning rate); dense layers with a learning-rate multiplier m store N(0, 1) / m and scale by
m / sqrt(fan_in), biases by m. Widths: min(channel_base // side, channel_max). With
`num_fp16_res` = n > 0, the blocks of the n highest resolutions (but not 4x4) compute in
bfloat16; `build` keeps float32 on CPU (as the official code keeps float16 to GPUs).

The variables follow the official module names (mapping/fc0, synthesis/b8/conv0, ...), so
that official weights map onto them by name and transpose. Non-parameter buffers live in the
'buffers' collection: w_avg (updated in training when the collection is mutable) and each
layer's fixed noise (`noise_mode='const'`).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import checks
from jaxgan.errors import ConfigError
from jaxgan.models import layers, upfirdn
from jaxgan.objectives import penalties

K = checks.Key
SCHEMA: dict[str, checks.Key] = {  # this family's keys under config.model; train.py's defaults
  'w_dim': K(512, checks.integer(1)),
  'mapping_layers': K(8, checks.integer(1)),  # G's; the official cifar config has 2
  'mapping_lr': K(0.01, checks.positive_float),  # learning-rate multiplier of mapping layers
  'channel_base': K(32768, checks.integer(1)),  # width min(channel_base // side, channel_max)
  'channel_max': K(512, checks.integer(1)),
  'num_fp16_res': K(4, checks.integer(0)),  # bfloat16 in this many top resolutions, off-CPU
  'conv_clamp': K(256.0, checks.nonneg_float),  # clamp conv outputs to +-this; 0: none
  'd_architecture': K('resnet', checks.one_of('resnet', 'orig')),  # 'orig': no shortcuts
  'd_mapping_layers': K(8, checks.integer(1)),  # D's class mapping, when conditional
  'mbstd_group': K(4, checks.integer(1)),  # minibatch std group size
  'mbstd_channels': K(1, checks.integer(0)),  # its features; 0: no minibatch std
  # In training, the layers from a random cutoff on take the ws of another latent, with this
  # probability per batch (the official cifar config: 0).
  'style_mixing': K(0.9, checks.probability),
  # The path-length penalty's weight: on with train.penalties='path_length' (0 in cifar).
  'pl_weight': K(2.0, checks.nonneg_float),
}

FILTER = upfirdn.setup_filter((1, 3, 3, 1))
W_AVG_DECAY = 0.995
# The path-length penalty as the official training runs it: every 4 G updates, on half the
# batch, against a running mean of the lengths with decay 0.01.
PL_EVERY, PL_BATCH_SHRINK, PL_DECAY = 4, 2, 0.01
SQRT2 = math.sqrt(2)


def build(cfg, image_shape: tuple[int, ...], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
  """(Generator, Discriminator) from the `config.model` section."""
  fp16_res = cfg.num_fp16_res if jax.default_backend() != 'cpu' else 0
  common = dict(
    channel_base=cfg.channel_base,
    channel_max=cfg.channel_max,
    num_fp16_res=fp16_res,
    conv_clamp=cfg.conv_clamp or None,
  )
  g = Generator(
    image_shape=image_shape,
    w_dim=cfg.w_dim,
    num_classes=num_classes or cfg.latent_classes,  # InfoGAN's code enters G as a class does
    mapping_layers=cfg.mapping_layers,
    mapping_lr=cfg.mapping_lr,
    style_mixing=cfg.style_mixing,
    pl_weight=cfg.pl_weight,
    **common,
  )
  d = Discriminator(
    num_classes=num_classes,
    code_outputs=cfg.latent_classes + cfg.latent_continuous,
    architecture=cfg.d_architecture,
    mapping_layers=cfg.d_mapping_layers,
    mapping_lr=cfg.mapping_lr,
    mbstd_group=cfg.mbstd_group,
    mbstd_channels=cfg.mbstd_channels,
    **common,
  )
  return g, d


def channels(side: int, channel_base: int, channel_max: int) -> int:
  return min(channel_base // side, channel_max)


def check_image_shape(cfg, image_shape: tuple[int, ...]) -> None:
  """Square images whose side is a power of two, 8 or more, and widths of at least 1."""
  height, width = image_shape[:2]
  if height != width or height < 8 or height & (height - 1):
    raise ConfigError(
      f'model.name=stylegan2 needs square images whose side is a power of two, at least 8; '
      f'got {(height, width)}'
    )
  if channels(height, cfg.channel_base, cfg.channel_max) < 1:
    raise ConfigError(
      f'model.channel_base={cfg.channel_base} gives no channels at {height} px: it must be at '
      f'least the image side'
    )
  c4 = channels(4, cfg.channel_base, cfg.channel_max)
  if cfg.mbstd_channels and c4 % cfg.mbstd_channels:
    raise ConfigError(f'model.mbstd_channels={cfg.mbstd_channels} must divide the 4x4 width {c4}')


def _dtype(side: int, resolution: int, num_fp16_res: int):
  """bfloat16 in the num_fp16_res highest resolutions, never below 8x8 (as the official
  fp16_resolution); float32 elsewhere."""
  if not num_fp16_res:
    return jnp.float32
  return jnp.bfloat16 if side >= max(2 * resolution >> num_fp16_res, 8) else jnp.float32


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """x scaled to unit mean square over its last axis."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def bias_act(x, b, act: bool = True, gain: float = 1.0, clamp: float | None = None):
  """x + b, then leaky ReLU (0.2) with its gain sqrt(2) when `act`, times `gain`, clamped to
  +-clamp."""
  x = x + b.astype(x.dtype)
  if act:
    x = nn.leaky_relu(x, 0.2)
    gain *= SQRT2
  if gain != 1:
    x = x * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return x


def minibatch_std(x: jax.Array, group: int, num_channels: int = 1) -> jax.Array:
  """x (N, H, W, C) with `num_channels` more channels: for each of num_channels slices of the
  features, the standard deviation over a group of images, averaged over the slice's features
  and positions. Image i is in group i mod (N / g), g = min(group, N) (ProGAN, StyleGAN2);
  when N is not a multiple of g, g is the largest divisor of N up to `group`."""
  n, h, w, c = x.shape
  g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
  f = num_channels
  y = x.astype(jnp.float32).reshape(g, n // g, h, w, f, c // f)
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8).mean(axis=(1, 2, 4))  # (N / g, F)
  std = jnp.broadcast_to(jnp.tile(std, (g, 1))[:, None, None, :], (n, h, w, f))
  return jnp.concatenate([x, std.astype(x.dtype)], axis=-1)


# --- layers -----------------------------------------------------------------------------------


class Dense(nn.Module):
  """Equalized-lr dense layer: weight N(0, 1) / lr_mult scaled by lr_mult / sqrt(fan_in),
  bias (initialised to bias_init) by lr_mult; leaky ReLU with gain sqrt(2) when `act`."""

  features: int
  act: bool = False
  lr_mult: float = 1.0
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    m = self.lr_mult
    init = nn.initializers.normal(1.0 / m)
    kernel = self.param('kernel', init, (fan_in, self.features))
    bias = self.param('bias', nn.initializers.constant(self.bias_init), (self.features,))
    y = x @ (kernel * (m / np.sqrt(fan_in))).astype(x.dtype)
    return bias_act(y, bias * m, self.act)


class Conv(nn.Module):
  """Equalized-lr convolution (D's layers): weight (k, k, in, out) N(0, 1) scaled by
  1 / sqrt(k * k * in); `down` halves the size with FIR filtering; then bias and leaky ReLU,
  times `gain` and clamped to +-conv_clamp * gain (as the official Conv2dLayer)."""

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  act: bool = True
  down: bool = False
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(1.0), (k, k, cin, self.features))
    w = (kernel * (1 / np.sqrt(k * k * cin))).astype(x.dtype)
    x = upfirdn.conv2d_downsample(x, w, FILTER) if self.down else upfirdn.conv2d(x, w)
    b = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else 0.0
    clamp = None if self.conv_clamp is None else self.conv_clamp * gain
    return bias_act(x, jnp.asarray(b), self.act, gain, clamp)


def modulated_conv(x, kernel, styles, up: bool = False, demodulate: bool = True) -> jax.Array:
  """x (N, H, W, I) convolved with kernel (k, k, I, O) modulated per image by styles (N, I)
  and, with `demodulate`, each output channel rescaled to unit expected std:
  w'[n] = kernel * styles[n] (over I), w''[n] = w'[n] / sqrt(sum over k, k, I of w'[n]**2).
  Computed as x * styles, one shared convolution, times the demodulation coefficients: the
  same products as per-image kernels, without grouped convolutions. `up`: twice the size
  (`upfirdn.upsample_conv2d`)."""
  w = kernel.astype(x.dtype)
  x = x * styles.astype(x.dtype)[:, None, None, :]
  x = upfirdn.upsample_conv2d(x, w, FILTER) if up else upfirdn.conv2d(x, w)
  if demodulate:
    # sum_kki (kernel * s)^2 = s^2 @ sum_kk kernel^2, in float32.
    energy = jnp.square(styles) @ jnp.sum(jnp.square(kernel.astype(jnp.float32)), axis=(0, 1))
    x = x * jax.lax.rsqrt(energy + 1e-8).astype(x.dtype)[:, None, None, :]
  return x


class SynthesisLayer(nn.Module):
  """Modulated 3x3 conv (demodulated; `up`: upsampling), noise, bias, leaky ReLU, clamp."""

  features: int
  side: int  # the output's
  up: bool = False
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = 'random') -> jax.Array:
    cin = x.shape[-1]
    styles = Dense(cin, bias_init=1.0, name='affine')(w)
    kernel = self.param('kernel', nn.initializers.normal(1.0), (3, 3, cin, self.features))
    x = modulated_conv(x, kernel, styles, self.up)
    noise_const = self.variable(
      'buffers', 'noise_const', lambda: jax.random.normal(self.make_rng('params'), (self.side,) * 2)
    )
    strength = self.param('noise_strength', nn.initializers.zeros, ())
    if noise_mode == 'random':
      shape = (x.shape[0], self.side, self.side, 1)
      x = x + (jax.random.normal(self.make_rng('noise'), shape) * strength).astype(x.dtype)
    elif noise_mode == 'const':
      x = x + (noise_const.value * strength).astype(x.dtype)[None, :, :, None]
    elif noise_mode != 'none':
      raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return bias_act(x, bias, clamp=self.conv_clamp)


class ToRGB(nn.Module):
  """Modulated 1x1 conv without demodulation (the style carries the 1 / sqrt(fan_in)), bias,
  clamp; the output in float32."""

  features: int
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    styles = Dense(cin, bias_init=1.0, name='affine')(w) * (1 / np.sqrt(cin))
    kernel = self.param('kernel', nn.initializers.normal(1.0), (1, 1, cin, self.features))
    x = modulated_conv(x, kernel, styles, demodulate=False)
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return bias_act(x, bias, act=False, clamp=self.conv_clamp).astype(jnp.float32)


# --- generator --------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
  """(z, labels) -> w (N, w_dim): z and the class embedding each normalised to unit second
  moment and concatenated, then `num_layers` equalized-lr dense layers with leaky ReLU and a
  learning-rate multiplier. With `num_ws` > 0 (G's) it keeps `w_avg` and returns w repeated
  for each of G's layers (N, num_ws, w_dim), truncated towards w_avg by `truncation_psi` in
  the first `truncation_cutoff` of them (all when None). D's (num_ws 0, z None) maps the
  class to the projection vector cmap."""

  w_dim: int
  num_classes: int = 0
  num_layers: int = 8
  lr_mult: float = 0.01
  num_ws: int = 0

  @nn.compact
  def __call__(
    self, z, labels=None, train=False, truncation_psi=1.0, truncation_cutoff=None
  ) -> jax.Array:
    parts = [] if z is None else [normalize_2nd_moment(z.astype(jnp.float32))]
    if self.num_classes:
      onehot = jax.nn.one_hot(layers.class_labels(labels), self.num_classes)
      parts.append(normalize_2nd_moment(Dense(self.w_dim, name='embed')(onehot)))
    x = jnp.concatenate(parts, axis=-1)
    for i in range(self.num_layers):
      x = Dense(self.w_dim, act=True, lr_mult=self.lr_mult, name=f'fc{i}')(x)
    if not self.num_ws:
      return x
    w_avg = self.variable('buffers', 'w_avg', jnp.zeros, (self.w_dim,), jnp.float32)
    if train and self.is_mutable_collection('buffers') and not self.is_initializing():
      mean = jax.lax.stop_gradient(x).mean(axis=0)
      w_avg.value = mean + W_AVG_DECAY * (w_avg.value - mean)
    ws = jnp.repeat(x[:, None], self.num_ws, axis=1)
    # psi may be an array (traced): only a Python 1 is known to leave ws as they are.
    if not (isinstance(truncation_psi, int | float) and truncation_psi == 1):
      cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
      layer = (jnp.arange(self.num_ws) < cutoff)[None, :, None]
      truncated = w_avg.value + truncation_psi * (ws - w_avg.value)
      ws = jnp.where(layer, truncated, ws)
    return ws


class SynthesisBlock(nn.Module):
  """One resolution: the 4x4 constant (when x is None) or conv0 upsampling x, then conv1,
  and toRGB added to the upsampled image so far. ws (N, 3, w_dim): conv0's, conv1's and
  toRGB's; the 4x4 block has no conv0, and 2."""

  features: int
  side: int
  image_channels: int
  dtype: jnp.dtype = jnp.float32
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x, img, ws, noise_mode: str = 'random'):
    kw = dict(side=self.side, conv_clamp=self.conv_clamp)
    if x is None:
      const = self.param('const', nn.initializers.normal(1.0), (4, 4, self.features))
      x = jnp.broadcast_to(const.astype(self.dtype), (ws.shape[0], *const.shape))
    else:
      x = SynthesisLayer(self.features, up=True, name='conv0', **kw)(
        x.astype(self.dtype), ws[:, 0], noise_mode
      )
      ws = ws[:, 1:]
    x = SynthesisLayer(self.features, name='conv1', **kw)(x, ws[:, 0], noise_mode)
    y = ToRGB(self.image_channels, self.conv_clamp, name='torgb')(x, ws[:, 1])
    img = y if img is None else upfirdn.upsample2d(img, FILTER) + y
    return x, img


class SynthesisNetwork(nn.Module):
  """ws (N, num_ws, w_dim) -> images (N, side, side, C), float32, not squashed."""

  image_shape: tuple[int, int, int]
  channel_base: int = 32768
  channel_max: int = 512
  num_fp16_res: int = 0
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, ws: jax.Array, noise_mode: str = 'random') -> jax.Array:
    resolution, channels_ = self.image_shape[0], self.image_shape[2]
    x = img = None
    for i in range(int(np.log2(resolution)) - 1):
      side = 4 << i
      block = SynthesisBlock(
        channels(side, self.channel_base, self.channel_max),
        side,
        channels_,
        dtype=_dtype(side, resolution, self.num_fp16_res),
        conv_clamp=self.conv_clamp,
        name=f'b{side}',
      )
      # Block i > 0 takes ws 2i - 1 (conv0), 2i (conv1), 2i + 1 (toRGB); the 4x4 one 0, 1.
      x, img = block(x, img, ws[:, max(2 * i - 1, 0) : 2 * i + 2], noise_mode)
    return img


class Generator(nn.Module):
  """z (N, latent) -> images (N, side, side, C) in about [-1, 1] (not squashed).

  `G.apply(v, z, labels=...)` runs both halves; `method='map'` gives ws (N, num_ws, w_dim)
  and `method='synthesize'` images from ws, for style mixing and per-layer truncation.
  `noise_mode` None: 'random' in training (the 'noise' RNG stream), 'const' otherwise, since
  jaxgan samples without RNG streams (and the official generate.py defaults to 'const' too);
  'none' leaves the noise out.
  """

  image_shape: tuple[int, int, int] = (32, 32, 3)
  w_dim: int = 512
  num_classes: int = 0
  mapping_layers: int = 8
  mapping_lr: float = 0.01
  channel_base: int = 32768
  channel_max: int = 512
  num_fp16_res: int = 0
  conv_clamp: float | None = None
  style_mixing: float = 0.0
  pl_weight: float = 0.0  # read by the 'path_length' penalty, not by G's forward pass

  def setup(self):
    self.synthesis = SynthesisNetwork(
      tuple(self.image_shape),
      self.channel_base,
      self.channel_max,
      self.num_fp16_res,
      self.conv_clamp,
    )
    self.mapping = MappingNetwork(
      self.w_dim, self.num_classes, self.mapping_layers, self.mapping_lr, self.num_ws
    )

  @property
  def num_ws(self) -> int:
    return 2 * int(np.log2(self.image_shape[0])) - 2

  def map(self, z, labels=None, train=True, truncation_psi=1.0, truncation_cutoff=None):
    ws = self.mapping(z, labels, train, truncation_psi, truncation_cutoff)
    if train and self.style_mixing and not self.is_initializing():
      ws = self._mix(ws, z, labels)
    return ws

  def _mix(self, ws, z, labels):
    """Style mixing: with probability `style_mixing`, one cutoff for the batch, uniform in
    [1, num_ws); the layers from it on take the ws of other latents (w_avg not updated by
    them). Draws from the 'noise' stream, so a step repeats and resumes exactly."""
    k_cutoff, k_coin, k_z = jax.random.split(self.make_rng('noise'), 3)
    cutoff = jax.random.randint(k_cutoff, (), 1, self.num_ws)
    cutoff = jnp.where(jax.random.uniform(k_coin) < self.style_mixing, cutoff, self.num_ws)
    other = self.mapping(jax.random.normal(k_z, z.shape, jnp.float32), labels, False)
    return jnp.where(jnp.arange(self.num_ws)[None, :, None] >= cutoff, other, ws)

  def synthesize(self, ws, train=True, noise_mode: str | None = None):
    noise_mode = noise_mode or ('random' if train else 'const')
    return self.synthesis(ws, noise_mode)

  def __call__(
    self, z, train=True, labels=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode=None
  ) -> jax.Array:
    ws = self.map(z, labels, train, truncation_psi, truncation_cutoff)
    return self.synthesize(ws, train, noise_mode)


def path_length(inputs: penalties.PenaltyInputs):
  """StyleGAN2's path-length penalty on half of G's batch: the length of J_w^T y for y of unit
  expected norm per pixel (images-shaped noise / sqrt(H W)), per sample the root of the
  mean over layers of its squared norm over w; penalised as (length - a)^2, a the running
  mean of the lengths (decay PL_DECAY, kept in the penalty's state)."""
  fake = inputs.fake.inputs
  n = max(fake.z.shape[0] // PL_BATCH_SHRINK, 1)
  labels = None if fake.g_labels is None else fake.g_labels[:n]
  ws = inputs.apply(fake.z[:n], labels=labels, method='map')
  images, vjp = jax.vjp(lambda w: inputs.apply(w, method='synthesize'), ws)
  y = jax.random.normal(jax.random.fold_in(inputs.key, 7), images.shape, images.dtype)
  (grads,) = vjp(y / np.sqrt(images.shape[1] * images.shape[2]))
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=2), axis=1))
  mean = inputs.state['mean']
  mean = jax.lax.stop_gradient(mean + PL_DECAY * (jnp.mean(lengths) - mean))
  return jnp.mean(jnp.square(lengths - mean)), {'mean': mean}


PATH_LENGTH = penalties.Penalty(
  'path_length',
  'g',
  path_length,
  weight=lambda gan: gan.generator.pl_weight,
  every=PL_EVERY,
  init=lambda: {'mean': jnp.zeros((), jnp.float32)},
)
penalties.register(PATH_LENGTH)


# --- discriminator ----------------------------------------------------------------------------


class DiscriminatorBlock(nn.Module):
  """fromRGB on the `first` (the images); conv0 3x3, conv1 3x3 with 2x FIR downsampling;
  with 'resnet', a 1x1 downsampling shortcut, both branches scaled by sqrt(1/2)."""

  features: int  # the block's own width
  out_features: int  # after downsampling
  first: bool = False
  architecture: str = 'resnet'
  dtype: jnp.dtype = jnp.float32
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    clamp = self.conv_clamp
    if self.first:
      x = Conv(self.features, 1, conv_clamp=clamp, name='fromrgb')(x)
    gain = np.sqrt(0.5) if self.architecture == 'resnet' else 1.0
    y = Conv(self.features, conv_clamp=clamp, name='conv0')(x)
    y = Conv(self.out_features, down=True, conv_clamp=clamp, name='conv1')(y, gain)
    if self.architecture == 'resnet':
      shortcut = Conv(self.out_features, 1, use_bias=False, act=False, down=True, name='skip')
      y = shortcut(x, gain) + y
    return y


class Epilogue(nn.Module):
  """At 4x4: minibatch std, conv 3x3, dense, dense to 1 output (or cmap_dim to project on the
  mapped class: sum(out * cmap) / sqrt(cmap_dim)); float32."""

  features: int
  cmap_dim: int = 0
  code_outputs: int = 0
  mbstd_group: int = 4
  mbstd_channels: int = 1
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array, cmap: jax.Array | None):
    x = x.astype(jnp.float32)
    if self.mbstd_channels:
      x = minibatch_std(x, self.mbstd_group, self.mbstd_channels)
    x = Conv(self.features, conv_clamp=self.conv_clamp, name='conv')(x)
    # Flattened in NHWC order (the official code flattens NCHW: fc's rows permute between them).
    h = Dense(self.features, act=True, name='fc')(x.reshape(x.shape[0], -1))
    out = Dense(self.cmap_dim or 1, name='out')(h)
    if cmap is None:
      logits = out[:, 0]
    else:
      logits = jnp.sum(out * cmap, axis=-1) * (1 / np.sqrt(self.cmap_dim))
    if self.code_outputs:
      return logits, Dense(self.code_outputs, name='code')(h)
    return logits


class Discriminator(nn.Module):
  """images (N, side, side, C) -> logits (N,), float32; with `code_outputs` (InfoGAN's code
  head, a dense layer on the epilogue's features) (logits, codes (N, code_outputs)).

  Conditional (`num_classes` > 0): the class goes through a mapping network of its own (as
  in the official code: `mapping_layers` layers) to cmap, whose inner product with the
  epilogue's cmap_dim outputs, over sqrt(cmap_dim), is the logit; cmap_dim = the 4x4 width.
  """

  num_classes: int = 0
  code_outputs: int = 0
  architecture: str = 'resnet'
  channel_base: int = 32768
  channel_max: int = 512
  num_fp16_res: int = 0
  conv_clamp: float | None = None
  mapping_layers: int = 8
  mapping_lr: float = 0.01
  mbstd_group: int = 4
  mbstd_channels: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, labels: jax.Array | None = None):
    del train  # D behaves the same in training and evaluation
    resolution = x.shape[1]

    def width(side):
      return channels(side, self.channel_base, self.channel_max)

    side = resolution
    while side > 4:
      block = DiscriminatorBlock(
        width(side),
        width(side // 2),
        side == resolution,
        self.architecture,
        _dtype(side, resolution, self.num_fp16_res),
        self.conv_clamp,
        name=f'b{side}',
      )
      x = block(x)
      side //= 2
    cmap = None
    cmap_dim = width(4) if self.num_classes else 0
    if self.num_classes:
      mapping = MappingNetwork(
        cmap_dim, self.num_classes, self.mapping_layers, self.mapping_lr, name='mapping'
      )
      cmap = mapping(None, labels)
    epilogue = Epilogue(
      width(4),
      cmap_dim,
      self.code_outputs,
      self.mbstd_group,
      self.mbstd_channels,
      self.conv_clamp,
      name='b4',
    )
    out = epilogue(x, cmap)
    if self.code_outputs:
      return out[0].astype(jnp.float32), out[1].astype(jnp.float32)
    return out.astype(jnp.float32)
