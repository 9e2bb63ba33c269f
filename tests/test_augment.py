"""Tests for reglab.augment.

torchvision is the reference: :func:`affine` must reproduce
``torchvision.transforms.v2.functional.affine`` for fixed parameters, and
:class:`RandomAffine` must produce the same pixel statistics as torchvision's RandomAffine
applied image by image. The other transforms are checked against their definitions with
seeded generators.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

from reglab.augment import (
    AugmentationWarning,
    Compose,
    GaussianNoise,
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    affine,
    check_transforms_for_dataset,
    default_augmentation,
    is_digit_dataset,
)
from reglab.errors import ConfigError


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def torchvision_affine(x, angle, translate, scale, shear, interpolation, fill):
    mode = InterpolationMode(interpolation)
    return torch.stack(
        [
            TF.affine(
                image,
                angle=angle,
                translate=list(translate),
                scale=scale,
                shear=list(shear),
                interpolation=mode,
                fill=fill,
            )
            for image in x
        ]
    )


def pairwise_different(y: torch.Tensor) -> bool:
    return all(not torch.equal(y[i], y[j]) for i in range(len(y)) for j in range(i + 1, len(y)))


# (angle, translate, scale, shear)
AFFINE_PARAMETERS = [
    pytest.param(0.0, (0.0, 0.0), 1.0, (0.0, 0.0), id="identity"),
    pytest.param(33.0, (0.0, 0.0), 1.0, (0.0, 0.0), id="rotation"),
    pytest.param(-20.0, (3.0, -2.0), 1.0, (0.0, 0.0), id="rotation-translation"),
    pytest.param(0.0, (1.5, -2.25), 1.0, (0.0, 0.0), id="fractional-translation"),
    pytest.param(10.0, (0.0, 0.0), 1.3, (0.0, 0.0), id="rotation-scale"),
    pytest.param(0.0, (0.0, 0.0), 1.0, (25.0, 0.0), id="shear-x"),
    pytest.param(15.0, (2.0, 1.0), 0.8, (12.0, -7.0), id="everything"),
    pytest.param(-137.0, (-4.0, 5.0), 1.7, (-30.0, 20.0), id="large"),
]
IMAGE_SIZES = [pytest.param((28, 28), id="28x28"), pytest.param((17, 30), id="17x30")]


@pytest.mark.parametrize("size", IMAGE_SIZES)
@pytest.mark.parametrize(("angle", "translate", "scale", "shear"), AFFINE_PARAMETERS)
@pytest.mark.parametrize("fill", [None, 0.0, 0.5, (0.1, 0.2, 0.3)], ids=["none", "zero", "half", "per-channel"])
def test_affine_matches_torchvision_bilinear(size, angle, translate, scale, shear, fill):
    x = torch.rand(2, 3, *size, generator=seeded())

    ours = affine(x, angle, translate, scale, shear, interpolation="bilinear", fill=fill)
    reference = torchvision_affine(x, angle, translate, scale, shear, "bilinear", fill)

    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", IMAGE_SIZES)
@pytest.mark.parametrize(("angle", "translate", "scale", "shear"), AFFINE_PARAMETERS)
def test_affine_matches_torchvision_nearest(size, angle, translate, scale, shear):
    x = torch.rand(2, 1, *size, generator=seeded())

    ours = affine(x, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST, fill=0.0)
    reference = torchvision_affine(x, angle, translate, scale, shear, "nearest", 0.0)

    assert torch.equal(ours, reference)


def test_affine_per_sample_parameters():
    x = torch.rand(3, 1, 17, 30, generator=seeded())
    angle = torch.tensor([0.0, 30.0, -75.0])
    translate = torch.tensor([[0.0, 0.0], [2.0, -3.0], [-1.0, 4.0]])
    scale = torch.tensor([1.0, 0.9, 1.2])
    shear = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-5.0, 8.0]])

    ours = affine(x, angle, translate, scale, shear, fill=0.0)
    for i in range(3):
        reference = TF.affine(
            x[i],
            angle=angle[i].item(),
            translate=translate[i].tolist(),
            scale=scale[i].item(),
            shear=shear[i].tolist(),
            interpolation=InterpolationMode.BILINEAR,
            fill=0.0,
        )
        torch.testing.assert_close(ours[i], reference, atol=1e-5, rtol=0)


def test_affine_positive_angle_turns_clockwise():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 4] = 1.0

    y = affine(x, angle=90.0, translate=(0, 0), scale=1.0, shear=0.0)

    assert y[0, 0, 4, 2].item() == pytest.approx(1.0, abs=1e-6)


def test_affine_keeps_dtype():
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=seeded())

    assert affine(x, 10.0, (1, 0), 1.0, 0.0).dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "affine: scale must be > 0 for every image, got 0.0."),
        ({"interpolation": "bicubic"}, "affine: interpolation must be 'nearest' or 'bilinear'"),
        ({"translate": (1.0, 2.0, 3.0)}, "affine: translate must be 2 numbers or a tensor of shape [N, 2], got (3,)."),
        ({"fill": (0.0, 1.0)}, "affine: fill has 2 values but the images have 3 channels"),
    ],
)
def test_affine_invalid_arguments(kwargs, message):
    arguments = {"angle": 0.0, "translate": (0.0, 0.0), "scale": 1.0, "shear": 0.0, **kwargs}

    with pytest.raises(ConfigError) as info:
        affine(torch.rand(2, 3, 8, 8), **arguments)
    assert str(info.value).startswith(message)


# RandomAffine.


def test_random_affine_per_image_parameters():
    x = torch.rand(1, 1, 28, 28, generator=seeded()).expand(6, 1, 28, 28)

    y = RandomAffine(20, translate=(0.15, 0.15), scale=(0.9, 1.1), shear=5)(x, generator=seeded(1))

    assert pairwise_different(y)


def test_random_affine_seed_reproduces():
    x = torch.rand(16, 1, 28, 28, generator=seeded())
    augment = RandomAffine(20, translate=(0.15, 0.15))

    first = augment(x, generator=seeded(7))
    second = augment(x, generator=seeded(7))
    other = augment(x, generator=seeded(8))

    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_random_affine_ignores_train_and_eval():
    x = torch.rand(4, 1, 28, 28, generator=seeded())
    augment = RandomAffine(20)

    training = augment.train()(x, generator=seeded(3))
    evaluating = augment.eval()(x, generator=seeded(3))

    assert torch.equal(training, evaluating)
    assert not torch.equal(evaluating, x)


def test_random_affine_parameter_ranges():
    x = torch.zeros(4000, 1, 20, 30)
    augment = RandomAffine((-10, 30), translate=(0.1, 0.2), scale=(0.8, 1.25), shear=(-5, 5, 10, 20))

    parameters = augment.sample_parameters(x, seeded())
    angle, translate, scale, shear = (parameters[name] for name in ("angle", "translate", "scale", "shear"))

    # Each drawn range is covered up to its ends, and nothing falls outside it.
    assert angle.min() >= -10
    assert angle.min() < -9
    assert angle.max() <= 30
    assert angle.max() > 29
    assert torch.equal(translate, translate.round())
    assert translate[:, 0].abs().max() == 3  # round(0.1 * 30)
    assert translate[:, 1].abs().max() == 4  # round(0.2 * 20)
    assert scale.min() >= 0.8
    assert scale.min() < 0.81
    assert scale.max() <= 1.25
    assert scale.max() > 1.24
    assert shear[:, 0].min() >= -5
    assert shear[:, 0].min() < -4.9
    assert shear[:, 0].max() <= 5
    assert shear[:, 0].max() > 4.9
    assert shear[:, 1].min() >= 10
    assert shear[:, 1].min() < 10.1
    assert shear[:, 1].max() <= 20
    assert shear[:, 1].max() > 19.9


@pytest.mark.parametrize(
    ("shear", "expected"),
    [(7, (-7.0, 7.0)), ((2, 9), (2.0, 9.0)), ((1, 2, 3, 4), (1.0, 2.0, 3.0, 4.0))],
)
def test_random_affine_shear_forms(shear, expected):
    assert RandomAffine(0, shear=shear).shear == expected


def test_random_affine_without_ranges_is_identity():
    x = torch.rand(3, 2, 9, 11, generator=seeded())

    y = RandomAffine(0)(x, generator=seeded())

    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


def test_random_affine_matches_fixed_parameters():
    x = torch.rand(5, 1, 28, 28, generator=seeded())
    augment = RandomAffine(25, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=(-8, 8, -4, 4), interpolation="nearest")

    parameters = augment.sample_parameters(x, seeded(4))
    expected = affine(x, **parameters, interpolation="nearest", fill=0.0)

    assert torch.equal(augment(x, generator=seeded(4)), expected)


def digit_images(count: int = 2000) -> torch.Tensor:
    """MNIST-like images: scikit-learn's 8x8 digits upscaled to 20x20 and centred on 28x28."""
    images = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)[:, None]
    images = F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    images = F.pad(images, (4, 4, 4, 4))
    return images.repeat(2, 1, 1, 1)[:count]


