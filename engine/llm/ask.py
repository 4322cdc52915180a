"""The grounded answer chain: condense -> retrieve -> rerank -> pack -> answer -> check.

`stream()` is the one body; `run()` consumes it. LLM steps are LCEL chains
(prompt file | chat model | parser); retrieval and checks are plain functions.
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterator, Mapping, Sequence

from langchain_core.output_parsers import StrOutputParser

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.answer import Answer, AskEvent, Citation
from zhiku.engine.llm.chat_model import GeneratorChatModel, stream_text
from zhiku.engine.llm.citations import (
    attribute,
    best_snippet,
    content_tokens,
    coverage,
    starts_with_marker,
    strip_markers,
)
from zhiku.engine.llm.context import ParentOf, Source, format_sources, pack_sources
from zhiku.engine.settings import AskSettings
from zhiku.engine.llm.query_rewrite import QUERY_REWRITERS, Retriever
from zhiku.engine.llm.templates import REFUSALS, Lang, detect_language, load_prompt
from zhiku.engine.llm.rerank import Reranker
from zhiku.engine.types import Hit

History = Sequence[Mapping[str, str]]

# Ways a model says the sources lack the answer (besides the exact refusal line).
_MODEL_REFUSAL = re.compile(
    r"not found in the (?:documents|sources)|(?:do|does|did) not (?:contain|provide|mention)"
    r"|(?:no|not enough) information|cannot (?:find|answer|be answered)|unable to (?:find|answer)"
    r"|没有找到|未找到|找不到|没有提到|未提及|无法回答|没有相关",
    re.I,
)


def says_not_found(text: str) -> bool:
    """Whether a model reply is a refusal rather than an answer."""
    return not text.strip() or bool(_MODEL_REFUSAL.search(text))


def echoes_headers(text: str, sources: Sequence[Source]) -> bool:
    """Whether a reply only repeats source header lines ("[1] Title") or bare markers.

    Small models sometimes copy a source's header instead of answering. Only
    the header's own form counts (a marker first, then that source's label),
    so "Paris [1]" is an answer even when source [1] is titled "Paris".
    """
    headers = {_plain(src.header()) for src in sources}
    lines = [line for line in text.splitlines() if line.strip()]
    return all(
        not strip_markers(line) or (starts_with_marker(line) and _plain(line) in headers) for line in lines
    )


# Questions answered by confirming them: "Is Paris the capital?" "巴黎是首都吗？"
_YES_NO_QUESTION = re.compile(
    r"^\W*(?:is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must)\b"
    r"|吗\W*$|是否|还是|是不是|有没有",
    re.I,
)


def restates(text: str, question: str) -> bool:
    """Whether a reply only repeats the question instead of answering it.

    That is: it adds no content word of its own and repeats most (80 %) of the
    question's. Yes/no and either-or questions are exempt, since confirming
    one can repeat it word for word.
    """
    asked = content_tokens(question)
    reply = content_tokens(strip_markers(text))
    if not asked or not reply or _YES_NO_QUESTION.search(question.strip()):
        return False
    return set(reply) <= set(asked) and coverage(asked, strip_markers(text)) >= 0.8


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


class AskChain:
    """Answers questions from a retriever's hits, with checked [n] citations."""

    def __init__(
        self,
        model: GeneratorChatModel,
        retriever: Retriever,
        settings: AskSettings | None = None,
        reranker: Reranker | None = None,
        parent_of: ParentOf | None = None,
        dense_floors: Mapping[str, float] | None = None,
    ) -> None:
        self.model = model
        self.settings = settings or AskSettings()
        self.dense_floors = dict(dense_floors or {})
        self.base_retriever = retriever
        self.reranker = reranker
        self.parent_of = parent_of if self.settings.expand_parents else None
        rewrite = QUERY_REWRITERS[self.settings.query_rewrite]
        self.retriever = rewrite(model, retriever, self.settings.rewrite_queries)

    def run(self, question: str, history: History | None = None, **kwargs: Any) -> Answer:
        """The whole answer at once."""
        for event in self.stream(question, history, **kwargs):
            if event.type == "done":
                return event.data
        raise AssertionError("ask stream ended without a done event")  # pragma: no cover

    def stream(
        self,
        question: str,
        history: History | None = None,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
    ) -> Iterator[AskEvent]:
        """Events: `sources` (packed), `token`s of the reply, then `done` with the Answer."""
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest("question must be a non-empty string")
        s = self.settings
        top_k = top_k or s.top_k
        lang = detect_language(question)
        timings: dict[str, float] = {}
        start = time.perf_counter()

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            timings[name] = round((now - since) * 1000, 2)
            return now

        standalone = self._condense(question, history, lang)
        t = lap("condense_ms", start)
        hits = self.retriever(standalone, top_k=max(s.candidates, top_k), filters=filters)
        t = lap("retrieve_ms", t)
        if self.reranker is not None and hits:
            hits = self.reranker.rerank(standalone, hits)
            t = lap("rerank_ms", t)
        sources = self._pack(hits[: top_k * 2], top_k, standalone)
        t = lap("pack_ms", t)
        yield AskEvent("sources", sources)

        def finish(text: str, refused: bool, reason: str | None, cites: list[Citation], grounded: bool) -> AskEvent:
            timings["total_ms"] = round((time.perf_counter() - start) * 1000, 2)
            return AskEvent(
                "done",
                Answer(text, cites, refused, question, standalone, lang, timings, sources, grounded, reason),
            )

        # How well each packed source matches the question: the gate needs the
        # best one, the citation check all of them.
        needles = content_tokens(standalone)
        relevance = {src.n: coverage(needles, src.text) for src in sources} if needles else None
        gate = self._gate(standalone, lang, hits, sources, relevance, filters)
        if gate is not None:
            yield finish(REFUSALS[lang], True, gate, [], False)
            return

        pieces: list[str] = []
        inputs = {"sources": format_sources(sources), "question": standalone, "refusal": REFUSALS[lang]}
        for piece in stream_text(self._answer_chain(lang), inputs):
            if not pieces:
                timings["first_token_ms"] = round((time.perf_counter() - start) * 1000, 2)
            pieces.append(piece)
            yield AskEvent("token", piece)
        lap("generate_ms", t)
        raw = "".join(pieces).strip()
        if says_not_found(raw) or echoes_headers(raw, sources) or restates(raw, standalone):
            yield finish(REFUSALS[lang], True, "model", [], False)
            return
        checked = attribute(
            raw,
            standalone,
            {src.n: src.text for src in sources},
            s.min_support,
            # Judged on what the model read. Lower-ranked sources are packed as a
            # clause or two, so citing one needs that clause to match the question
            # about as well as the best source: on squad-dev the model's citations
            # of sources [2]-[5] were right 3 times in 29 (to [1]: 69 in 73).
            relevance=relevance,
            min_relevance=s.min_citation_relevance,
        )
        if checked.misattributed:
            yield finish(REFUSALS[lang], True, "unsupported", [], False)
            return
        if not checked.grounded and s.refuse_ungrounded:
            yield finish(REFUSALS[lang], True, "ungrounded", [], False)
            return
        by_n = {src.n: src for src in sources}
        cites = [_citation(by_n[n], checked.text) for n in checked.cited]
        yield finish(checked.text, False, None, cites, checked.grounded)

    # -- steps ---------------------------------------------------------------------

    def _condense(self, question: str, history: History | None, lang: Lang) -> str:
        turns = list(history or [])[-2 * self.settings.history_turns :]
        if not turns:
            return question
        names = {"user": "User", "assistant": "Assistant"} if lang == "en" else {"user": "用户", "assistant": "助手"}
        transcript = "\n".join(f"{names.get(m['role'], m['role'])}: {m['content']}" for m in turns)
        chain = load_prompt("condense", lang) | self.model.bind(max_tokens=96) | StrOutputParser()
        condensed = chain.invoke({"history": transcript, "question": question}).strip()
        return condensed.splitlines()[0].strip() if condensed else question

    def _pack(self, hits: list[Hit], top_k: int, question: str) -> list[Source]:
        generator = self.model.generator
        s = self.settings
        # Leave room for the instructions, the question and the reply.
        budget = min(s.context_tokens, generator.context_window - s.answer_tokens - 256)
        return pack_sources(
            hits,
            budget,
            generator.count_tokens,
            self.parent_of,
            top_k,
            question,
            s.source_tokens,
            s.first_source_tokens,
        )

    def _gate(
        self,
        question: str,
        lang: Lang,
        hits: list[Hit],
        sources: list[Source],
        relevance: Mapping[int, float] | None,
        filters: Mapping[str, Any] | None,
    ) -> str | None:
        """Why retrieval is too weak to answer from, or None when it is good enough."""
        if not sources:
            return "no_results"
        s = self.settings
        if s.min_score is not None and hits[0].score < s.min_score:
            return "weak_retrieval"
        floor = s.min_coverage_cjk if lang == "zh" else s.min_coverage
        if relevance and max(relevance.values()) < floor:
            return "weak_retrieval"
        dense_floor = s.min_dense_score if s.min_dense_score is not None else self.dense_floors.get(lang)
        if s.dense_gate and dense_floor is not None:
            # The query vector is cached from the search above: this costs one
            # engine lookup, no model call.
            closest = self.base_retriever(question, top_k=1, mode="dense", filters=filters)
            if not closest or closest[0].score < dense_floor:
                return "off_topic"
        return None

    def _answer_chain(self, lang: Lang) -> Any:
        return load_prompt("ask", lang) | self.model.bind(max_tokens=self.settings.answer_tokens) | StrOutputParser()


