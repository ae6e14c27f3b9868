"""Matplotlib figures of a report (no pyplot: safe headless and in Jupyter).

Figures are made with :class:`matplotlib.figure.Figure` directly, so library
code never touches pyplot's global state or the display: nothing pops up,
nothing is left open, and any backend (Agg included) can save them.
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np

__all__ = ["figure", "png_base64"]

TRAIN_COLOUR, VALIDATION_COLOUR, BASELINE_COLOUR = "#1f77b4", "#d62728", "#7f7f7f"


def _band(ax, x, scores, colour, label):
    mean, std = scores.mean(axis=1), scores.std(axis=1)
    ax.plot(x, mean, "o-", color=colour, label=label)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15)


@functools.cache
def _figure_class():
    from matplotlib.figure import Figure

    class ReportFigure(Figure):
        """A Figure that Jupyter displays as PNG with or without pyplot's inline backend."""

        def _repr_png_(self):
            return base64.b64decode(png_base64(self))

    return ReportFigure


def figure(report):
    """A Figure with three panels: per-fold scores, learning curve, validation curve."""
    fig = _figure_class()(figsize=(15, 4.2), layout="constrained")
    ax_folds, ax_learn, ax_valid = fig.subplots(1, 3)
    name = report.score_name
    baseline = report.baseline["validation_score"]

    k = np.arange(len(report.folds["train"]))
    ax_folds.bar(k - 0.2, report.folds["train"], 0.4, color=TRAIN_COLOUR, label="train")
    ax_folds.bar(k + 0.2, report.folds["validation"], 0.4, color=VALIDATION_COLOUR,
                 label="validation")
    ax_folds.axhline(baseline, color=BASELINE_COLOUR, ls="--", label="constant model")
    ax_folds.set_xticks(k, [str(i) for i in k])
    ax_folds.set(xlabel="fold", ylabel=name, title=f"Per fold: {report.verdict}")
    ax_folds.legend(loc="lower right", fontsize="small", framealpha=0.9)

    lc = report.learning_curve
    sizes = np.asarray(lc["train_sizes"])
    _band(ax_learn, sizes, np.asarray(lc["train_scores"]), TRAIN_COLOUR, "train")
    _band(ax_learn, sizes, np.asarray(lc["validation_scores"]), VALIDATION_COLOUR, "validation")
    ax_learn.axhline(baseline, color=BASELINE_COLOUR, ls="--", label="constant model")
    ax_learn.set(xlabel="training rows", ylabel=name, title="Learning curve")
    ax_learn.legend(loc="best", fontsize="small")

    vc = report.validation_curve
    values = np.asarray(vc["param_range"])
    _band(ax_valid, values, np.asarray(vc["train_scores"]), TRAIN_COLOUR, "train")
    _band(ax_valid, values, np.asarray(vc["validation_scores"]), VALIDATION_COLOUR,
          "validation")
    ax_valid.axhline(baseline, color=BASELINE_COLOUR, ls="--", label="constant model")
    ax_valid.axvline(report.recommended["value"], color="k", ls=":",
                     label=f"recommended {vc['param_name']}")
    if np.all(values > 0):
        ax_valid.set_xscale("log")
    stronger = {1: " (stronger to the right)", -1: " (stronger to the left)"}.get(
        vc["direction"], "")
    ax_valid.set(xlabel=f"{vc['param_name']}{stronger}", ylabel=name,
                 title=f"Validation curve ({vc['estimator']})")
    ax_valid.legend(loc="best", fontsize="small")
    # Scores of wildly overfitted models can be very negative: keep the view
    # on the range from the constant model to the best train score.
    for ax in (ax_folds, ax_learn, ax_valid):
        low, high = ax.get_ylim()
        floor = baseline - 0.5 * max(abs(report.numbers["score_range"]), 1e-12)
        if low < floor:
            ax.set_ylim(floor, high)
    return fig


def png_base64(fig, dpi=80):
    """The figure as a base64-encoded PNG (Agg canvas: works without a display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
