"""What a fit cost, read from the objective's engine (rows or columns alike)."""

from __future__ import annotations

__all__ = ["EngineCosts"]


class EngineCosts:
    """``passes``, ``bytes_communicated``, ``persist_reason``, ``persisted`` and ``pass_log`` of ``self.engine``."""

    @property
    def passes(self):
        """Passes over the data so far, the first (validating) one included."""
        return self.engine.passes

    @property
    def bytes_communicated(self):
        """Estimated bytes sent between client and workers so far."""
        return self.engine.bytes_communicated

    @property
    def persist_reason(self):
        """Why the data was (or was not) read into cluster memory once."""
        return self.engine.persist_reason

    @property
    def pass_log(self):
        """One entry per pass: its label first, its seconds last."""
        return self.engine.pass_log

    @property
    def persisted(self):
        """Whether the data was read into cluster memory once (else streamed every pass)."""
        engine = self.engine
        return bool(engine.persisted) if hasattr(engine, "persisted") else not engine.streaming
