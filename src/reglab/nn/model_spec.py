"""Model specs: the short strings that name a network, and the layers they regularize.

Grammar, one spec per line::

    softmax                          one linear layer (multinomial logistic regression)
    mlp:W1,W2,...                    fully connected ReLU layers of widths W1, W2, ...
    cnn[:C1,C2[,C3][:OPTIONS]]       2 or 3 conv blocks with C1, C2, C3 channels (default 32,64)
    lenet                            LeNet-5 with ReLU and max-pooling
    module:package.path:factory      factory(input_shape, num_classes) from an importable module

``OPTIONS`` of ``cnn`` is a comma-separated list of ``bn`` (BatchNorm after every
convolution), ``fc=N`` (width of the hidden classifier layer, default 128) and ``convs=N``
(3x3 convolutions per block before its pooling, default 1; ``convs=2`` gives VGG's blocks,
Simonyan & Zisserman, 2015), for example ``cnn:32,64:bn,fc=256`` or
``cnn:32,64,128:bn,convs=2``. Names are case-insensitive, except the module path and factory.

A *site* is a hidden weight layer that reglab can regularize: the dropout that follows it
and the DropConnect mask on its weights. ``mlp`` has one site per hidden layer, ``cnn`` one
per convolution block plus the classifier's hidden layer, ``lenet`` two convolution and
two fully connected sites, ``softmax`` none. A user module has no sites, because reglab does not
build its layers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reglab.errors import ConfigError

SPEC_FORMS = (
    "'softmax', 'mlp:W1,W2,...', 'cnn[:C1,C2[,C3][:bn,fc=N,convs=N]]', 'lenet' or "
    "'module:package.path:factory'"
)
_SPEC_HELP = f"expected {SPEC_FORMS} with positive integer widths, for example 'mlp:512,512' or 'cnn:32,64:bn'"
_CNN_HELP = (
    "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3' with positive integer channel counts, optionally "
    "followed by ':OPTIONS' with OPTIONS a comma-separated list of 'bn', 'fc=N' and 'convs=N' (1 to 8), for example "
    "'cnn:32,64:bn,fc=256' or 'cnn:32,64:bn,convs=2'"
)
_MODULE_HELP = "expected 'module:package.path:factory', for example 'module:mypackage.models:make_net'"

DEFAULT_CNN_CHANNELS = (32, 64)
DEFAULT_CNN_FC = 128
# The maximum number of convolutions per block in a spec. VGG-19 has at most 4 per block.
MAX_CNN_CONVS = 8

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
# Only ASCII digits, because str.isdigit accepts '²', which int() rejects, and int() accepts '٢'.
_ASCII_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        kind: ``"softmax"``, ``"mlp"``, ``"cnn"``, ``"lenet"`` or ``"module"``.
        hidden: widths of the hidden layers of ``mlp``, empty otherwise.
        channels: output channels of each convolution block of ``cnn``, empty otherwise.
        batch_norm: whether ``cnn`` puts ``nn.BatchNorm2d`` after each convolution.
        fc: width of the hidden classifier layer of ``cnn``, 0 otherwise.
        convs: convolutions per block of ``cnn``.
        target: ``"package.path:factory"`` of a ``module`` spec, empty otherwise.
    """

    kind: str
    hidden: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    batch_norm: bool = False
    fc: int = 0
    convs: int = 1
    target: str = ""

    def __str__(self) -> str:
        if self.kind in ("softmax", "lenet"):
            return self.kind
        if self.kind == "mlp":
            return "mlp:" + ",".join(str(width) for width in self.hidden)
        if self.kind == "module":
            return f"module:{self.target}"
        options = []
        if self.batch_norm:
            options.append("bn")
        if self.fc != DEFAULT_CNN_FC:
            options.append(f"fc={self.fc}")
        if self.convs != 1:
            options.append(f"convs={self.convs}")
        text = "cnn:" + ",".join(str(width) for width in self.channels)
        if options:
            text += ":" + ",".join(options)
        return text

    @property
    def sites(self) -> tuple[str, ...]:
        """Names of the regularizable layers, in order: ``conv1``, ..., then ``fc1``, ....

        Raises:
            ConfigError: for a ``module`` spec, because reglab does not build its layers.
        """
        if self.kind == "module":
            raise user_module_error(self)
        if self.kind == "mlp":
            return tuple(f"fc{index}" for index in range(1, len(self.hidden) + 1))
        if self.kind == "cnn":
            return tuple(f"conv{index}" for index in range(1, len(self.channels) + 1)) + ("fc1",)
        if self.kind == "lenet":
            return ("conv1", "conv2", "fc1", "fc2")
        return ()


