"""The ``daskfit`` command line: ``run``, ``check``, ``schema``, ``predict``, ``make-data``,
``plan``.

Modules: ``_exit`` (exit codes), ``_config`` (the TOML schema, checked key by
key), ``_validate`` (every problem of a file at once, with its line: ``_toml_lines``),
``_overrides`` (``DASKFIT_*`` and ``--set``), ``_schema`` (the JSON Schema), ``_input`` (finding, fingerprinting and reading data), ``_run`` (the
pipeline and its run directory), ``_predict`` (batch scoring and planning),
``_make_data`` (synthetic data with known coefficients), ``_main`` (click).
"""

from ._exit import (BAD_CONFIG, BAD_DATA, CLUSTER_UNREACHABLE, ENVIRONMENT, EXIT_CODES,
                    INTERNAL_ERROR, INTERRUPTED, MISSING_INPUT, OK, TERMINATED)
from ._main import cli, main
from ._make_data import export_sklearn_dataset, make_data

__all__ = ["BAD_CONFIG", "BAD_DATA", "CLUSTER_UNREACHABLE", "ENVIRONMENT", "EXIT_CODES",
           "INTERNAL_ERROR", "INTERRUPTED", "MISSING_INPUT", "OK", "TERMINATED", "cli", "export_sklearn_dataset", "main", "make_data"]
