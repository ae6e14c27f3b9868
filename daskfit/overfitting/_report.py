"""The report :func:`~daskfit.overfitting.diagnose` returns: data, figures, HTML."""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ._plot import figure, png_base64
from ._verdict import RULE

__all__ = ["DiagnosisReport"]


def _plain(value):
    """NumPy and non-finite floats to JSON-safe Python (NaN and inf become None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


# A result: read, not built by users; its fields are its documented Attributes
# (numpydoc's PR01 would want them as constructor Parameters).
@dataclass
class DiagnosisReport:  # numpydoc ignore=PR01
    """Train/validation scores, curves, a verdict with its rule, and a recommendation.

    Attributes
    ----------
    estimator : str
        The diagnosed estimator, as its ``repr``.
    n_samples : int
        Rows of the data.
    verdict : {"overfitting", "underfitting", "fine"}
    rule : str
        The rule that produced the verdict, with this run's numbers.
    recommended : dict
        ``{"param_name": str, "value": float, "validation_score": float}``:
        the value on the validation curve with the best mean validation score
        (ties go to the stronger regularisation).
    recommended_estimator : estimator
        Unfitted, with the recommended value set (a ``Ridge`` for a
        ``LinearRegression``; see ``notes``).
    score_name : str
        The score used (``"r2"`` for ``scoring=None`` on a regressor, ...).
    folds : dict
        ``train``, ``validation``, ``gap`` (arrays of shape (n_splits,)) and
        ``train_size`` / ``validation_size`` (rows per fold).
    baseline : dict
        The constant model (``"mean"`` or ``"prior"``) and its mean validation score.
    learning_curve : dict
        ``train_sizes`` (n_sizes,), ``train_scores`` / ``validation_scores``
        (n_sizes, n_splits).
    validation_curve : dict
        ``estimator``, ``param_name``, ``param_range`` (n_values,, ascending),
        ``direction`` (+1: larger is stronger, -1: weaker, 0: unknown),
        ``current``, ``train_scores`` / ``validation_scores`` (n_values, n_splits).
    numbers : dict
        The quantities the rule compares (means, range, gap, changes).
    notes : list of str
    general_rule : str
        The rule in words, without numbers (``daskfit.overfitting.RULE``).

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> import daskfit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, 2.0, 0.0] + rng.normal(size=200)
    >>> report = daskfit.overfitting.diagnose(daskfit.Ridge(), X, y, train_sizes=(0.5, 1.0))
    >>> report.verdict, sorted(report.recommended)
    ('fine', ['param_name', 'validation_score', 'value'])
    >>> json.loads(json.dumps(report.to_dict()))["learning_curve"]["train_sizes"]
    [80, 160]
    >>> len(report.plot().axes)
    3
    """

    estimator: str
    score_name: str
    verdict: str
    rule: str
    recommended: dict
    folds: dict
    baseline: dict
    learning_curve: dict
    validation_curve: dict
    numbers: dict
    n_samples: int
    notes: list = field(default_factory=list)
    recommended_estimator: object = None
    _png_cache: str | None = field(default=None, init=False, repr=False, compare=False)

    general_rule = RULE

    # ------------------------------------------------------------ data
    def to_dict(self):
        """Everything but the estimator object, as JSON-serialisable Python values.

        NumPy arrays become lists and non-finite floats ``None``, so that
        ``json.dumps(report.to_dict(), allow_nan=False)`` works.
        """
        out = {
            "estimator": self.estimator,
            "score_name": self.score_name,
            "verdict": self.verdict,
            "rule": self.rule,
            "general_rule": self.general_rule,
            "recommended": self.recommended,
            "recommended_estimator": repr(self.recommended_estimator),
            "n_samples": self.n_samples,
            "folds": self.folds,
            "baseline": self.baseline,
            "learning_curve": self.learning_curve,
            "validation_curve": self.validation_curve,
            "numbers": self.numbers,
            "notes": self.notes,
        }
        return _plain(out)

    def to_json(self, **kwargs):
        """``json.dumps`` of :meth:`to_dict` (strict JSON: no NaN).

        Parameters
        ----------
        **kwargs
            Passed to ``json.dumps`` (``indent=2``, ``sort_keys=True``).

        Returns
        -------
        str
        """
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    # ------------------------------------------------------------ figures
    def plot(self):
        """A matplotlib Figure: per-fold scores, learning curve, validation curve.

        Made without pyplot (nothing is shown or left open); in Jupyter it
        displays as the value of a cell, elsewhere ``fig.savefig(path)``.
        """
        return figure(self)

    # ------------------------------------------------------------ HTML
    def _html_body(self):
        rec = self.recommended
        rows = "".join(
            f"<tr><td>{i}</td><td>{tr:.4g}</td><td>{va:.4g}</td><td>{gap:.4g}</td></tr>"
            for i, (tr, va, gap) in enumerate(zip(self.folds["train"], self.folds["validation"],
                                                 self.folds["gap"])))
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        colour = {"overfitting": "#d62728", "underfitting": "#ff7f0e"}.get(self.verdict,
                                                                            "#2ca02c")
        return (
            f"<div class='daskfit-diagnosis'>"
            f"<h3>Overfitting diagnosis: {html.escape(self.estimator)}</h3>"
            f"<p><b style='color:{colour}'>{html.escape(self.verdict)}</b> &mdash; "
            f"{html.escape(self.rule)}</p>"
            f"<p>Recommended: <code>{html.escape(str(rec['param_name']))}="
            f"{rec['value']:.4g}</code> (mean validation {html.escape(self.score_name)} "
            f"{rec['validation_score']:.4g}): "
            f"<code>{html.escape(repr(self.recommended_estimator))}</code></p>"
            f"<table><tr><th>fold</th><th>train</th><th>validation</th><th>gap</th></tr>"
            f"{rows}</table>"
            f"<p>Constant model ({html.escape(self.baseline['strategy'])}): mean validation "
            f"{html.escape(self.score_name)} {self.baseline['validation_score']:.4g}. "
            f"{self.n_samples} rows, {len(self.folds['train'])} folds.</p>"
            f"{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<img alt='learning and validation curves' "
            f"src='data:image/png;base64,{self._png()}'/>"
            f"<p><small>Rule: {html.escape(self.general_rule)}.</small></p></div>")

    def _png(self):
        """The figure as base64 PNG, drawn once per report (HTML and Jupyter reuse it)."""
        if self._png_cache is None:
            self._png_cache = png_base64(self.plot())
        return self._png_cache

    def _repr_html_(self):
        return self._html_body()

    def to_html(self, path):
        """Write a self-contained HTML page (figures embedded as base64 PNG).

        The page is written to a temporary file in the same directory and
        moved into place with ``os.replace``: readers see the old page or the
        new one, never half a page, and a failure leaves no temporary file.

        Parameters
        ----------
        path : str or path-like
            The file to write (its directory must exist).

        Returns
        -------
        path : str
        """
        path = os.fspath(path)
        page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<title>Overfitting diagnosis: {html.escape(self.estimator)}</title></head>"
                f"<body>{self._html_body()}</body></html>")
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(page)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the page from other readers
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return path

    def __repr__(self):
        rec = self.recommended
        return (f"DiagnosisReport(verdict={self.verdict!r}, score={self.score_name!r}, "
                f"mean_train={self.numbers['mean_train_score']:.4g}, "
                f"mean_validation={self.numbers['mean_validation_score']:.4g}, "
                f"recommended={{{rec['param_name']!r}: {rec['value']:.4g}}})")
