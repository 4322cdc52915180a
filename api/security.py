"""API keys: created by `zhiku keys create`, stored hashed, checked in constant time.

A key is `zk_` + 32 random bytes (urlsafe base64). Only its sha256 is kept, in
`<data_dir>/keys.json`, written atomically. Each key carries one scope
(read < write < admin) and the collections it may touch (`*` = all).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from zhiku.api.errors import Forbidden, Unauthorized
from zhiku.api.schemas.stored import SCOPE_RANK, ApiKeyRecord, KeyFile, Scope
from zhiku.engine.errors import ConfigError, NotFound

KEY_PREFIX = "zk_"
KEYS_FILE = "keys.json"
# The id shown in listings: the first characters of the hash, never the secret.
_ID_LEN = 12


def hash_token(token: str) -> str:
    """sha256 hex of a presented or new token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scope_allows(granted: Scope, needed: Scope) -> bool:
    """Whether a key with scope `granted` may do something needing `needed`."""
    return SCOPE_RANK[granted] >= SCOPE_RANK[needed]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, has_keys: bool) -> str | None:
    """Refuse to serve without keys on a non-loopback address; else a notice or None."""
    if has_keys:
        return None
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host!r} with no API keys configured; create one with "
            "`zhiku keys create --collection C --scope read` or bind 127.0.0.1",
            host=host,
        )
    return (
        f"no API keys configured: serving on loopback ({host}) only, without authentication"
    )


class KeyStore:
    """The key file of one data directory; reloaded when it changes on disk."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / KEYS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[ApiKeyRecord] = []

    # -- reading -------------------------------------------------------------
    def _load(self) -> list[ApiKeyRecord]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, []
            return self._keys
        # os.replace gives a new inode, so a rewrite is seen even within one mtime tick.
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = KeyFile.model_validate_json(self.path.read_bytes())
            except ValueError as exc:
                raise ConfigError(f"unreadable key file {self.path}: {exc}") from exc
            self._stamp, self._keys = stamp, list(data.keys)
        return self._keys

    def records(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included."""
        with self._lock:
            return list(self._load())

    def active(self) -> list[ApiKeyRecord]:
        """Keys that still work."""
        return [k for k in self.records() if not k.revoked]

    @property
    def enabled(self) -> bool:
        """Authentication is on as soon as one active key exists."""
        return bool(self.active())

    def verify(self, token: str) -> ApiKeyRecord | None:
        """The active key matching `token`, compared in constant time, or None."""
        presented = hash_token(token)
        found: ApiKeyRecord | None = None
        # Compare against every key so timing does not reveal which one matched.
        for record in self.active():
            if hmac.compare_digest(presented, record.hash):
                found = record
        return found

    # -- writing -------------------------------------------------------------
    def _save(self, keys: list[ApiKeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = KeyFile(keys=keys).model_dump_json(indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create(
        self, collections: list[str], scope: Scope, name: str = ""
    ) -> tuple[str, ApiKeyRecord]:
        """Make a new key; returns the secret (shown once) and its record."""
        if not collections:
            raise ConfigError("a key needs at least one collection (or '*')")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token)
        record = ApiKeyRecord(
            id=digest[:_ID_LEN],
            hash=digest,
            name=name,
            scope=scope,
            collections=sorted(set(collections)),
            created_at=datetime.now(timezone.utc),
        )
        with self._lock:
            keys = list(self._load())
            keys.append(record)
            self._save(keys)
            self._stamp = None
        return token, record

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Mark a key revoked (kept for the audit trail)."""
        with self._lock:
            keys = list(self._load())
            for i, record in enumerate(keys):
                if record.id == key_id:
                    keys[i] = record.model_copy(update={"revoked": True})
                    self._save(keys)
                    self._stamp = None
                    return keys[i]
        raise NotFound(f"no API key with id {key_id!r}", key_id=key_id)


def key_to_json(record: ApiKeyRecord) -> str:
    """One key as JSON without its hash (for `zhiku keys list --json`)."""
    return json.dumps(record.model_dump(mode="json", exclude={"hash"}))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's scope and collections, or the open (no keys) mode."""

    key_id: str | None
    scope: Scope
    collections: tuple[str, ...]

    @classmethod
    def of(cls, record: ApiKeyRecord) -> "Principal":
        return cls(record.id, record.scope, tuple(record.collections))

    def can(self, collection: str, needed: Scope) -> bool:
        """Whether this caller may do a `needed`-scope action on `collection`."""
        in_reach = "*" in self.collections or collection in self.collections
        return in_reach and scope_allows(self.scope, needed)

    def authorize(self, collection: str, needed: Scope) -> None:
        """Forbidden unless `can`; the message never lists other collections."""
        if not self.can(collection, needed):
            raise Forbidden(
                f"this key may not {needed} collection {collection!r}",
                collection=collection,
                needed=needed,
            )

    def visible(self, names: list[str]) -> list[str]:
        """The collections this caller can read."""
        return [n for n in names if self.can(n, "read")]


OPEN_ACCESS = Principal(None, "admin", ("*",))


def network_peer(client: tuple[str, int] | None) -> str | None:
    """The peer's IP address, or None for transports with no network peer (unix socket, in-process tests)."""
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(client[0].strip("[]")))
    except ValueError:
        return None


class Auth:
    """How this server authenticates, decided at start: open (loopback, no keys) or keyed.

    Keyed as soon as the key file holds any record, revoked ones included.
    The mode only ever moves from open to keyed (a key created while serving
    turns authentication on), never back: revoking every key or deleting
    keys.json leaves a keyed server refusing everyone with 401. An open server
    also refuses any network peer that is not loopback, so serving it on
    another address (uvicorn --host) does not open it.
    """

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._keyed = bool(keys.records())

    @property
    def keyed(self) -> bool:
        if not self._keyed and self.keys.records():
            self._keyed = True
        return self._keyed

    def principal(self, token: str | None, client: tuple[str, int] | None) -> Principal:
        """The caller of one request; Unauthorized or Forbidden when there is none."""
        if not self.keyed:
            peer = network_peer(client)
            if peer is not None and not is_loopback(peer):
                raise Forbidden("this server has no API keys and serves loopback clients only")
            return OPEN_ACCESS
        if not token:
            raise Unauthorized("an API key is required (Authorization: Bearer zk_...)")
        record = self.keys.verify(token)
        if record is None:
            raise Unauthorized("unknown or revoked API key")
        return Principal.of(record)
