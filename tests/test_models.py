"""Model specs and builders."""

import re

import pytest
import torch
from torch import nn

from reglab.errors import ConfigError
from reglab.nn import DropConnectConv2d, DropConnectLinear, Dropout
from reglab.nn.models import ModelSpec, build_model, dropout_rates, parse_model_spec


def test_parse_mlp_spec():
    assert parse_model_spec("mlp:512,256") == ModelSpec("mlp", (512, 256))
    assert str(parse_model_spec(" MLP:64 ")) == "mlp:64"


def test_parse_softmax_spec():
    assert parse_model_spec("softmax") == ModelSpec("softmax")


@pytest.mark.parametrize("spec", ["mlp", "mlp:", "mlp:a,b", "mlp:0", "mlp:-3", "mlp:٢", "resnet:18", "lenet:5"])
def test_parse_rejects_bad_spec(spec):
    with pytest.raises(ConfigError, match=r"model spec .*expected 'softmax', 'mlp:W1,W2,\.\.\.', 'cnn\["):
        parse_model_spec(spec)


def test_mlp_layers_and_output_shape():
    model = build_model("mlp:32,16", (1, 8, 8), 10)

    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert not any(isinstance(m, Dropout) for m in model)


def test_mlp_dropout_positions():
    model = build_model("mlp:32,16", (2,), 3, input_p=0.2, hidden_p=0.5)

    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in model if isinstance(m, Dropout)] == [0.2, 0.5, 0.5]


def test_softmax_is_one_linear_layer():
    model = build_model("softmax", (1, 28, 28), 10)

    assert [type(m).__name__ for m in model] == ["Flatten", "Linear"]


@pytest.mark.parametrize(
    ("spec", "parsed", "canonical"),
    [
        ("cnn", ModelSpec("cnn", channels=(32, 64), fc=128), "cnn:32,64"),
        ("CNN:4,8", ModelSpec("cnn", channels=(4, 8), fc=128), "cnn:4,8"),
        ("cnn:4,8,16:bn", ModelSpec("cnn", channels=(4, 8, 16), batch_norm=True, fc=128), "cnn:4,8,16:bn"),
        ("cnn:4,8:fc=32,bn", ModelSpec("cnn", channels=(4, 8), batch_norm=True, fc=32), "cnn:4,8:bn,fc=32"),
        ("cnn:4,8:convs=2,BN", ModelSpec("cnn", channels=(4, 8), batch_norm=True, fc=128, convs=2), "cnn:4,8:bn,convs=2"),
        ("cnn:4,8:convs=1", ModelSpec("cnn", channels=(4, 8), fc=128), "cnn:4,8"),
        ("lenet", ModelSpec("lenet"), "lenet"),
        ("module:my_pkg.Nets:make", ModelSpec("module", target="my_pkg.Nets:make"), "module:my_pkg.Nets:make"),
    ],
)
def test_parse_new_specs(spec, parsed, canonical):
    assert parse_model_spec(spec) == parsed
    assert str(parse_model_spec(spec)) == canonical


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cnn:4", "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3'"),
        ("cnn:4,8,16,32", "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3'"),
        ("cnn:4,0", "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3'"),
        ("cnn:4,8:dropout", "invalid option 'dropout'"),
        ("cnn:4,8:fc=0", "invalid option 'fc=0'"),
        ("cnn:4,8:bn,bn", "option 'bn' is given twice"),
        ("cnn:4,8:convs=0", "invalid option 'convs=0'"),
        ("cnn:4,8:convs=9", "'convs=N' (1 to 8)"),
        ("cnn:4,8:convs", "invalid option 'convs'"),
        ("cnn:4,8:convs=2,convs=3", "option 'convs' is given twice"),
        ("cnn:4,8:convs=²", "invalid option 'convs=²'"),
        ("cnn:4,8:fc=٢", "invalid option 'fc=٢'"),
        ("cnn:4,٢", "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3'"),
        ("cnn:4,8:bn:fc=3", "expected 'cnn', 'cnn:C1,C2' or 'cnn:C1,C2,C3'"),
        ("module:pkg", "expected 'module:package.path:factory'"),
        ("module:pkg.:make", "expected 'module:package.path:factory'"),
        ("module:pkg:make-net", "expected 'module:package.path:factory'"),
    ],
)
def test_parse_rejects_bad_cnn_and_module_specs(spec, message):
    with pytest.raises(ConfigError, match=re.escape(f"Invalid model spec {spec!r}: ") + ".*" + re.escape(message)):
        parse_model_spec(spec)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        ("cnn:4,8", (1, 8, 8)),
        ("cnn:4,8,16:bn,fc=16", (1, 16, 16)),
        ("cnn:4,8", (3, 9, 11)),
        ("lenet", (1, 28, 28)),
        ("lenet", (3, 32, 32)),
    ],
)
def test_conv_models_output_shape(spec, shape):
    model = build_model(spec, shape, 7)

    assert model(torch.zeros(2, *shape)).shape == (2, 7)


