"""Settings of the LLM chains; the class lives in engine/settings.py as `Settings.ask`."""

from __future__ import annotations

from zhiku.engine.settings import AskSettings

__all__ = ["AskSettings"]