def test_random_affine_statistics_match_torchvision():
    x = digit_images()
    ours = RandomAffine(20, translate=(0.15, 0.15))(x, generator=seeded(1))
    torch.manual_seed(2)
    reference_transform = v2.RandomAffine(20, translate=(0.15, 0.15), interpolation=InterpolationMode.BILINEAR, fill=0)
    reference = torch.stack([reference_transform(image) for image in x])

    assert ours.mean().item() == pytest.approx(reference.mean().item(), rel=0.01)
    assert ours.std().item() == pytest.approx(reference.std().item(), rel=0.01)

    # The average image shows how far digits move; a narrower range is clearly farther off.
    def distance(images):
        return ((images.mean(0) - reference.mean(0)).abs().sum() / reference.mean(0).sum()).item()

    narrow = RandomAffine(10, translate=(0.05, 0.05))(x, generator=seeded(1))
    assert distance(ours) < 0.1
    assert distance(narrow) > 0.2


def test_random_affine_accepts_interpolation_mode():
    augment = RandomAffine(10, interpolation=InterpolationMode.NEAREST)

    assert augment.interpolation == "nearest"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resample": 2}, "RandomAffine: the keyword resample= was removed from torchvision's RandomAffine; "
         "pass interpolation='bilinear' or interpolation='nearest' instead."),
        ({"fillcolor": 0}, "RandomAffine: the keyword fillcolor= was removed from torchvision's RandomAffine; "
         "pass fill= instead."),
        ({"center": (3, 3)}, "RandomAffine got unexpected keyword arguments: center."),
    ],
)
def test_random_affine_removed_keywords(kwargs, message):
    with pytest.raises(TypeError) as info:
        RandomAffine(10, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"degrees": -5}, "RandomAffine: degrees must be a number >= 0 or a (min, max) pair, got -5."),
        ({"degrees": (10, -10)}, "RandomAffine: degrees must be a (min, max) pair with min <= max, got (10, -10)."),
        ({"degrees": 5, "translate": (1.5, 0.0)}, "RandomAffine: translate must be a pair (a, b) of fractions in [0, 1], got (1.5, 0.0)."),
        ({"degrees": 5, "translate": 0.1}, "RandomAffine: translate must be a pair (a, b) of fractions in [0, 1], got 0.1."),
        ({"degrees": 5, "scale": (0.0, 1.0)}, "RandomAffine: scale must be a (min, max) pair of positive factors, got (0.0, 1.0)."),
        ({"degrees": 5, "shear": (1, 2, 3)}, "RandomAffine: shear must be a number >= 0 or a sequence of 2 or 4 numbers, got (1, 2, 3)."),
        ({"degrees": 5, "interpolation": "bicubic"}, "RandomAffine: interpolation must be 'nearest' or 'bilinear' "
         "(or torchvision's InterpolationMode.NEAREST or BILINEAR), got 'bicubic'."),
        ({"degrees": 5, "fill": "black"}, "RandomAffine: fill must be a number or one number per channel, got 'black'."),
    ],
)
def test_random_affine_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        RandomAffine(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(28, 28), "RandomAffine: x must be a tensor of shape (N, C, H, W), got shape (28, 28)."),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "RandomAffine: x must be a floating-point tensor with values in [0, 1], got torch.uint8."),
    ],
)
def test_random_affine_invalid_input(x, message):
    with pytest.raises(ConfigError) as info:
        RandomAffine(10)(x)
    assert str(info.value) == message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_transforms_stay_on_device():
    x = torch.rand(8, 1, 28, 28, device="cuda")
    augment = Compose(
        [RandomAffine(20, translate=(0.1, 0.1)), RandomCrop(28, padding=2), RandomHorizontalFlip(), GaussianNoise(0.1)]
    )

    on_device = augment(x, generator=torch.Generator(device="cuda").manual_seed(0))
    from_cpu_generator = augment(x, generator=seeded(0))

    assert on_device.device == x.device
    assert from_cpu_generator.device == x.device
    assert torch.equal(from_cpu_generator, augment(x, generator=seeded(0)))


