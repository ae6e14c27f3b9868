"""The errors daskfit raises on purpose, by type.

Callers (the ``daskfit`` command above all) decide what to do from an
error's type and attributes, never from its text: messages are for people
and may be reworded. Every class also derives from the built-in exception
scikit-learn and existing code expect (``ValueError`` for a bad parameter
or bad data, ``ConnectionError`` for an unreachable cluster), so
``except ValueError`` and ``pytest.raises(ValueError)`` keep working.

- :class:`ParameterError` (a ``ValueError``): an estimator's or a function's
  parameter is invalid; ``.parameter`` names it, ``.value`` holds it.
- :class:`ConfigError` (a ``ValueError``): a setting outside the estimators
  (cluster connection, TLS, memory limit, durations); ``.setting`` names it.
- :class:`DataError` (a ``ValueError``): the data is unusable (NaN,
  misaligned chunks, labels).
- :class:`CheckpointMismatch`, :class:`CheckpointCorrupt` (both a
  :class:`CheckpointError`, a ``ValueError``): a checkpoint written for other
  data or settings, or one that fails its checksum.
- :class:`ClusterUnreachable` (a ``ConnectionError``): the scheduler cannot be
  reached within the timeout; :class:`SchedulerUnresponsive`, one of them: it
  stopped answering during a fit.

This module imports nothing of daskfit: every layer may raise these.
"""

from __future__ import annotations

__all__ = ["CheckpointCorrupt", "CheckpointError", "CheckpointMismatch", "ClusterUnreachable",
           "ConfigError", "DaskfitError", "DataError", "ParameterError",
           "SchedulerUnresponsive"]

#: ``ParameterError.value`` when the raiser did not say (``None`` is a valid value).
UNKNOWN = object()


class DaskfitError(Exception):
    """Base class of the errors daskfit raises on purpose."""


class ParameterError(DaskfitError, ValueError):
    """An invalid parameter; the message names it, the expectation and the value.

    Parameters
    ----------
    message : str
        For people: what was expected and what was given.
    parameter : str
        The parameter's name, as the caller spells it (``"tol"``,
        ``"checkpoint"``).
    value : object, optional
        The rejected value.

    Examples
    --------
    >>> from daskfit import Ridge
    >>> from daskfit.errors import ParameterError
    >>> try:
    ...     Ridge(alpha=-1.0).fit([[0.0], [1.0]], [0.0, 1.0])
    ... except ParameterError as exc:
    ...     print(exc.parameter, exc.value)
    alpha -1.0
    """

    def __init__(self, message, *, parameter, value=UNKNOWN):
        super().__init__(message)
        self.parameter = parameter
        self.value = value

    def __reduce__(self):
        # Keyword-only arguments do not survive the default pickling (errors
        # raised on a worker travel back to the client pickled).
        return (_rebuild_parameter_error, (type(self), str(self), self.parameter, self.value))


def _rebuild_parameter_error(cls, message, parameter, value):
    return cls(message, parameter=parameter, value=value)


class ConfigError(DaskfitError, ValueError):
    """An invalid setting outside an estimator's parameters.

    Parameters
    ----------
    message : str
        For people: what was expected and what was given.
    setting : str, optional
        Names the setting (``"memory_limit"``, ``"security"``, ``"timeout"``)
        when one setting is to blame, else ``None``.
    """

    def __init__(self, message, *, setting=None):
        super().__init__(message)
        self.setting = setting

    def __reduce__(self):
        return (_rebuild_config_error, (type(self), str(self), self.setting))


def _rebuild_config_error(cls, message, setting):
    return cls(message, setting=setting)


class DataError(DaskfitError, ValueError):
    """Bad input found inside a data pass (NaN, misaligned chunks, labels, ...)."""


class CheckpointError(DaskfitError, ValueError):
    """A checkpoint that must not be resumed from."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint exists but was written for other data or another configuration."""


class CheckpointCorrupt(CheckpointError):
    """A checkpoint's coefficients do not match the checksum written with them."""


class ClusterUnreachable(DaskfitError, ConnectionError):
    """The scheduler could not be reached (or refused us) within the timeout."""


class SchedulerUnresponsive(ClusterUnreachable):
    """The scheduler stopped answering while a fit waited for it."""
