"""Dropout layer with inverted (PyTorch) and classic (scale at inference) modes."""

from __future__ import annotations

from torch import Tensor, nn

from reglab._validation import check_choice, check_probability
from reglab.errors import ConfigError
from reglab.nn import functional as RF
from reglab.nn.functional import DROPOUT_MODES


class _DropoutBase(nn.Module):
    """Validates ``p``, ``mode`` and ``inplace`` and provides ``extra_repr``."""

    def __init__(self, p: float = 0.5, mode: str = "inverted", inplace: bool = False) -> None:
        owner = type(self).__name__
        p = check_probability(owner, "p", p)
        mode = check_choice(owner, "mode", mode, DROPOUT_MODES)
        if not isinstance(inplace, bool):
            raise ConfigError(f"{owner}: inplace must be a bool, got {inplace!r}.")

        super().__init__()
        self.p = p
        self.mode = mode
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}, inplace={self.inplace}"


class Dropout(_DropoutBase):
    r"""Zero each element with probability ``p`` while training.

    ``mode="inverted"`` behaves like :class:`torch.nn.Dropout`: while training, kept
    elements are scaled by :math:`1 / (1 - p)`, and evaluation is the identity.
    ``mode="classic"`` is the form described by Hinton et al. (2012) and Srivastava et al.
    (2014, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting"): kept
    elements pass unscaled while training, and evaluation multiplies by :math:`1 - p`.
    In both modes the expected training output equals the evaluation output.

    The behaviour follows :meth:`~torch.nn.Module.train` and
    :meth:`~torch.nn.Module.eval`. The layer has no parameters or buffers, so its
    ``state_dict`` is empty.

    Args:
        p: probability that an element is zeroed, in [0, 1]. Defaults to 0.5. ``p = 1``
            gives zeros while training in both modes.
        mode: ``"inverted"`` or ``"classic"``. Defaults to ``"inverted"``.
        inplace: modify the input in place. Defaults to ``False``.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, the shape of the input.

    Example::

        >>> layer = Dropout(p=0.2, mode="classic")
        >>> x = torch.ones(3, 5)
        >>> layer.eval()(x)[0, 0].item()
        0.800000011920929
    """

    def forward(self, x: Tensor) -> Tensor:
        return RF.dropout(x, self.p, self.training, self.mode, inplace=self.inplace)
