"""The grounded answer chain: condense -> retrieve -> rerank -> pack -> answer -> check.

`stream()` is the one body; `run()` consumes it. LLM steps are LCEL chains
(prompt file | chat model | parser); retrieval and checks are plain functions.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping, Sequence

from langchain_core.output_parsers import StrOutputParser

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.answer import Answer, AnswerMode, AskEvent, Citation, RefusalReason
from zhiku.engine.llm.chat_model import GeneratorChatModel, stream_text
from zhiku.engine.llm.citations import (
    attribute,
    best_snippet,
    content_tokens,
    coverage,
    strip_markers,
    supporting_sentence,
)
from zhiku.engine.llm.context import ParentOf, Source, best_sentence, format_sources, pack_sources, term_weights
from zhiku.engine.llm.query_rewrite import QUERY_REWRITERS, Retriever
from zhiku.engine.llm.rerank import Reranker
from zhiku.engine.llm.span import SentenceSimilarity, candidates, choose, partner_index, passage, quote_text
from zhiku.engine.llm.rules import (
    QUOTE_WEIGHTS,
    Evidence,
    declined,
    echoes_headers,
    gate,
    gate_confidence,
    quote_confidence,
    quote_features,
    restates,
    span_confidence,
    span_features,
    span_quote_confidence,
    span_quote_features,
    span_thresholds,
)
from zhiku.engine.llm.templates import REFUSALS, Lang, detect_language, load_prompt
from zhiku.engine.settings import AskSettings
from zhiku.engine.types import Hit

History = Sequence[Mapping[str, str]]

__all__ = ["AskChain", "History", "Parents", "parents_from", "join_overlapping", "echoes_headers", "restates"]


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
        similarity: SentenceSimilarity | None = None,
    ) -> None:
        self.model = model
        # Question-to-sentence similarity for span answers (the collection's embedder).
        self.similarity = similarity
        self.settings = settings or AskSettings()
        self.dense_floors = dict(dense_floors or {})
        # Floors come with a retriever that can search the dense leg alone
        # (KnowledgeBase.search's `mode`); a plain retriever gets no dense lookup.
        self.dense_lookup = dense_floors is not None
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

        def finish(mode: AnswerMode, text: str = "", **fields: Any) -> AskEvent:
            timings["total_ms"] = round((time.perf_counter() - start) * 1000, 2)
            answer = Answer(
                text=text if mode != "refusal" else REFUSALS[lang],
                question=question,
                standalone_question=standalone,
                language=lang,
                mode=mode,
                timings=timings,
                sources=sources,
                **fields,
            )
            return AskEvent("done", answer)

        # How well each packed source matches the question: the gates need the
        # best one, the citation check all of them.
        evidence = self.evidence(standalone, lang, hits, sources, filters)
        reason = gate(evidence, s)
        if reason is not None:
            yield finish("refusal", refusal_reason=reason)
            return

        if s.answer_style == "span":
            spans = candidates(standalone, sources, lang, self.similarity)
            choice = choose(self.model.generator, standalone, spans, lang) if spans else None
            if choice is not None:
                confidence = gate_confidence(evidence)
                least, least_quote = span_thresholds(lang, s.min_span_confidence, s.min_span_quote_confidence)
                mode: AnswerMode = "answer"
                chosen = spans[:1]
                text = f"{spans[0].text} [{spans[0].source.n}]"
                if span_confidence(span_features(spans, confidence, choice.rank), lang) < least:
                    quote = span_quote_features(spans, partner_index(spans), confidence, choice.rank)
                    if not s.quote_mode or span_quote_confidence(quote, lang) < least_quote:
                        yield finish("refusal", refusal_reason=RefusalReason.MODEL)
                        return
                    mode, chosen = "quote", passage(spans)
                    text = quote_text(chosen)
                timings["first_token_ms"] = round((time.perf_counter() - start) * 1000, 2)
                lap("generate_ms", t)
                yield AskEvent("token", text)
                cite = _citation(chosen[0].source, " ".join(sp.text for sp in chosen))
                yield finish(mode, text, citations=[cite], grounded=True)
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
        reason = declined(raw, standalone, sources)
        if reason is None:
            checked = attribute(
                raw,
                standalone,
                {src.n: src.text for src in sources},
                s.min_support,
                s.support_ratio,
                # Judged on what the model read. Lower-ranked sources are packed as a
                # clause or two, so citing one needs that clause to match the question
                # about as well as the best source: on squad-dev the model's citations
                # of sources [2]-[5] were right 3 times in 29 (to [1]: 69 in 73).
                relevance=dict(evidence.relevance) or None,
                min_relevance=s.min_citation_relevance,
            )
            if checked.misattributed:
                reason = RefusalReason.UNSUPPORTED
            elif not checked.grounded and s.refuse_ungrounded:
                reason = RefusalReason.UNGROUNDED
        if reason is not None:
            quote = self._quote(evidence) if s.quote_mode else None
            if quote is not None:
                text, cite = quote
                yield finish("quote", text, citations=[cite], grounded=True)
            else:
                yield finish("refusal", refusal_reason=reason)
            return
        by_n = {src.n: src for src in sources}
        text = checked.text
        if checked.grounded and checked.cited and s.answer_with_sentence:
            text = self._with_sentence(text, standalone, by_n[checked.cited[0]])
        cites = [_citation(by_n[n], text) for n in checked.cited]
        yield finish("answer", text, citations=cites, grounded=checked.grounded)

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
        parent_of = self.parent_of.for_request() if isinstance(self.parent_of, Parents) else self.parent_of
        return pack_sources(
            hits,
            budget,
            generator.count_tokens,
            parent_of,
            top_k,
            question,
            s.source_tokens,
            s.first_source_tokens,
        )

    def _closest_dense(self, question: str, filters: Mapping[str, Any] | None) -> Hit | None:
        # The query vector is cached from the search above: this costs one
        # engine lookup, no model call.
        closest = self.base_retriever(question, top_k=1, mode="dense", filters=filters)
        return closest[0] if closest else None

    def evidence(
        self,
        question: str,
        lang: Lang,
        hits: list[Hit],
        sources: list[Source],
        filters: Mapping[str, Any] | None = None,
    ) -> Evidence:
        """What the rules judge for this question (see engine/llm/rules.py)."""
        needles = content_tokens(question)
        return Evidence(
            question=question,
            lang=lang,
            hits=hits,
            sources=sources,
            relevance={src.n: coverage(needles, src.text) for src in sources} if needles else {},
            dense_floor=self.dense_floors.get(lang),
            closest_dense=(lambda: self._closest_dense(question, filters)) if self.dense_lookup else (lambda: None),
        )

    def quote_candidate(self, ev: Evidence) -> tuple[str, dict[str, float]]:
        """The sentence quote mode would give (the best source's best sentence) and the scorer's inputs."""
        weights = term_weights(ev.question, [src.hit.text for src in ev.sources])
        sentence = best_sentence(ev.sources[0].hit.text, ev.question, weights).strip(" …")
        return sentence, quote_features(ev, coverage(content_tokens(ev.question), sentence))

    def _quote(self, ev: Evidence) -> tuple[str, Citation] | None:
        """The best source's best sentence as a cited quote, when the calibrated scorer trusts it."""
        sentence, features = self.quote_candidate(ev)
        weights = QUOTE_WEIGHTS[ev.lang]
        if not sentence or quote_confidence(features, weights) < self.settings.min_quote_confidence:
            return None
        best = ev.sources[0]
        return f"“{sentence}” [{best.n}]", _citation(best, sentence)

    def _with_sentence(self, answer: str, question: str, source: Source) -> str:
        """The answer followed by the cited source's sentence that supports it (unless it is that sentence)."""
        sentence = supporting_sentence([source.hit.text, source.text], answer, question, self.settings.min_support)
        if sentence is None or _squash(sentence) in _squash(answer):
            return answer
        return f"{answer}\n\n“{sentence}” [{source.n}]"

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


class Parents:
    """A parent lookup over `kb.get_document`: the hit's section, or its neighbours.

    Chunks sharing the hit's (non-empty) section form its parent; without
    sections, the chunks `window` either side do. Overlap between consecutive
    chunks is removed when joining. Documents are read per request
    (`for_request`), never kept across requests: a replaced or deleted
    document is never expanded to its old text, and memory does not grow
    with every document seen.
    """

    def __init__(self, get_document: Callable[[str], Any], window: int = 1) -> None:
        self.get_document = get_document
        self.window = window

    def for_request(self) -> ParentOf:
        """A lookup that reads each document at most once, for one request's hits."""
        docs: dict[str, Any] = {}

        def parent_of(hit: Hit) -> str | None:
            if hit.doc_id not in docs:
                try:
                    docs[hit.doc_id] = self.get_document(hit.doc_id)
                except Exception:  # a deleted document: fall back to the chunk itself
                    docs[hit.doc_id] = None
            return self._parent(docs[hit.doc_id], hit)

        return parent_of

    def __call__(self, hit: Hit) -> str | None:
        return self.for_request()(hit)

    def _parent(self, doc: Any, hit: Hit) -> str | None:
        if doc is None or len(doc.chunks) <= 1:
            return None
        if hit.section:
            chunks = [c for c in doc.chunks if c.section == hit.section]
        else:
            chunks = [c for c in doc.chunks if abs(c.chunk_index - hit.chunk_index) <= self.window]
        return join_overlapping([c.text for c in chunks])


def parents_from(get_document: Callable[[str], Any], window: int = 1) -> Parents:
    """The parent lookup over `kb.get_document` (see `Parents`)."""
    return Parents(get_document, window)


def _squash(text: str) -> str:
    """Lower-case word characters only: to compare an answer with a sentence."""
    return "".join(ch for ch in strip_markers(text).lower() if ch.isalnum())


def join_overlapping(texts: list[str], max_overlap: int = 2000) -> str:
    """Join consecutive chunk texts, dropping the prefix each repeats from the one before."""
    out = texts[0] if texts else ""
    for text in texts[1:]:
        k = min(len(out), len(text), max_overlap)
        while k > 0 and not out.endswith(text[:k]):
            k -= 1
        out = out + (" " if k == 0 else "") + text[k:]
    return out