def test_cnn_block_layout_with_batch_norm():
    model = build_model("cnn:4,8:bn,fc=16", (1, 8, 8), 10)

    kinds = [type(m).__name__ for m in model]
    block = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert kinds == block * 2 + ["Flatten", "Linear", "ReLU", "Linear"]
    assert [m.out_channels for m in model if isinstance(m, nn.Conv2d)] == [4, 8]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [(8 * 2 * 2, 16), (16, 10)]


def test_cnn_blocks_with_two_convolutions_pool_once():
    model = build_model("cnn:4,8:bn,convs=2,fc=16", (1, 8, 8), 10, hidden_p=[0.1, 0.2, 0.5])

    kinds = [type(m).__name__ for m in model]
    block = ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d", "Dropout"]
    assert kinds == block * 2 + ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(1, 4), (4, 4), (4, 8), (8, 8)]
    assert [m.p for m in model if isinstance(m, Dropout)] == [0.1, 0.2, 0.5]
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_block_dropconnect_masks_every_convolution():
    model = build_model("cnn:4,8:convs=2", (1, 8, 8), 10, dropconnect_p=[0.2, 0.0, 0.0])

    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [type(m) for m in convs] == [DropConnectConv2d, DropConnectConv2d, nn.Conv2d, nn.Conv2d]
    assert [m.p for m in convs[:2]] == [0.2, 0.2]


def test_cnn_without_batch_norm_has_none():
    model = build_model("cnn:4,8,16", (1, 16, 16), 10)

    assert not any(isinstance(m, nn.BatchNorm2d) for m in model)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3


