"""The default local generator: a GGUF model run in-process by llama.cpp."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from zhiku.engine.errors import ModelUnavailable
from zhiku.engine.llm.base import GenOptions, Generator, Message
from zhiku.engine.models import resolve_gguf


class LlamaCppGenerator(Generator):
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M by default; any chat GGUF works."""

    def __init__(
        self,
        model_path: Path | None = None,
        gguf_file: str | None = None,
        threads: int = 2,
        context_window: int = 4096,
        defaults: GenOptions = GenOptions(),
        grammar: bool = False,
        extra_buffers: bool = False,
    ) -> None:
        self._model_path = model_path
        self.extra_buffers = extra_buffers
        # Grammar-constrained JSON is exact but slow here (a 151k vocabulary is
        # checked per token: ~60 s for a 12-token object on 2 busy cores), so by
        # default only a request with `constrain` (extract's last try) uses it.
        self.grammar = grammar
        self._gguf_file = gguf_file
        self.threads = threads
        self.context_window = context_window
        self.defaults = defaults
        self.model_id = gguf_file or (Path(model_path).name if model_path else "default-gguf")
        self._llm: Any = None
        # A llama.cpp context is single-threaded; concurrent callers queue here.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._llm is not None:
            return
        path = resolve_gguf(self._model_path, self._gguf_file)
        self._llm = load_llama(
            path,
            self.extra_buffers,
            n_ctx=self.context_window,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_batch=512,
            flash_attn=True,
        )
        self.model_id = path.name

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The chat-formatted prompt (with the assistant turn opened) as tokens."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self._llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailable("this GGUF has no chat template; choices cannot be scored")
        vocab = self._llm
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore"),
            bos_token=vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore"),
        )
        prompt = formatter(messages=list(messages)).prompt
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def score_choices(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float] | None:
        """Sum of token log-probabilities of each choice as the start of the reply.

        The prompt is evaluated once (reusing llama.cpp's cached prefix); each
        choice then costs one single-token step per token after its first.
        """
        import llama_cpp
        import numpy as np

        self.warm_up()
        llm = self._llm
        n_vocab = llm.n_vocab()

        def last_logprobs() -> np.ndarray:
            # Llama.eval no longer keeps logits unless logits_all; read the context's own.
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(n_vocab,))
            row = row.astype(np.float64)
            return row - row.max() - np.log(np.exp(row - row.max()).sum())

        with self._lock:
            prompt = self._prompt_tokens(messages)
            # Reuse the longest cached prefix, but evaluate at least one token
            # so the next-token logits belong to this prompt.
            cached = 0
            limit = min(int(llm.n_tokens), len(prompt) - 1)
            while cached < limit and llm.input_ids[cached] == prompt[cached]:
                cached += 1
            llm.n_tokens = cached
            llm.eval(prompt[cached:])
            first = last_logprobs()
            base = len(prompt)
            out = []
            for choice in choices:
                ids = llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)
                total = float(first[ids[0]]) if ids else 0.0
                llm.n_tokens = base
                for j in range(1, len(ids)):
                    llm.eval([ids[j - 1]])
                    total += float(last_logprobs()[ids[j]])
                out.append(total)
            # Leave the last prompt token unevaluated so the next generation
            # recomputes fresh logits instead of sampling from a choice's.
            llm.n_tokens = base - 1
            return out

    def _stream(self, messages: Sequence[Message], options: GenOptions) -> Iterator[str]:
        self.warm_up()
        kwargs: dict[str, Any] = {
            "messages": list(messages),
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stop": list(options.stop) or None,
            "stream": True,
        }
        if options.temperature == 0.0:
            kwargs["top_k"] = 1  # greedy: same question, same answer
        if options.json_schema is not None and (self.grammar or options.constrain):
            kwargs["response_format"] = {"type": "json_object", "schema": options.json_schema}
        with self._lock:
            for chunk in self._llm.create_chat_completion(**kwargs):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece


def load_llama(path: Path, extra_buffers: bool = False, **options: Any) -> Any:
    """A `llama_cpp.Llama` for a GGUF file: every llama.cpp model in zhiku loads here.

    `extra_buffers` is `LLMSettings.extra_buffers` (see there why it is off by default).
    """
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable("llama.cpp models need llama-cpp-python") from exc
    try:
        with _model_params(use_extra_bufts=extra_buffers):
            return Llama(model_path=str(path), verbose=False, **options)
    except (ValueError, RuntimeError) as exc:
        raise ModelUnavailable(f"llama.cpp could not load {path}: {exc}") from exc


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Set llama.cpp model parameters that `Llama()` does not take as arguments.

    `Llama()` starts from `llama_model_default_params()`; while it runs, that
    function returns the defaults with `fields` set.
    """
    import llama_cpp.llama_cpp as low

    with _PARAMS_LOCK:
        default = low.llama_model_default_params

        def params() -> Any:
            out = default()
            for name, value in fields.items():
                setattr(out, name, value)
            return out

        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = default
