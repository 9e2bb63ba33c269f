"""K multilayer perceptrons of one architecture with stacked weights, trained in one step.

:class:`BatchedMLP` contains the networks that :func:`reglab.nn.models.build_model` builds for
one model spec, K of them, with a leading member dimension on every tensor: layer ``i`` has
weights of logical shape ``[K, in, out]`` and biases ``[K, 1, out]``, and activations are
``[K, B, width]``. One :func:`torch.baddbmm` computes a layer for every member. Each member
keeps its own hyperparameters as tensors (learning rate, momentum, L2 and L1 strengths,
max-norm, dropout probabilities and mode) and its own dropout generator, and
:meth:`BatchedMLP.member` hands it back as an ordinary ``nn.Sequential``.

Members never mix: the loss is the sum of the members' losses, so each member's gradient is
the gradient of its own loss, and every update and constraint is applied per member.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab._validation import check_probability
from reglab.nn.masks import fill_keep_mask, is_power_of_two
from reglab.nn.models import ModelSpec, build_model

_INF = math.inf


@dataclass(frozen=True)
class MemberSettings:
    """The hyperparameters of one member that the batched step reads.

    Attributes:
        lr: the SGD learning rate.
        momentum: the SGD momentum (no dampening, no Nesterov), as ``torch.optim.SGD``.
        l2: L2 strength; the loss gains ``l2/2 · Σw²`` over the weights, not the biases.
        l1: L1 strength; the loss gains ``l1 · Σ|w|`` over the weights.
        max_norm: the maximum L2 norm of each unit's incoming weight vector, or None.
        input_p: drop probability on the flattened input.
        hidden_p: drop probability after every hidden ReLU.
        dropout_mode: ``"inverted"`` or ``"classic"``, as :class:`reglab.nn.Dropout`.
    """

    lr: float
    momentum: float = 0.0
    l2: float = 0.0
    l1: float = 0.0
    max_norm: float | None = None
    input_p: float = 0.0
    hidden_p: float = 0.0
    dropout_mode: str = "inverted"


def draw_keep_masks(
    shape: Sequence[int] | torch.Size,
    probabilities: Sequence[float],
    generators: Sequence[torch.Generator | None],
    device: torch.device,
    dtype: torch.dtype = torch.bool,
) -> Tensor:
    """Draw one dropout keep mask per member, shape ``[K, *shape]``, from the member's generator.

    Member ``k``'s mask is ``keep_mask(shape, p_k, generator=generators[k])`` from
    :func:`reglab.nn.masks.keep_mask`, so a member reproduces the masks of a single run that
    uses the same generator state. A member with ``p_k = 0`` draws nothing and keeps every
    element. ``dtype`` is the masks' dtype: bool, or a floating dtype for masks of 0 and 1.
    """
    if len(probabilities) != len(generators):
        raise ValueError(
            f"draw_keep_masks: got {len(probabilities)} probabilities and {len(generators)} generators; "
            "pass one generator (or None) per member."
        )
    masks = torch.empty((len(probabilities), *shape), dtype=dtype, device=device)
    for mask, p, generator in zip(masks, probabilities, generators):
        fill_keep_mask(mask, check_probability("draw_keep_masks", "p", p), generator)
    return masks


class BatchedMLP:
    """K MLPs of one spec, their SGD momentum buffers and their dropout generators.

    Build it with :meth:`from_models` from networks that :func:`build_model` made, so that
    each member starts from exactly the weights of its own seeded ``nn.Linear``
    initialization.

    The first layer's weights are stored as ``[in, K, out]``. When all members get the same
    input batch (no input dropout and no per-member augmentation), the first layer is then
    one matrix product ``[B, in] @ [in, K·out]``, which is faster than a batched product
    over an expanded input. :attr:`weights` returns every layer as a ``[K, in, out]`` view.

    Args:
        spec: the model spec the members were built from.
        input_shape: shape of one example.
        num_classes: number of output logits.
        weights: per layer, ``[K, in, out]``.
        biases: per layer, ``[K, out]``.
        settings: one :class:`MemberSettings` per member.
        generators: one dropout generator per member, on the weights' device. A member
            without dropout may have None.
    """

    def __init__(
        self,
        spec: ModelSpec,
        input_shape: tuple[int, ...],
        num_classes: int,
        weights: Sequence[Tensor],
        biases: Sequence[Tensor],
        settings: Sequence[MemberSettings],
        generators: Sequence[torch.Generator | None],
    ) -> None:
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.settings = list(settings)
        self.generators = list(generators)

        # Parameters: the first layer as [in, K, out], the others as [K, in, out].
        first = weights[0].detach().permute(1, 0, 2).contiguous()
        self._params: list[Tensor] = [first] + [w.detach().clone() for w in weights[1:]]
        self._biases: list[Tensor] = [b.detach().reshape(b.shape[0], 1, -1).clone() for b in biases]
        for tensor in (*self._params, *self._biases):
            tensor.requires_grad_(True)
        self._momentum_buffers: list[Tensor] = [torch.zeros_like(t) for t in (*self._params, *self._biases)]
        self._build_setting_tensors()

    # Construction and export.

    @classmethod
    def from_models(
        cls,
        spec: ModelSpec,
        input_shape: tuple[int, ...],
        num_classes: int,
        models: Sequence[nn.Sequential],
        settings: Sequence[MemberSettings],
        generators: Sequence[torch.Generator | None],
    ) -> BatchedMLP:
        """Stack the ``nn.Linear`` weights of ``models``, one member per model.

        Raises:
            ValueError: the models' linear layers differ in number or shape.
        """
        linears = [[m for m in model.modules() if isinstance(m, nn.Linear)] for model in models]
        shapes = {tuple(tuple(layer.weight.shape) for layer in layers) for layers in linears}
        if len(shapes) != 1:
            raise ValueError(f"BatchedMLP.from_models: every model must have the same linear layers, got {shapes}.")
        n_layers = len(linears[0])
        weights = [torch.stack([layers[i].weight.detach().T for layers in linears]) for i in range(n_layers)]
        biases = [torch.stack([layers[i].bias.detach() for layers in linears]) for i in range(n_layers)]
        return cls(spec, input_shape, num_classes, weights, biases, settings, generators)

    @property
    def size(self) -> int:
        """The number of members K."""
        return len(self.settings)

    @property
    def weights(self) -> list[Tensor]:
        """Every layer's weights as a ``[K, in, out]`` view."""
        return [self._params[0].permute(1, 0, 2), *self._params[1:]]

    @property
    def biases(self) -> list[Tensor]:
        """Every layer's biases, ``[K, 1, out]``."""
        return list(self._biases)

    def parameters(self) -> list[Tensor]:
        """Return the weight and bias tensors that receive gradients, in a fixed order."""
        return [*self._params, *self._biases]

    def member_state(self, index: int) -> list[Tensor]:
        """Return copies of member ``index``'s weights ``[in, out]`` per layer, then its biases ``[out]``."""
        weights = [weight[index].detach().clone() for weight in self.weights]
        biases = [bias[index, 0].detach().clone() for bias in self._biases]
        return weights + biases

    def member(self, index: int, state: Sequence[Tensor] | None = None) -> nn.Sequential:
        """Return member ``index`` as the ``nn.Sequential`` that :func:`build_model` builds.

        Args:
            index: the member's position, in ``[0, K)``.
            state: weights and biases from :meth:`member_state` to load in place of the
                member's current ones, for example those of its best epoch.

        The weights are copied, so the returned network does not change when training goes on.
        """
        state = self.member_state(index) if state is None else state
        return member_model(self.spec, self.input_shape, self.num_classes, self.settings[index], state)

    def select(self, indices: Sequence[int]) -> None:
        """Keep only the members at ``indices``, in that order, with their optimizer state."""
        index = torch.tensor(list(indices), dtype=torch.long, device=self._params[0].device)
        tensors = self.parameters()
        for position, tensor in enumerate(tensors):
            member_dim = 1 if position == 0 else 0
            kept = tensor.detach().index_select(member_dim, index).requires_grad_(True)
            self._momentum_buffers[position] = self._momentum_buffers[position].index_select(member_dim, index)
            if position < len(self._params):
                self._params[position] = kept
            else:
                self._biases[position - len(self._params)] = kept
        self.settings = [self.settings[i] for i in indices]
        self.generators = [self.generators[i] for i in indices]
        self._build_setting_tensors()

    def _build_setting_tensors(self) -> None:
        reference = self._params[0]
        shape = (len(self.settings), 1, 1)

        def column(values: list[float]) -> Tensor:
            return torch.tensor(values, dtype=reference.dtype, device=reference.device).view(shape)

        s = self.settings
        self._lr = column([m.lr for m in s])
        self._neg_lr = -self._lr
        self._momentum = column([m.momentum for m in s])
        self._l2 = column([m.l2 for m in s])
        self._l1 = column([m.l1 for m in s])
        self._max_norm = column([m.max_norm if m.max_norm is not None else _INF for m in s])
        self._any_l2 = any(m.l2 > 0 for m in s)
        self._any_l1 = any(m.l1 > 0 for m in s)
        self._any_max_norm = any(m.max_norm is not None for m in s)

        # Dropout scales: inverted mode divides kept values by 1 - p while training, and
        # classic mode multiplies by 1 - p in evaluation. Other members use exactly 1.
        self._dropout = {}
        for layer, probabilities in (("input", [m.input_p for m in s]), ("hidden", [m.hidden_p for m in s])):
            classic = [m.dropout_mode == "classic" for m in s]
            train_divisor = [1.0 if c or p == 0 else 1.0 - p for p, c in zip(probabilities, classic)]
            eval_scale = [1.0 - p if c else 1.0 for p, c in zip(probabilities, classic)]
            self._dropout[layer] = (
                probabilities,
                column(train_divisor),
                column(eval_scale),
                any(c and p > 0 for p, c in zip(probabilities, classic)),
                all(is_power_of_two(divisor) for divisor in train_divisor),
            )

    # The forward pass.

    def forward(self, x: Tensor, *, training: bool, hidden: list[Tensor] | None = None) -> Tensor:
        """Return the logits ``[K, B, num_classes]`` of every member.

        Args:
            x: normalized inputs, either shared by all members (``[B, *input_shape]``) or
                one batch per member (``[K, B, *input_shape]``).
            training: draw dropout masks from the members' generators when True; apply
                the evaluation behaviour of dropout when False.
            hidden: a list that receives each hidden ReLU's output ``[K, B, width]``, in
                order, for diagnostics such as dead units.
        """
        k = self.size
        shared = x.dim() == 1 + len(self.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)

        if any(p > 0 for p in self._dropout["input"][0]):
            if shared:
                h = h.expand(k, *h.shape)
            h = self._apply_dropout(h, "input", training)
            shared = False

        n_layers = len(self._params)
        for i in range(n_layers):
            bias = self._biases[i]
            if i == 0 and shared:
                batch = h.shape[0]
                first = self._params[0]
                out = first.shape[2]
                # contiguous() gives the next layers the same [K, B, out] memory layout for
                # every K. The product itself may round differently for different widths K·out
                # (with MKL at B = 2048 it did), so a member can differ in the last bits from
                # the same run in a batch of another size; `reglab reproduce` therefore
                # retrains a batched run in its original batch.
                h = (h @ first.view(first.shape[0], k * out)).view(batch, k, out).transpose(0, 1).contiguous() + bias
            elif i == 0:
                weight = self._params[0].permute(1, 0, 2)
                if not torch.is_grad_enabled():
                    # Without autograd a contiguous copy is cheap, and bmm runs faster on it.
                    weight = weight.contiguous()
                h = torch.baddbmm(bias, h, weight)
            else:
                h = torch.baddbmm(bias, h, self._params[i])
            if i < n_layers - 1:
                h = F.relu(h)
                if hidden is not None:
                    hidden.append(h)
                if any(p > 0 for p in self._dropout["hidden"][0]):
                    h = self._apply_dropout(h, "hidden", training)
        return h

    def _apply_dropout(self, h: Tensor, layer: str, training: bool) -> Tensor:
        probabilities, train_divisor, eval_scale, any_classic, exact_fold = self._dropout[layer]
        if not training:
            return h * eval_scale if any_classic else h

        mask = draw_keep_masks(h.shape[1:], probabilities, self.generators, h.device, h.dtype)
        # Multiplying by a mask of h's dtype is faster than torch.where or a bool mask on
        # CPU. A kept value is h / (1 - p) exactly, and a dropped value is 0 unless h is
        # infinite or NaN.
        if exact_fold:
            # Every divisor is a power of two (p = 0 or 0.5, for example), so a kept mask
            # value 1 / divisor is exact and h times it equals h / divisor: one product,
            # forward and backward, in place of a division and a product.
            return h * mask.div_(train_divisor)
        return (h / train_divisor) * mask

    # Loss, update and constraint.

    @torch.no_grad()
    def penalties(self) -> Tensor:
        """Return each member's weight penalty ``l2/2 · Σw² + l1 · Σ|w|``, shape ``[K]``.

        The value carries no gradient: :meth:`sgd_step` adds the penalty's gradient
        ``l2 · w + l1 · sign(w)`` itself, which saves the autograd passes over every weight.
        """
        total = torch.zeros(self.size, dtype=self._params[0].dtype, device=self._params[0].device)
        # Each weight is reduced in its stored layout: the first layer's [in, K, out] over dims (0, 2).
        # On CPU, square().sum() took a third of the time of vector_norm.
        for position, weight in enumerate(self._params):
            dims = (0, 2) if position == 0 else (1, 2)
            if self._any_l2:
                total = total + self._l2.view(-1) * (0.5 * weight.square().sum(dim=dims))
            if self._any_l1:
                total = total + self._l1.view(-1) * weight.abs().sum(dim=dims)
        return total

    def zero_grad(self) -> None:
        """Drop the gradients of every parameter."""
        for param in self.parameters():
            param.grad = None

    @torch.no_grad()
    def sgd_step(self) -> None:
        """Apply one SGD-with-momentum update per member, penalty gradients included.

        ``buf = momentum · buf + grad + l2 · w + l1 · sign(w)`` and ``param -= lr · buf``, with
        each member's own ``lr``, ``momentum`` and strengths: the update of
        ``torch.optim.SGD`` on the gradient of the loss plus :meth:`penalties` (biases carry
        no penalty). The buffers start at zero, which gives ``buf = grad`` in the first step,
        as in ``torch.optim.SGD``. The gradients are read, not changed.
        """
        n_weights = len(self._params)
        for position, param in enumerate(self.parameters()):
            if param.grad is None:
                continue
            # The first layer is stored [in, K, out], so its member dimension is 1.
            member_shape = (1, -1, 1) if position == 0 else (-1, 1, 1)
            neg_lr = self._neg_lr.view(member_shape)
            momentum = self._momentum.view(member_shape)
            buffer = self._momentum_buffers[position]

            # buf = momentum · buf + grad in one pass. The penalty gradient goes straight into
            # the buffer, so the gradient is read once and never written.
            torch.addcmul(param.grad, buffer, momentum, out=buffer)
            if position < n_weights and self._any_l2:
                buffer.addcmul_(param, self._l2.view(member_shape))
            if position < n_weights and self._any_l1:
                buffer.addcmul_(param.sign(), self._l1.view(member_shape))

            param.addcmul_(buffer, neg_lr)

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Rescale each unit's incoming weight vector whose norm exceeds the member's max-norm.

        A vector inside the ball is multiplied by exactly 1, so it is unchanged, as in
        :class:`reglab.penalties.MaxNorm`. Members without max-norm have an infinite limit.
        """
        if not self._any_max_norm:
            return
        for weight in self.weights:
            norms = torch.linalg.vector_norm(weight, ord=2, dim=1, keepdim=True)
            scale = torch.where(norms > self._max_norm, self._max_norm / norms, torch.ones_like(norms))
            weight.mul_(scale)


def member_model(
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    settings: MemberSettings,
    state: Sequence[Tensor],
) -> nn.Sequential:
    """Build the ``nn.Sequential`` of one member and load ``state`` into it.

    Args:
        spec: the model spec.
        input_shape: shape of one example.
        num_classes: number of output logits.
        settings: the member's settings, which decide its dropout layers.
        state: the weights ``[in, out]`` of every layer, then the biases ``[out]``, as
            :meth:`BatchedMLP.member_state` returns them. The network takes their device
            and dtype.
    """
    # build_model draws an initialization that is overwritten at once; fork the global RNG
    # so that the draw leaves no trace.
    with torch.random.fork_rng(devices=[]):
        model = build_model(
            spec,
            input_shape,
            num_classes,
            input_p=settings.input_p,
            hidden_p=settings.hidden_p,
            dropout_mode=settings.dropout_mode,
        )
    model = model.to(device=state[0].device, dtype=state[0].dtype)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    n_layers = len(linears)
    if len(state) != 2 * n_layers:
        raise ValueError(f"member_model: state must hold {2 * n_layers} tensors for {spec}, got {len(state)}.")
    with torch.no_grad():
        for i, layer in enumerate(linears):
            layer.weight.copy_(state[i].T)
            layer.bias.copy_(state[n_layers + i])
    return model
