"""Domain errors raised by engine code; the API maps each to one HTTP status."""

from __future__ import annotations


class ZhikuError(Exception):
    """Base of every error zhiku raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(ZhikuError):
    """Settings are invalid or name something that does not exist."""

    code = "config_error"


class NotFound(ZhikuError):
    """A collection, document or job does not exist."""

    code = "not_found"


class AlreadyExists(ZhikuError):
    """Creating something that is already there."""

    code = "already_exists"


class VersionRetired(ZhikuError):
    """A write reached a collection version a re-index has switched away from.

    Raised when the write takes the version's writer lock, before it writes
    anything: the caller writes again through the live version
    (`KnowledgeBase.live()`), which the knowledge base's own methods do.
    """

    code = "version_retired"
    retry_after_s = 1.0


class InvalidRequest(ZhikuError):
    """The caller asked for something malformed (bad filter, bad mode...)."""

    code = "invalid_request"


class ManifestMismatch(ZhikuError):
    """A collection was built with another embedding model or tokenizer."""

    code = "manifest_mismatch"


class StoreLocked(ZhikuError):
    """Embedded data is in use by another process."""

    code = "store_locked"


class ModelUnavailable(ZhikuError):
    """A model's files are missing or could not be loaded."""

    code = "model_unavailable"


class Overloaded(ZhikuError):
    """Too much work is queued; try again later."""

    code = "overloaded"

    def __init__(self, message: str, retry_after_s: float = 1.0, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after_s = retry_after_s
