"""The method diagram: a figure of boxes and arrows with the labels the chapters refer to."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from varhyper_mini import plots  # noqa: E402


def test_method_diagram_names_both_algorithms_and_their_steps():
    fig = plots.plot_method_diagram()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for label in (
        "Algorithm 1",
        "Algorithm 2",
        "hypernetwork G(λ)",
        "log λ uniform",
        "w = μ + σ ⊙ ε",
        "λ·KL / N",
        "|μ|/σ (17)",
        "|w| (18)",
        "validation NLL",
        "mean weights",
    ):
        assert label in text, f"the diagram lost the label {label!r}"
    # Ten boxes, eight arrows between neighbours, the update loop and the link between the algorithms.
    patches = fig.axes[0].patches
    assert sum(type(p).__name__ == "FancyBboxPatch" for p in patches) == 10
    assert sum(type(p).__name__ == "FancyArrowPatch" for p in patches) == 10
    plt.close(fig)