def test_lenet_layers_match_lenet5_on_28x28():
    model = build_model("lenet", (1, 28, 28), 10)

    convs = [(m.out_channels, m.kernel_size) for m in model if isinstance(m, nn.Conv2d)]
    assert convs == [(6, (5, 5)), (16, (5, 5))]
    linears = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert linears == [(16 * 5 * 5, 120), (120, 84), (84, 10)]


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        ("cnn:4,8", (2,), "model 'cnn:4,8' needs images shaped (C, H, W), got input shape (2,); use 'mlp:...'"),
        ("cnn:4,8", (1, 3, 8), "pools 2 times and needs images of at least 4x4 pixels, got input shape (1, 3, 8)"),
        ("cnn:4,8,16", (1, 4, 4), "needs images of at least 8x8 pixels, got input shape (1, 4, 4); use 'cnn:C1,C2'"),
        ("lenet", (1, 8, 8), "model 'lenet' pools 2 times and needs images of at least 12x12 pixels"),
    ],
)
def test_conv_models_reject_unfit_inputs(spec, shape, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_model(spec, shape, 10)


def test_cnn_single_dropout_p_halves_after_conv_blocks():
    model = build_model("cnn:4,8", (1, 8, 8), 10, input_p=0.1, hidden_p=0.5)

    assert [m.p for m in model if isinstance(m, Dropout)] == [0.1, 0.25, 0.25, 0.5]
    assert dropout_rates("lenet", 0.4) == (0.2, 0.2, 0.4, 0.4)
    assert dropout_rates("mlp:8,8", 0.4) == (0.4, 0.4)
    assert dropout_rates("softmax", 0.4) == ()


def test_dropout_list_sets_each_site():
    model = build_model("cnn:4,8,16", (1, 16, 16), 10, hidden_p=[0.1, 0.0, 0.2, 0.6])

    block = ["Conv2d", "ReLU", "MaxPool2d"]
    # The second block has p = 0, so no dropout follows its pooling.
    expected = [*block, "Dropout", *block, *block, "Dropout", "Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert [type(m).__name__ for m in model] == expected
    assert [m.p for m in model if isinstance(m, Dropout)] == [0.1, 0.2, 0.6]


@pytest.mark.parametrize(("spec", "sites"), [("cnn:4,8", "conv1, conv2, fc1"), ("mlp:8", "fc1"), ("softmax", "none")])
def test_dropout_list_length_must_match_sites(spec, sites):
    with pytest.raises(ConfigError, match=re.escape(f"dropout.p has 2 entries [0.1, 0.2], but model {spec!r}") + r".*" + re.escape(f"({sites})")):
        build_model(spec, (1, 8, 8), 10, hidden_p=[0.1, 0.2])


def test_dropconnect_single_p_masks_fully_connected_layers():
    model = build_model("cnn:4,8", (1, 8, 8), 10, dropconnect_p=0.3)

    assert [type(m) for m in model if isinstance(m, nn.Conv2d)] == [nn.Conv2d, nn.Conv2d]
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert isinstance(linears[0], DropConnectLinear)
    assert linears[0].p == 0.3
    # The output layer is never masked.
    assert type(linears[-1]) is nn.Linear


def test_dropconnect_list_can_mask_convolutions():
    model = build_model("cnn:4,8", (1, 8, 8), 10, dropconnect_p=[0.2, 0.0, 0.4])

    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert isinstance(convs[0], DropConnectConv2d)
    assert convs[0].p == 0.2
    assert type(convs[1]) is nn.Conv2d
    assert [m.p for m in model if isinstance(m, DropConnectLinear)] == [0.4]


def test_dropconnect_model_is_random_in_train_mode_only():
    torch.manual_seed(0)
    model = build_model("mlp:32", (1, 8, 8), 10, dropconnect_p=0.5)
    x = torch.randn(4, 1, 8, 8)

    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    # In eval mode the stored weights are used, so the output equals a plain MLP's.
    plain = build_model("mlp:32", (1, 8, 8), 10).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.allclose(plain(x), model(x))


_FACTORY_SOURCE = """
import sys

import torch
from torch import nn


def make_net(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1] * input_shape[-2], num_classes))


def not_a_module(input_shape, num_classes):
    return "a string"


NOT_CALLABLE = 3


def raises(input_shape, num_classes):
    raise ValueError("my factory is broken")


def exits(input_shape, num_classes):
    sys.exit(7)


def three_classes(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def wrong_input_size(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(10, num_classes))


class NoisyNet(nn.Module):
    # Draws from the CPU generator in its forward pass, and returns a tuple if asked.

    def __init__(self, num_classes, as_tuple):
        super().__init__()
        self.linear = nn.Linear(64, num_classes)
        self.as_tuple = as_tuple

    def forward(self, x):
        logits = self.linear(x.flatten(1) + torch.rand(x.shape[0], 64))
        return (logits, logits) if self.as_tuple else logits


def noisy(input_shape, num_classes):
    return NoisyNet(num_classes, as_tuple=False)


def returns_tuple(input_shape, num_classes):
    return NoisyNet(num_classes, as_tuple=True)
"""


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    (tmp_path / "reglab_user_nets.py").write_text(_FACTORY_SOURCE)
    (tmp_path / "reglab_exits_on_import.py").write_text("import sys\n\nsys.exit(5)\n")
    (tmp_path / "reglab_raises_on_import.py").write_text("raise RuntimeError('no GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "reglab_user_nets"


def test_module_spec_builds_the_factory_network(user_models):
    model = build_model(f"module:{user_models}:make_net", (1, 8, 8), 10)

    assert isinstance(model[1], nn.Linear)
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_package_xyz.nets:make_net", "cannot import module 'no_such_package_xyz.nets'"),
        ("reglab_user_nets:missing", "module 'reglab_user_nets' has no attribute 'missing'"),
        ("reglab_user_nets:NOT_CALLABLE", "must be callable as factory(input_shape, num_classes), got a int"),
        ("reglab_user_nets:not_a_module", "must return a torch.nn.Module, got a str"),
        ("os:getcwd", "factory 'os:getcwd' failed: TypeError: "),
        ("reglab_user_nets:raises", "factory 'reglab_user_nets:raises' failed: ValueError: my factory is broken"),
        ("reglab_user_nets:exits", "factory 'reglab_user_nets:exits' failed: it called sys.exit(7)"),
        ("reglab_exits_on_import:make", "importing module 'reglab_exits_on_import' failed: it called sys.exit(5)"),
        ("reglab_raises_on_import:make", "importing module 'reglab_raises_on_import' failed: RuntimeError: no GPU"),
    ],
)
def test_module_spec_errors(user_models, target, message):
    with pytest.raises(ConfigError, match=re.escape(f"model 'module:{target}': ") + ".*" + re.escape(message)):
        build_model(f"module:{target}", (1, 8, 8), 10)


@pytest.mark.parametrize(
    "options", [{"hidden_p": 0.5}, {"input_p": 0.2}, {"dropconnect_p": 0.5}, {"hidden_p": [0.5]}]
)
def test_module_spec_rejects_inserted_layers(user_models, options):
    with pytest.raises(ConfigError, match="put nn.Dropout or reglab.nn.DropConnectLinear layers in your module"):
        build_model(f"module:{user_models}:make_net", (1, 8, 8), 10, **options)


def test_module_factory_error_is_chained(user_models):
    with pytest.raises(ConfigError, match="must accept \\(input_shape, num_classes\\)") as raised:
        build_model(f"module:{user_models}:raises", (1, 8, 8), 10)

    assert isinstance(raised.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("three_classes", "returned output of shape (2, 3) for a trial batch of shape (2, 1, 8, 8); expected logits of shape (2, 10)"),
        ("wrong_input_size", "failed on a trial batch of shape (2, 1, 8, 8) (input shape (1, 8, 8), 10 classes): RuntimeError: mat1"),
        ("returns_tuple", "returned a tuple for a trial batch of shape (2, 1, 8, 8); expected logits of shape (2, 10)"),
    ],
)
def test_module_output_checked_on_trial_batch(user_models, factory, message):
    with pytest.raises(ConfigError, match=re.escape(f"model 'module:{user_models}:{factory}' {message}")):
        build_model(f"module:{user_models}:{factory}", (1, 8, 8), 10)