# RandomCrop.


def test_random_crop_padding_matches_torchvision():
    x = torch.rand(2, 3, 6, 5, generator=seeded())
    crop = RandomCrop((6 + 2 + 4, 5 + 1 + 3), padding=(1, 2, 3, 4), fill=(0.1, 0.2, 0.3))

    expected = TF.pad(x, [1, 2, 3, 4], fill=[0.1, 0.2, 0.3])

    torch.testing.assert_close(crop(x, generator=seeded()), expected)


@pytest.mark.parametrize(
    ("padding", "padded_size"),
    [(2, (10, 11)), ((1, 3), (12, 9)), ((1, 2, 3, 4), (12, 11)), ([2], (10, 11))],
)
def test_random_crop_padding_forms(padding, padded_size):
    x = torch.rand(1, 1, 6, 7, generator=seeded())
    crop = RandomCrop(padded_size, padding=padding)

    assert torch.equal(crop(x), TF.pad(x, list(padding) if isinstance(padding, (tuple, list)) else padding))


def test_random_crop_windows_follow_seeded_offsets():
    x = torch.arange(5 * 2 * 8 * 9, dtype=torch.float32).view(5, 2, 8, 9)
    crop = RandomCrop((5, 4), padding=1)

    y = crop(x, generator=seeded(3))

    generator = seeded(3)
    top = torch.randint(0, 10 - 5 + 1, (5,), generator=generator)
    left = torch.randint(0, 11 - 4 + 1, (5,), generator=generator)
    padded = F.pad(x, (1, 1, 1, 1))
    for i in range(5):
        assert torch.equal(y[i], padded[i, :, top[i] : top[i] + 5, left[i] : left[i] + 4])


