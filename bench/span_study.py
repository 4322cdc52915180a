"""Study: per-candidate features for span selection on calibration questions (not the benchmark's)."""
import json, sys, random, time
from pathlib import Path
sys.argv, argv = sys.argv[:1], sys.argv[1:]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import answer_quality as aq
from zhiku.engine.settings import AskSettings, load_settings
from zhiku.engine.llm import build_generator
from zhiku.engine.llm.abilities import build_llm
from zhiku.eval.beir import load_beir
from zhiku.eval.retrieval import open_index
from zhiku.eval.answers import contains_gold
from zhiku.engine.llm.rules import gate_confidence
from zhiku.engine.llm.span import SPAN_SOURCES
from zhiku.engine.llm.citations import split_sentences, content_tokens, coverage
from zhiku.engine.llm.context import term_weights, _terms
from zhiku.engine.llm.templates import detect_language, load_prompt
from zhiku.engine.llm.chat_model import to_messages
import numpy as np

data = Path(argv[0]); n = int(argv[1]); held = int(argv[2]); out = Path(argv[3]); k_llm = int(argv[4]) if len(argv) > 4 else 8
dataset = load_beir(data)
reduced, answerable, unanswerable, held_titles = aq.split(dataset, 200, 50, 7, held)
settings = load_settings(embed__threads=1, llm__threads=2)
kb = open_index(reduced, aq.RESULTS / "cache" / "answer-quality", settings)
service = build_llm(settings.model_copy(update={"ask": AskSettings()}), build_generator(settings.llm), kb)
chain = service._chain()
gen = service.generator
cal_a, cal_u = aq.calibration_split(dataset, answerable, unanswerable, held_titles, n, 7)
emb = kb.embedder
f = out.open("w")
t0 = time.time()
for group, qids in (("answerable", cal_a), ("unanswerable", cal_u)):
    for qid in qids:
        q = dataset.queries[qid]
        lang = detect_language(q)
        s = chain.settings
        hits = chain.retriever(q, top_k=s.candidates)
        sources = chain._pack(hits[: s.top_k * 2], s.top_k, q)
        if not sources:
            continue
        ev = chain.evidence(q, lang, hits, sources)
        gconf = gate_confidence(ev)
        top = sources[:SPAN_SOURCES]
        weights = term_weights(q, [src.hit.text for src in top])
        needles = content_tokens(q)
        gold, relevant = dataset.answers.get(qid, []), dataset.qrels.get(qid, {})
        cands = []
        seen = set()
        for rank, src in enumerate(top):
            sents = [x.strip() for x in split_sentences(src.hit.text)]
            for pos, sent in enumerate(sents):
                if not sent or sent in seen:
                    continue
                seen.add(sent)
                cands.append({"text": sent, "src_rank": rank, "pos": pos, "n_sents": len(sents),
                              "tw": sum(weights.get(t, 0.0) for t in _terms(sent)),
                              "cov": coverage(needles, sent) if needles else 0.0,
                              "label": bool(group == "answerable" and contains_gold(sent, gold) and src.hit.doc_id in relevant),
                              "has_gold": bool(group == "answerable" and contains_gold(sent, gold)),
                              "src_score": src.hit.score})
        if not cands:
            continue
        qv = emb.embed_query(q)
        sv = emb.embed_documents([c["text"] for c in cands])
        for c, v in zip(cands, sv):
            c["dense"] = float(np.dot(qv, v))
        # LLM scores on the best k_llm by term weight
        order = sorted(range(len(cands)), key=lambda i: -(cands[i]["tw"] - 1e-3 * cands[i]["src_rank"]))[:k_llm]
        listed = "\n".join(f"{i}. {cands[j]['text']}" for i, j in enumerate(order, 1))
        prompt = load_prompt("ask_span", lang).format_messages(sentences=listed, question=q)
        scores = gen.score_choices(to_messages(prompt), [str(i) for i in range(1, len(order) + 1)]) if gconf >= 0.2 else None
        for i, j in enumerate(order):
            cands[j]["tw_rank"] = i
            if scores:
                cands[j]["llm"] = scores[i]
        row = {"qid": qid, "group": group, "q": q, "lang": lang, "gate": gconf, "gold": gold,
               "gold_packed": any(src.hit.doc_id in relevant for src in sources), "cands": cands}
        f.write(json.dumps(row, ensure_ascii=False) + "\n"); f.flush()
    print(group, len(qids), round(time.time() - t0), file=sys.stderr, flush=True)
kb.close()
