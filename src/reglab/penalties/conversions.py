r"""Conversions from other libraries' and textbooks' L2 factors to reglab's strength.

reglab's :class:`~reglab.penalties.L2` with strength :math:`\lambda` adds
:math:`\frac{\lambda}{2} \sum w^2` to the mean minibatch loss, as
``torch.optim.SGD(weight_decay=λ)`` does. Other conventions differ by a factor of 2, by the
number of samples, or both:

* PyTorch ``SGD(weight_decay=d)`` adds ``d·w`` to the gradient: strength ``d``.
* Keras ``regularizers.L2(l2)`` adds ``l2 · Σ w²`` to the mean loss: strength ``2·l2``
  (:func:`from_keras_l2`).
* scikit-learn ``MLPClassifier(alpha=a)`` adds ``a / (2·n_batch) · Σ w²`` to the mean loss
  of a batch: strength ``a / n_batch`` (:func:`from_sklearn_alpha`).
* A textbook cost ``C0 + λ/(2n) · Σ w²``, with ``C0`` the mean loss over ``n`` training
  samples: strength ``λ/n``. For ``C0 + λ/n · Σ w²``: strength ``2·λ/n``
  (:func:`from_textbook`).

L1 factors need no conversion: Keras's ``regularizers.L1(l1)`` adds ``l1 · Σ|w|``, which is
``L1(l1)``.
"""

from __future__ import annotations

from reglab._validation import check_int, check_non_negative
from reglab.errors import ConfigError


def from_keras_l2(l2: float) -> float:
    r"""Convert the factor of Keras's ``regularizers.L2(l2)`` to an ``L2`` strength.

    Keras adds :math:`l_2 \sum w^2` to the loss, with no :math:`\frac{1}{2}`, so the same
    term is ``L2(2 * l2)``. Keras's ``L1L2(l1, l2)`` is ``ElasticNet(l1, 2 * l2)``.

    Args:
        l2: the Keras factor, 0 or more.

    Returns:
        The reglab strength ``2 * l2``.

    Example::

        >>> from_keras_l2(0.01)
        0.02
    """
    return 2.0 * check_non_negative("from_keras_l2", "l2", l2)


def from_sklearn_alpha(alpha: float, batch_size: int) -> float:
    r"""Convert scikit-learn's MLP ``alpha`` to an :class:`~reglab.penalties.L2` strength.

    ``MLPClassifier`` and ``MLPRegressor`` add :math:`\frac{\alpha}{2 n} \sum w^2` to the
    mean loss of each batch of :math:`n` samples (scikit-learn 1.9,
    ``BaseMultilayerPerceptron._backprop``), penalizing the weights but not the intercepts.
    The matching strength is :math:`\alpha / n`, which is reglab's default
    ``params="weights"``. With the ``lbfgs`` solver the batch is the whole training set.
    With sample weights, scikit-learn divides by their sum instead of :math:`n`.

    NOTE: the last batch of an epoch can be smaller. scikit-learn then penalizes it more,
    while the converted strength stays the same for every batch.

    Args:
        alpha: scikit-learn's ``alpha``, 0 or more.
        batch_size: the number of samples per batch, 1 or more.

    Returns:
        The reglab strength ``alpha / batch_size``.

    Example::

        >>> from_sklearn_alpha(1e-4, batch_size=200)
        5e-07
    """
    owner = "from_sklearn_alpha"
    alpha = check_non_negative(owner, "alpha", alpha)
    batch_size = check_int(owner, "batch_size", batch_size, minimum=1)
    return alpha / batch_size


def from_textbook(lam: float, n: int, half: bool = True) -> float:
    r"""Convert the :math:`\lambda` of a textbook L2 cost function to an ``L2`` strength.

    Textbooks often write the regularized cost over a training set of :math:`n` samples as
    :math:`C = C_0 + \frac{\lambda}{2n} \sum w^2` (``half=True``) or
    :math:`C = C_0 + \frac{\lambda}{n} \sum w^2` (``half=False``), where :math:`C_0` is
    the mean loss over the training set. The mean minibatch loss estimates :math:`C_0`, so
    the strength is :math:`\lambda / n` or :math:`2\lambda / n`.

    Args:
        lam: the textbook :math:`\lambda`, 0 or more.
        n: the number of training samples, 1 or more.
        half: whether the cost has the factor :math:`\frac{1}{2}`.

    Returns:
        The reglab strength.

    Example::

        >>> from_textbook(5.0, n=50_000)
        0.0001
        >>> from_textbook(5.0, n=50_000, half=False)
        0.0002
    """
    owner = "from_textbook"
    lam = check_non_negative(owner, "lam", lam)
    n = check_int(owner, "n", n, minimum=1)
    if not isinstance(half, bool):
        raise ConfigError(f"{owner}: half must be True or False, got {half!r}.")
    return lam / n if half else 2.0 * lam / n