def _citation(source: Source, answer: str) -> Citation:
    hit = source.hit
    return Citation(
        n=source.n,
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        title=hit.title,
        snippet=best_snippet(source.text, answer),
        score=hit.score,
        source=hit.source,
    )


def parents_from(get_document: Any, window: int = 1) -> ParentOf:
    """A parent lookup over `kb.get_document`: the hit's section, or its neighbours.

    Chunks sharing the hit's (non-empty) section form its parent; without
    sections, the chunks `window` either side do. Overlap between consecutive
    chunks is removed when joining.
    """
    cache: dict[str, Any] = {}

    def parent_of(hit: Hit) -> str | None:
        if hit.doc_id not in cache:
            try:
                cache[hit.doc_id] = get_document(hit.doc_id)
            except Exception:  # a deleted document: fall back to the chunk itself
                cache[hit.doc_id] = None
        doc = cache[hit.doc_id]
        if doc is None or len(doc.chunks) <= 1:
            return None
        if hit.section:
            chunks = [c for c in doc.chunks if c.section == hit.section]
        else:
            chunks = [c for c in doc.chunks if abs(c.chunk_index - hit.chunk_index) <= window]
        return join_overlapping([c.text for c in chunks])

    return parent_of


def join_overlapping(texts: list[str], max_overlap: int = 2000) -> str:
    """Join consecutive chunk texts, dropping the prefix each repeats from the one before."""
    out = texts[0] if texts else ""
    for text in texts[1:]:
        k = min(len(out), len(text), max_overlap)
        while k > 0 and not out.endswith(text[:k]):
            k -= 1
        out = out + (" " if k == 0 else "") + text[k:]
    return out