def test_random_crop_per_image_offsets():
    x = torch.rand(1, 1, 28, 28, generator=seeded()).expand(6, 1, 28, 28)

    y = RandomCrop(28, padding=4)(x, generator=seeded(1))

    assert pairwise_different(y)
    assert y.shape == x.shape


def test_random_crop_without_padding_is_identity():
    x = torch.rand(3, 1, 8, 8, generator=seeded())

    assert torch.equal(RandomCrop(8)(x, generator=seeded()), x)


def test_random_crop_larger_than_padded_image():
    with pytest.raises(ConfigError) as info:
        RandomCrop(31, padding=1)(torch.rand(2, 1, 28, 28))
    assert str(info.value) == (
        "RandomCrop: size (31, 31) is larger than the padded image (30, 30); use a smaller size or more padding."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "RandomCrop: size must be a positive int or a (height, width) pair of positive ints, got 0."),
        ({"size": 8, "padding": -1}, "RandomCrop: padding must be an int >= 0 or a sequence of 1, 2 or 4 ints >= 0, got -1."),
        ({"size": 8, "padding": (1, 2, 3)}, "RandomCrop: padding must be an int >= 0 or a sequence of 1, 2 or 4 ints >= 0, got (1, 2, 3)."),
    ],
)
def test_random_crop_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        RandomCrop(**kwargs)
    assert str(info.value) == message


