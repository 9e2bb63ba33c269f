r"""DropConnect layers: dropout on weights instead of units.

DropConnect (Wan et al., 2013, "Regularization of Neural Networks using DropConnect",
ICML) zeroes each weight independently with probability ``p`` while training. The bias is
never masked. reglab departs from the paper in one respect: the sampled weights are
scaled by :math:`1 / (1 - p)` while training (inverted scaling, as in
:class:`torch.nn.Dropout`), so the expected weight equals the stored weight and
``inference="mean"`` evaluates the layer with its weights unchanged. Wan et al. keep the
masked weights unscaled and scale the mean by :math:`1 - p` at inference. Both forms
have the same expected pre-activation.

The mask is applied inside ``forward`` to a temporary copy of the weight. The
``weight`` parameter itself is never masked, so ``state_dict`` contains the same keys as
:class:`torch.nn.Linear` or :class:`torch.nn.Conv2d` and an optimizer step updates the
unmasked weight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab._validation import check_choice, check_int, check_probability
from reglab.errors import ConfigError
from reglab.nn.masks import keep_mask

INFERENCE_MODES = ("mean", "mc", "gaussian")

_Activation = Callable[[Tensor], Tensor]


def _validate_options(
    owner: str, p: Any, inference: Any, samples: Any, activation: Any
) -> tuple[float, str, int, _Activation | None]:
    # p = 1 would drop every weight, and the inverted scale 1 / (1 - p) is undefined.
    p = check_probability(owner, "p", p, allow_one=False)
    inference = check_choice(owner, "inference", inference, INFERENCE_MODES)
    samples = check_int(owner, "samples", samples, minimum=1)
    if activation is not None and not callable(activation):
        raise ConfigError(
            f"{owner}: activation must be a callable such as torch.relu or None, "
            f"got {activation!r}."
        )
    return p, inference, samples, activation


class _DropConnectBase:
    """Mask sampling, the three inference modes and ``extra_repr`` for DropConnect layers.

    A subclass lists this class before :class:`torch.nn.Linear` or
    :class:`torch.nn.Conv2d`, calls :meth:`_set_options` after the torch constructor and
    implements :meth:`_apply_weight`.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None
    training: bool

    def _set_options(
        self, p: float, inference: str, samples: int, activation: _Activation | None
    ) -> None:
        self.p = p
        self.inference = inference
        self.samples = samples
        self.activation = activation

    def _apply_weight(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    @property
    def stochastic_eval(self) -> bool:
        """Whether evaluation-mode outputs are random.

        True for ``p > 0`` with ``inference="mc"``, or with ``"gaussian"`` and an activation.
        """
        if self.p == 0.0:
            return False
        return self.inference == "mc" or (
            self.inference == "gaussian" and self.activation is not None
        )

    def sample_weight(self, generator: torch.Generator | None = None) -> Tensor:
        """Draw one masked copy of the weight, as ``forward`` uses it while training.

        Each entry is zeroed with probability ``p``, and kept entries are scaled by
        ``1 / (1 - p)``. Seeding the global generator before this call and before a
        training-mode ``forward`` gives both the same mask.

        Args:
            generator: the random number generator for the mask. Defaults to the global
                generator of the weight's device.

        Returns:
            A tensor shaped like ``weight`` that stays connected to ``weight`` in the
            autograd graph, so the gradient of a masked entry is zero.
        """
        if self.p == 0.0:
            return self.weight
        mask = keep_mask(self.weight.shape, self.p, device=self.weight.device, generator=generator)
        return torch.where(mask, self.weight / (1.0 - self.p), 0.0)

    def gaussian_moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Return the mean and variance of the pre-activation over DropConnect masks.

        With masks :math:`m_{ji} \sim \mathrm{Bernoulli}(1 - p)` and the inverted
        scaling, a pre-activation is
        :math:`u_j = \sum_i W_{ji}\, x_i\, m_{ji} / (1 - p) + b_j`, so

        .. math::
            \mathbb{E}[u_j] = \sum_i W_{ji} x_i + b_j, \qquad
            \mathrm{Var}[u_j] = \frac{p}{1 - p} \sum_i W_{ji}^2 x_i^2 .

        For a convolution the sums run over each output position's receptive field.
        These are the marginal moments of each output element. Elements that share a
        mask (the batch, or the positions of one convolution output) are correlated.

        Args:
            x: input, as for ``forward``.

        Returns:
            ``(mean, variance)``, each shaped like the layer's pre-activation output.
        """
        mean = self._apply_weight(x, self.weight, self.bias)
        var = self._apply_weight(x * x, self.weight * self.weight, None)
        return mean, var * (self.p / (1.0 - self.p))

    def _sampled_pre_activation(self, x: Tensor) -> Tensor:
        return self._apply_weight(x, self.sample_weight(), self.bias)

    def _activate(self, u: Tensor) -> Tensor:
        return u if self.activation is None else self.activation(u)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self._activate(self._sampled_pre_activation(x))
        if self.inference == "mean":
            return self._activate(self._apply_weight(x, self.weight, self.bias))
        if self.inference == "mc":
            total = self._activate(self._sampled_pre_activation(x))
            for _ in range(self.samples - 1):
                total = total + self._activate(self._sampled_pre_activation(x))
            return total / self.samples

        # Gaussian moment matching: sample u from the Normal that matches its mask
        # moments, then average the activation of the samples.
        mean, var = self.gaussian_moments(x)
        if self.activation is None:
            return mean
        noise = torch.randn((self.samples, *mean.shape), device=mean.device, dtype=mean.dtype)
        return self.activation(mean + var.sqrt() * noise).mean(dim=0)

    def _extra_repr_items(self) -> list[str]:
        items = [f"p={self.p}", f"inference={self.inference!r}"]
        if self.inference != "mean":
            items.append(f"samples={self.samples}")
        if self.activation is not None and not isinstance(self.activation, nn.Module):
            name = getattr(self.activation, "__name__", repr(self.activation))
            items.append(f"activation={name}")
        return items

    def extra_repr(self) -> str:
        return ", ".join([super().extra_repr(), *self._extra_repr_items()])  # type: ignore[misc]


_COMMON_ARGS = r"""
        p: probability that a weight is zeroed while training, in [0, 1). Defaults to 0.5.
        inference: evaluation-mode behaviour. Defaults to ``"mean"``.

            * ``"mean"``: the stored weights, deterministic.
            * ``"mc"``: the average of ``samples`` outputs, each with a freshly drawn
              mask (a Monte-Carlo estimate of the expected output).
            * ``"gaussian"``: Wan et al.'s moment matching. Each pre-activation is
              replaced by ``samples`` draws from a Normal with the mean and variance
              given by :meth:`gaussian_moments`, and the layer returns the average of
              ``activation`` over the draws. Without an activation this is the mean,
              so the output equals ``"mean"``.
        samples: number of masks or Normal draws averaged by ``"mc"`` and ``"gaussian"``.
            Defaults to 32.
        activation: a function applied to the pre-activation in every mode, so that
            the layer computes Wan et al.'s :math:`r = a((M \star W) v)`. Defaults to
            ``None``, the identity. Do not apply the same activation again after the
            layer."""


class DropConnectLinear(_DropConnectBase, nn.Linear):
    r"""A :class:`torch.nn.Linear` layer that drops weights instead of units while training.

    While training, every entry of ``weight`` is zeroed with probability ``p`` and kept
    entries are scaled by :math:`1 / (1 - p)`. With ``per_example=False`` one mask is
    drawn per forward call and shared by the batch. With ``per_example=True`` each
    example gets its own mask, as in Wan et al. (2013); this materializes masked weights
    of :math:`N \cdot \text{out} \cdot \text{in}` elements, so it suits small layers.

    The module is an instance of :class:`torch.nn.Linear` with the same initialization
    and ``state_dict`` keys. :attr:`stochastic_eval` is ``True`` when evaluation is
    random, which :func:`reglab.nn.checks.check_eval_deterministic` respects.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: add a learnable bias, which is never masked. Defaults to ``True``.
        per_example: draw one mask per example (first dimension) instead of one per
            call. Defaults to ``False``.{common}

    Shape:
        - Input: :math:`(*, H_{in})` with :math:`H_{in} = \text{in\_features}`. With
          ``per_example=True`` the first dimension indexes the examples.
        - Output: :math:`(*, H_{out})` with :math:`H_{out} = \text{out\_features}`.

    Example::

        >>> layer = DropConnectLinear(20, 30, p=0.5, inference="gaussian", activation=torch.relu)
        >>> layer(torch.randn(128, 20)).shape
        torch.Size([128, 30])
        >>> sorted(layer.state_dict())
        ['bias', 'weight']
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        per_example: bool = False,
        inference: str = "mean",
        samples: int = 32,
        *,
        activation: _Activation | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        options = _validate_options("DropConnectLinear", p, inference, samples, activation)
        if not isinstance(per_example, bool):
            raise ConfigError(
                f"DropConnectLinear: per_example must be a bool, got {per_example!r}."
            )

        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._set_options(*options)
        self.per_example = per_example

    def _apply_weight(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def _sampled_pre_activation(self, x: Tensor) -> Tensor:
        if not self.per_example or self.p == 0.0 or x.dim() < 2:
            return super()._sampled_pre_activation(x)

        # One mask per example: weights [N, out, in], inputs [N, M, in] with M the
        # product of the middle dimensions, batched through bmm.
        n = x.shape[0]
        masks = keep_mask((n, *self.weight.shape), self.p, device=self.weight.device)
        weights = torch.where(masks, self.weight / (1.0 - self.p), 0.0)
        out = torch.bmm(x.reshape(n, -1, self.in_features), weights.transpose(1, 2))
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def _extra_repr_items(self) -> list[str]:
        items = super()._extra_repr_items()
        items.insert(1, f"per_example={self.per_example}")
        return items


class DropConnectConv2d(_DropConnectBase, nn.Conv2d):
    r"""A :class:`torch.nn.Conv2d` layer that drops kernel weights while training.

    While training, every entry of ``weight`` is zeroed with probability ``p`` and kept
    entries are scaled by :math:`1 / (1 - p)`. One mask is drawn per forward call and
    shared by the batch and by all output positions, because the masked kernel slides
    over the image.

    The module is an instance of :class:`torch.nn.Conv2d` with the same initialization
    and ``state_dict`` keys.

    Args:
        in_channels: number of channels in the input image.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel.
        stride: stride of the convolution. Defaults to 1.
        padding: padding added to all four sides of the input. Defaults to 0.
        bias: add a learnable bias, which is never masked. Defaults to ``True``.{common}
        per_example: must be ``False``. Per-example masks are implemented only by
            :class:`DropConnectLinear`.
        dilation, groups, padding_mode, device, dtype: as for :class:`torch.nn.Conv2d`.

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})` or
          :math:`(C_{out}, H_{out}, W_{out})`, as for :class:`torch.nn.Conv2d`.

    Example::

        >>> layer = DropConnectConv2d(1, 8, kernel_size=3, p=0.3, padding=1)
        >>> layer(torch.randn(4, 1, 28, 28)).shape
        torch.Size([4, 8, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        p: float = 0.5,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        bias: bool = True,
        inference: str = "mean",
        samples: int = 32,
        *,
        activation: _Activation | None = None,
        per_example: bool = False,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        options = _validate_options("DropConnectConv2d", p, inference, samples, activation)
        if per_example is not False:
            raise ConfigError(
                "DropConnectConv2d: per_example must be False, because per-example masks "
                f"are implemented only for DropConnectLinear, got {per_example!r}."
            )

        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self._set_options(*options)

    def _apply_weight(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return self._conv_forward(x, weight, bias)


# The shared argument text is written once and spliced into both class docstrings.
# Under ``python -OO`` docstrings are None and nothing is spliced.
for _cls in (DropConnectLinear, DropConnectConv2d):
    if _cls.__doc__:
        _cls.__doc__ = _cls.__doc__.replace("{common}", _COMMON_ARGS)
del _cls
