"""The plain ``torch.nn`` models of the paper's experiments.

They are ordinary modules: hypernetworks generate their parameters by name, and
``functional_forward`` runs them with those external weights.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

__all__ = ["wine_logreg", "mnist_mlp", "cifar_cnn", "MODELS"]


def wine_logreg() -> nn.Module:
    """Logistic regression 13 -> 3 for Wine (section 4.1)."""
    return nn.Sequential(OrderedDict(fc=nn.Linear(13, 3)))


def mnist_mlp(hidden: int = 50) -> nn.Module:
    """The MNIST multilayer perceptron 784-50-10 with ReLU (section 4.2)."""
    return nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            fc1=nn.Linear(784, hidden),
            relu=nn.ReLU(),
            fc2=nn.Linear(hidden, 10),
        )
    )


def cifar_cnn(width: float = 1.0) -> nn.Module:
    """The CIFAR-10 network of the authors' code (see the reproduction notes), optionally narrower.

    3x3 convolutions with padding 1: 3->48, 48->96, max-pool 2, 96->192, 192->256,
    max-pool 2, then fully connected 16384->512->64->10, ReLU throughout; no batch norm,
    no dropout. Input (N, 3, 32, 32), output logits (N, 10).

    Args:
        width: multiplies every channel count and hidden width (rounded, at least 1); 1.0 is
            the paper's network (9,074,218 parameters), 0.25 a network that 2 CPU cores
            train in seconds per epoch on 5,000 images (567,730 parameters).

    Raises:
        ValueError: ``width`` is not a positive finite number.
    """
    if not (isinstance(width, (int, float)) and 0 < width < float("inf")):
        raise ValueError(f"width must be a positive number (1.0 is the paper's network), got {width!r}")

    def w(n: int) -> int:
        return max(1, round(n * width))

    c1, c2, c3, c4, h1, h2 = w(48), w(96), w(192), w(256), w(512), w(64)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, c1, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(c1, c2, 3, padding=1),
            relu2=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv3=nn.Conv2d(c2, c3, 3, padding=1),
            relu3=nn.ReLU(),
            conv4=nn.Conv2d(c3, c4, 3, padding=1),
            relu4=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(c4 * 8 * 8, h1),
            relu5=nn.ReLU(),
            fc2=nn.Linear(h1, h2),
            relu6=nn.ReLU(),
            fc3=nn.Linear(h2, 10),
        )
    )


MODELS = {"wine": wine_logreg, "mnist": mnist_mlp, "cifar10": cifar_cnn}