# Flips, noise, normalization.


@pytest.mark.parametrize(("p", "flipped"), [(0.0, False), (1.0, True)])
def test_flip_extreme_probabilities(p, flipped):
    x = torch.rand(4, 1, 5, 5, generator=seeded())

    y = RandomHorizontalFlip(p)(x, generator=seeded())

    assert torch.equal(y, x.flip(-1) if flipped else x)


def test_flip_per_image_with_probability_p():
    x = torch.rand(1, 1, 6, 6, generator=seeded()).expand(2000, 1, 6, 6)

    y = RandomHorizontalFlip(0.3)(x, generator=seeded(1))

    flipped = (y == x.flip(-1)).flatten(1).all(1)
    unchanged = (y == x).flatten(1).all(1)
    assert torch.all(flipped ^ unchanged)
    assert flipped.float().mean().item() == pytest.approx(0.3, abs=0.04)


def test_flip_invalid_probability():
    with pytest.raises(ConfigError, match=r"^RandomHorizontalFlip: p must be in \[0, 1\], got 1\.5\.$"):
        RandomHorizontalFlip(1.5)


def test_noise_standard_deviation():
    x = torch.full((200, 1, 28, 28), 0.5)

    noise = GaussianNoise(0.1)(x, generator=seeded()) - x

    assert noise.std().item() == pytest.approx(0.1, rel=0.02)
    assert noise.mean().abs().item() < 0.002


def test_noise_clip_and_seed():
    x = torch.rand(8, 1, 10, 10, generator=seeded())
    noise = GaussianNoise(0.5, clip=(0.0, 1.0))

    y = noise(x, generator=seeded(2))

    assert y.min().item() == 0.0
    assert y.max().item() == 1.0
    assert torch.equal(y, noise(x, generator=seeded(2)))
    assert torch.equal(GaussianNoise(0.0)(x), x)


def test_normalize_per_channel():
    x = torch.rand(2, 3, 4, 4, generator=seeded())

    y = Normalize((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))(x)

    expected = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, expected)


def test_normalize_single_number_for_all_channels():
    x = torch.rand(2, 3, 4, 4, generator=seeded())

    torch.testing.assert_close(Normalize(0.5, 0.25)(x), (x - 0.5) / 0.25)


def test_normalize_channel_mismatch_message():
    normalize = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    with pytest.raises(ConfigError) as info:
        normalize(torch.rand(2, 1, 28, 28))
    assert str(info.value) == "Normalize: mean has 3 channels but the images have 1 channel; pass one value per channel."


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        (0.5, 0.0, "Normalize: std must be > 0, got 0.0."),
        ((0.5, 0.5), (1.0, -1.0), "Normalize: std[1] must be > 0, got -1.0."),
        ((0.5, 0.5), (1.0, 1.0, 1.0), "Normalize: mean and std must have the same number of values, got 2 and 3."),
        ("0.5", 1.0, "Normalize: mean must be a number or one number per channel, got '0.5'."),
    ],
)
def test_normalize_invalid_arguments(mean, std, message):
    with pytest.raises(ConfigError) as info:
        Normalize(mean, std)
    assert str(info.value) == message


# Compose.


def test_compose_passes_generator():
    x = torch.rand(6, 1, 28, 28, generator=seeded())
    affine_transform = RandomAffine(15, translate=(0.1, 0.1))
    noise = GaussianNoise(0.05)
    composed = Compose([affine_transform, noise])

    generator = seeded(5)
    expected = noise(affine_transform(x, generator=generator), generator=generator)

    assert torch.equal(composed(x, generator=seeded(5)), expected)


def test_compose_calls_other_modules_without_generator():
    x = torch.rand(2, 1, 4, 4, generator=seeded())

    y = Compose([torch.nn.Identity(), Normalize(0.5, 0.5)])(x, generator=seeded())

    torch.testing.assert_close(y, (x - 0.5) / 0.5)


