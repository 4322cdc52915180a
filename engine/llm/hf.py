"""Any local Hugging Face causal LM (a model folder, or a GGUF through `gguf_file`).

Besides chat generation this backend scores log-likelihoods, which is what the
eval harness uses for multiple-choice benchmarks.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from zhiku.engine.errors import ModelUnavailable
from zhiku.engine.llm.base import GenOptions, Generator, Message


class TransformersGenerator(Generator):
    """Loads weights from disk only (never a hub) and generates on CPU."""

    def __init__(
        self,
        model_path: Path,
        gguf_file: str | None = None,
        threads: int = 2,
        context_window: int = 4096,
        defaults: GenOptions = GenOptions(),
    ) -> None:
        self.path = Path(model_path)
        self.gguf_file = gguf_file
        self.threads = threads
        self.context_window = context_window
        self.defaults = defaults
        self.model_id = gguf_file or self.path.name
        self.model: Any = None
        self.tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self.model is not None:
            return
        self.tokenizer, self.model = load_causal_lm(self.path, self.gguf_file, self.threads)

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _prompt_ids(self, messages: Sequence[Message]) -> Any:
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        else:  # a base model: plain concatenation is the honest fallback
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
            ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        return ids[:, -self.context_window :]

    def _stream(self, messages: Sequence[Message], options: GenOptions) -> Iterator[str]:
        self.warm_up()
        import torch
        from transformers import TextIteratorStreamer

        ids = self._prompt_ids(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = (
            {"do_sample": True, "temperature": options.temperature}
            if options.temperature > 0
            else {"do_sample": False}
        )
        kwargs = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=options.max_tokens,
            streamer=streamer,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            **sampling,
        )
        with self._lock:
            worker = threading.Thread(target=self._generate, args=(kwargs,), daemon=True)
            worker.start()
            for piece in streamer:
                if piece:
                    yield piece
            worker.join()

    def _generate(self, kwargs: dict[str, Any]) -> None:
        import torch

        with torch.inference_mode():
            self.model.generate(**kwargs)

    def score_choices(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float] | None:
        self.warm_up()
        prompt = self.tokenizer.decode(self._prompt_ids(messages)[0])
        return [self.loglikelihood(prompt, choice)[0] for choice in choices]

    def loglikelihood(self, context: str, continuation: str) -> tuple[float, bool]:
        """Sum of log p(continuation | context), and whether it is the greedy continuation."""
        self.warm_up()
        import torch

        ctx = self.tokenizer.encode(context, add_special_tokens=False)
        cont = self.tokenizer.encode(continuation, add_special_tokens=False)
        # The first continuation token needs something to be predicted from.
        ctx = ctx or [self.tokenizer.bos_token_id or self.tokenizer.eos_token_id]
        if not cont:
            return 0.0, True
        ids = torch.tensor([(ctx + cont)[-self.context_window :]])
        with torch.inference_mode():
            logits = self.model(ids).logits[0, -len(cont) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        target = torch.tensor(cont)
        total = float(logprobs.gather(1, target[:, None]).sum())
        greedy = bool((logprobs.argmax(dim=-1) == target).all())
        return total, greedy


def load_causal_lm(path: Path, gguf_file: str | None, threads: int) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) from a local folder or a GGUF in it; never a hub."""
    if not path.exists():
        raise ModelUnavailable(f"model not found: {path}", path=str(path))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **extra)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32, **extra)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelUnavailable(f"transformers could not load {path}: {exc}") from exc
    return tokenizer, model.eval()
