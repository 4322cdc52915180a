"""Scorers: what a benchmark needs from a model, log-likelihoods and greedy text.

A backend implements `loglikelihood(requests)` over (context, continuation)
pairs and `generate(prompt, stop, max_tokens)`. `SCORERS` maps a model-spec
prefix to a backend: `hf:DIR` (or a bare folder / .gguf path) for
transformers, `llamacpp:FILE.gguf`, and `fake` for tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from zhiku.engine.errors import ConfigError, ModelUnavailable

Request = tuple[str, str]


class Scorer(Protocol):
    """A model as the benchmarks see it."""

    name: str

    def warm_up(self) -> None: ...

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]: ...

    def generate(self, prompt: str, stop: Sequence[str], max_tokens: int) -> str: ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Text up to the first stop string."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


class FakeScorer:
    """Deterministic hash-based scores: exercises the pipeline with no model at all."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name

    def warm_up(self) -> None:
        """Nothing to load."""

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        return [
            -int(hashlib.sha256(f"{self.name}\x00{c}\x00{x}".encode()).hexdigest()[:6], 16) / 1e6
            for c, x in requests
        ]

    def generate(self, prompt: str, stop: Sequence[str], max_tokens: int) -> str:
        digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:4], 16)
        return f" Adding up gives {digest % 100}. The answer is {digest % 100}.\n\nQ:"[: max_tokens * 4]


class HFScorer:
    """A transformers causal LM on CPU, scoring exactly as lm-evaluation-harness's `hf` model.

    Context and continuation are tokenised together and the continuation is
    what follows the context's own tokens (lm-eval `_encode_pair`), so scores
    match lm-eval token for token. Requests sharing a context whose
    continuations are single tokens (" A".." D") cost one forward pass.
    """

    def __init__(self, path: str | Path, gguf_file: str | None = None, threads: int = 2, max_length: int = 2048) -> None:
        self.path, self.gguf_file, self.threads, self.max_length = Path(path), gguf_file, threads, max_length
        self.name = f"{self.path.name}/{gguf_file}" if gguf_file else self.path.name
        self.model = self.tokenizer = None

    def warm_up(self) -> None:
        """Load weights (local files only)."""
        if self.model is not None:
            return
        from zhiku.engine.llm.hf import load_causal_lm

        self.tokenizer, self.model = load_causal_lm(self.path, self.gguf_file, self.threads)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing context spaces move to the continuation; whole-string tokens."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self._encode(context + continuation)
        ctx = self._encode(context)
        if not ctx:  # nothing to condition on: start from the end-of-text token, as lm-eval does
            return [self.tokenizer.eos_token_id], whole
        return ctx, whole[len(ctx) :]

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        import torch

        self.warm_up()
        pairs = [self.encode_pair(c, x) for c, x in requests]
        results: list[float | None] = [None] * len(pairs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, cont) in enumerate(pairs):
            if len(cont) == 1:
                groups.setdefault(tuple(ctx), []).append(i)
        with torch.inference_mode():
            for ctx, members in groups.items():
                ids = torch.tensor([list(ctx)[-self.max_length :]])
                # Only the last position's logits are needed: skip the vocabulary projection elsewhere.
                logits = self.model(ids, logits_to_keep=1).logits[0, -1].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                for i in members:
                    results[i] = float(logprobs[pairs[i][1][0]])
            for i, (ctx, cont) in enumerate(pairs):
                if results[i] is None:
                    ids = torch.tensor([(ctx + cont)[-(self.max_length + 1) :][:-1]])
                    logits = self.model(ids).logits[0, -len(cont) :].float()
                    picked = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(cont)[:, None])
                    results[i] = float(picked.sum())
        return [float(r) for r in results]  # type: ignore[arg-type]

    def generate(self, prompt: str, stop: Sequence[str], max_tokens: int) -> str:
        import torch
        from transformers import StoppingCriteria

        self.warm_up()
        ids = torch.tensor([self._encode(prompt)[-self.max_length :]])
        tokenizer, start = self.tokenizer, ids.shape[1]

        class _Stop(StoppingCriteria):  # stop strings, checked on decoded text
            def __call__(self, input_ids, scores, **kwargs):
                return any(s in tokenizer.decode(input_ids[0, start:]) for s in stop)

        with torch.inference_mode():
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens, do_sample=False,
                stopping_criteria=[_Stop()], pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return cut_at_stop(tokenizer.decode(out[0, start:], skip_special_tokens=True), stop)


class LlamaCppScorer:
    """A GGUF model through llama-cpp-python (optional): log-probs from its logits."""

    def __init__(self, path: str | Path, threads: int = 2, n_ctx: int = 2048) -> None:
        self.path, self.threads, self.n_ctx = Path(path), threads, n_ctx
        self.name = self.path.name
        self.llm = None

    def warm_up(self) -> None:
        if self.llm is not None:
            return
        if not self.path.is_file():
            raise ModelUnavailable(f"GGUF file not found: {self.path}", path=str(self.path))
        from zhiku.engine.llm.llamacpp import load_llama

        self.llm = load_llama(self.path, n_ctx=self.n_ctx, n_threads=self.threads, logits_all=True)

    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=False)

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        import numpy as np

        self.warm_up()
        scores = []
        for context, continuation in requests:
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            ctx = self._tokens(context) or [self.llm.token_eos()]
            whole = self._tokens(context + continuation)
            cont = whole[len(ctx) :] if whole[: len(ctx)] == ctx else self._tokens(continuation)
            if len(cont) != 1 or list(self.llm.input_ids[: self.llm.n_tokens]) != ctx:
                # One evaluation serves every single-token option after the same context.
                self.llm.reset()
                self.llm.eval(ctx + cont[:-1])
            logits = np.asarray(self.llm.scores[len(ctx) - 1 : len(ctx) + len(cont) - 1], dtype=np.float64)
            logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
            scores.append(float(sum(logits[i, t] - logz[i] for i, t in enumerate(cont))))
        return scores

    def generate(self, prompt: str, stop: Sequence[str], max_tokens: int) -> str:
        self.warm_up()
        out = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stop=list(stop))
        return out["choices"][0]["text"]


def _hf(target: str, threads: int) -> Scorer:
    path = Path(target)
    if path.suffix == ".gguf":
        return HFScorer(path.parent, gguf_file=path.name, threads=threads)
    return HFScorer(path, threads=threads)


SCORERS: dict[str, Callable[[str, int], Scorer]] = {
    "hf": _hf,
    "llamacpp": lambda target, threads: LlamaCppScorer(target, threads=threads),
    "fake": lambda target, threads: FakeScorer(f"fake{':' + target if target else ''}"),
}


def build_scorer(spec: str, threads: int = 2) -> Scorer:
    """`hf:DIR`, `hf:FILE.gguf`, `llamacpp:FILE.gguf`, `fake[:seed]`, or a bare path (transformers)."""
    prefix, _, target = spec.partition(":")
    if prefix not in SCORERS or (len(prefix) == 1 and target.startswith("\\")):
        prefix, target = "hf", spec  # a bare path (even a Windows drive letter)
    if prefix != "fake" and not target:
        raise ConfigError(f"model spec {spec!r} names no model path")
    return SCORERS[prefix](target, threads)