def test_compose_rejects_non_modules():
    with pytest.raises(ConfigError, match=r"^Compose: transforms\[0\] must be an nn.Module, got <function"):
        Compose([lambda x: x])


# Data-set checks and defaults.

FLIP_WARNING = (
    "RandomHorizontalFlip on the digit data set 'mnist' changes labels, because a mirrored 2 or 5 "
    "no longer looks like its label; remove the flip, or use default_augmentation('mnist', image_shape), "
    "a small random affine map."
)


def test_flip_on_digits_warns():
    with pytest.warns(AugmentationWarning) as record:
        check_transforms_for_dataset(RandomHorizontalFlip(), "mnist")

    assert len(record) == 1
    assert str(record[0].message) == FLIP_WARNING
    assert record[0].filename == __file__


@pytest.mark.parametrize("dataset", ["mnist", "mnist-5k", "digits", "MNIST", "emnist"])
def test_flip_inside_compose_warns(dataset):
    transform = Compose([RandomAffine(10), Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()])])

    with pytest.warns(AugmentationWarning, match="a mirrored 2 or 5 no longer looks like its label"):
        check_transforms_for_dataset(transform, dataset)


def test_torchvision_flip_warns():
    transform = v2.Compose([v2.RandomHorizontalFlip()])

    with pytest.warns(AugmentationWarning):
        check_transforms_for_dataset(transform, "mnist-5k")


@pytest.mark.parametrize(
    ("transform", "dataset"),
    [
        (RandomHorizontalFlip(), "fashion-mnist"),
        (RandomHorizontalFlip(), "moons"),
        (RandomAffine(20, translate=(0.15, 0.15)), "mnist"),
    ],
)
def test_no_warning_when_labels_survive(transform, dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_transforms_for_dataset(transform, dataset)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mnist", True), ("mnist-5k", True), ("digits", True), ("kmnist", True), ("fashion-mnist", False), ("moons", False)],
)
def test_is_digit_dataset(name, expected):
    assert is_digit_dataset(name) is expected


@pytest.mark.parametrize("dataset", ["mnist", "mnist-5k", "digits"])
def test_default_augmentation_for_digits(dataset):
    augmentation = default_augmentation(dataset, (1, 28, 28))

    assert isinstance(augmentation, RandomAffine)
    assert augmentation.degrees == (-20.0, 20.0)
    assert augmentation.translate == (0.15, 0.15)
    assert augmentation.scale is None
    assert augmentation.shear is None
    assert augmentation.interpolation == "bilinear"
    assert augmentation.fill == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_transforms_for_dataset(augmentation, dataset)


def test_default_augmentation_for_clothing():
    augmentation = default_augmentation("fashion-mnist", (1, 28, 28))

    assert isinstance(augmentation, Compose)
    crop, flip = augmentation.transforms
    assert isinstance(crop, RandomCrop)
    assert crop.size == (28, 28)
    assert crop.padding == (2, 2, 2, 2)
    assert isinstance(flip, RandomHorizontalFlip)
    assert flip.p == 0.5
    x = torch.rand(4, 1, 28, 28, generator=seeded())
    assert augmentation(x, generator=seeded()).shape == x.shape


def test_default_augmentation_non_square_crop():
    crop = default_augmentation("fashion-mnist", (3, 20, 30)).transforms[0]

    assert crop.size == (20, 30)


def test_default_augmentation_unknown_dataset():
    with pytest.raises(ConfigError) as info:
        default_augmentation("cifar10", (3, 32, 32))
    assert str(info.value) == (
        "default_augmentation: dataset_name must be one of 'digits', 'fashion-mnist', 'mnist', 'mnist-5k', "
        "got 'cifar10'; for other data, build a transform from RandomAffine, RandomCrop, "
        "RandomHorizontalFlip and GaussianNoise."
    )


def test_default_augmentation_rejects_flat_shape():
    message = "default_augmentation: image_shape must be (C, H, W) or (H, W) of positive ints, got (784,)."

    with pytest.raises(ConfigError) as info:
        default_augmentation("mnist", (784,))
    assert str(info.value) == message