def user_module_error(spec: ModelSpec) -> ConfigError:
    """Return the error for dropout or DropConnect requested on a user module."""
    return ConfigError(
        f"model {str(spec)!r} is a user module, so reglab cannot insert dropout or DropConnect "
        "into its layers; put nn.Dropout or reglab.nn.DropConnectLinear layers in your module instead "
        "and remove dropout and dropconnect from the strategy. Penalties, max-norm, augmentation and "
        "early stopping work on a user module."
    )


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse a model spec (see the module docstring), raising ConfigError that names the spec."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if kind == "module":
        return _parse_module(spec, rest)

    text = text.lower()
    if text in ("softmax", "lenet"):
        return ModelSpec(text)
    if kind == "cnn":
        return _parse_cnn(spec, rest if ":" in text else None)
    if kind != "mlp" or not rest:
        raise ConfigError(f"Unknown model spec {spec!r}: {_SPEC_HELP}.")
    hidden = _parse_widths(rest)
    if hidden is None:
        raise ConfigError(f"Invalid model spec {spec!r}: {_SPEC_HELP}.")
    return ModelSpec("mlp", hidden)


def _parse_widths(text: str) -> tuple[int, ...] | None:
    """Return the comma-separated positive ints of ``text``, or None when one is invalid."""
    items = [item.strip() for item in text.split(",")]
    if not all(_ASCII_DIGITS.fullmatch(item) for item in items):
        return None
    widths = tuple(int(item) for item in items)
    return widths if all(width > 0 for width in widths) else None


def _parse_cnn(spec: str, rest: str | None) -> ModelSpec:
    if rest is None:
        return ModelSpec("cnn", channels=DEFAULT_CNN_CHANNELS, fc=DEFAULT_CNN_FC)

    widths, _, options = rest.lower().partition(":")
    channels = _parse_widths(widths)
    if channels is None or len(channels) not in (2, 3) or options.count(":"):
        raise ConfigError(f"Invalid model spec {spec!r}: {_CNN_HELP}.")

    batch_norm, fc, convs, seen = False, DEFAULT_CNN_FC, 1, set()
    for option in options.split(",") if options else []:
        name, equals, value = option.strip().partition("=")
        if name in seen:
            raise ConfigError(f"Invalid model spec {spec!r}: option {name!r} is given twice; {_CNN_HELP}.")
        seen.add(name)
        if name == "bn" and not equals:
            batch_norm = True
        elif name == "fc" and _ASCII_DIGITS.fullmatch(value) and int(value) > 0:
            fc = int(value)
        elif name == "convs" and _ASCII_DIGITS.fullmatch(value) and 1 <= int(value) <= MAX_CNN_CONVS:
            convs = int(value)
        else:
            raise ConfigError(f"Invalid model spec {spec!r}: invalid option {option!r}; {_CNN_HELP}.")
    return ModelSpec("cnn", channels=channels, batch_norm=batch_norm, fc=fc, convs=convs)


def _parse_module(spec: str, rest: str) -> ModelSpec:
    module, _, factory = rest.strip().partition(":")
    if not _DOTTED.match(module) or not _IDENTIFIER.match(factory):
        raise ConfigError(f"Invalid model spec {spec!r}: {_MODULE_HELP}.")
    return ModelSpec("module", target=f"{module}:{factory}")


def layer_rates(
    spec: ModelSpec, p: float | Sequence[float], *, setting: str, conv_scale: float
) -> tuple[float, ...]:
    """Expand a probability or a per-site list into one probability per site of ``spec``.

    A single float ``p`` gives ``p`` to every fully connected site and ``conv_scale * p`` to
    every convolution site. A list gives the sites' probabilities in the order of
    :attr:`ModelSpec.sites` and must have one entry per site.

    Args:
        spec: the parsed model spec.
        p: one probability, or one per site.
        setting: the setting's name for error messages, e.g. ``"dropout.p"``.
        conv_scale: factor applied to a single ``p`` at convolution sites.

    Raises:
        ConfigError: ``spec`` is a user module and ``p`` is not 0, or the list's length
            differs from the number of sites.
    """
    if isinstance(p, (int, float)):
        if spec.kind == "module" and p == 0:
            return ()
        return tuple(p * conv_scale if site.startswith("conv") else float(p) for site in spec.sites)

    rates = tuple(float(value) for value in p)
    if spec.kind == "module" and not any(rates):
        return ()
    sites = spec.sites
    if len(rates) != len(sites):
        names = ", ".join(sites) or "none"
        raise ConfigError(
            f"{setting} has {len(rates)} entries {list(rates)}, but model {str(spec)!r} has {len(sites)} "
            f"sites ({names}); give one probability per site or a single number."
        )
    return rates