def test_trial_batch_keeps_rng_and_training_mode(user_models):
    import importlib

    torch.manual_seed(0)
    model = build_model(f"module:{user_models}:noisy", (1, 8, 8), 10)
    after_build = torch.get_rng_state()
    torch.manual_seed(0)
    importlib.import_module(user_models).noisy((1, 8, 8), 10)
    after_factory_only = torch.get_rng_state()

    assert torch.equal(after_build, after_factory_only)
    assert all(module.training for module in model.modules())


def test_builtin_model_too_large_for_memory():
    from reglab.nn.model_check import check_model_memory

    build = lambda: build_model("mlp:1000", (1, 8, 8), 10)  # noqa: E731

    with pytest.raises(ConfigError, match=re.escape("model 'mlp:1000' on input shape (1, 8, 8) has 75,010 parameters")):
        check_model_memory("mlp:1000", (1, 8, 8), build, memory_bytes=1_000_000)
    assert check_model_memory("mlp:1000", (1, 8, 8), build, memory_bytes=10**9) == 75_010


def test_huge_mlp_rejected_before_allocating():
    with pytest.raises(ConfigError, match=r"has 75,000,000,010 parameters: .* Use smaller layer widths"):
        build_model("mlp:1000000000", (1, 8, 8), 10)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("module:os:getcwd", "factory 'os:getcwd' failed"),
        ("module:reglab_user_nets:three_classes", "expected logits of shape (2, 10)"),
        ("mlp:1000000000", "Use smaller layer widths"),
    ],
)
def test_train_cli_reports_model_errors(user_models, tmp_path, model, message):
    from typer.testing import CliRunner

    from reglab.cli import app

    arguments = ["train", "--dataset", "digits", "--model", model, "--epochs", "1", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, arguments)

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("input_shape", "num_classes", "message"),
    [
        ((), 10, "build_model: input_shape must be the shape of one example, positive ints such as (1, 28, 28) or (2,), got ()."),
        ((1, 0, 8), 10, "got (1, 0, 8)."),
        ((2.5,), 10, "got (2.5,)."),
        ((2,), 0, "build_model: num_classes must be an int >= 1, got 0."),
        ((2,), -3, "build_model: num_classes must be an int >= 1, got -3."),
        ((2,), 2.0, "build_model: num_classes must be an int >= 1, got 2.0."),
    ],
)
def test_build_model_rejects_bad_shapes_and_class_counts(input_shape, num_classes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_model("mlp:4", input_shape, num_classes)
