"""Generate the identifier retrieval set: exact codes, numbers and names among look-alikes.

Each query names one value (an archive code, an error code, an order number,
a statute number, a person's name) in English or Chinese. The corpus holds the
one document with that value and look-alike distractors: the same wording with
a value one character off (QX000ZR vs QX003ZR), some short, some long. The
document holding the exact value must rank first. Deterministic for a seed.

    python bench/identifier_set.py OUT_DIR [--groups 320] [--seed 13]

writes OUT_DIR/{corpus.jsonl, queries.jsonl, qrels/test.tsv} (BEIR layout).
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

# Kinds of value: (name, how to make one, how to make a look-alike).
LETTERS = string.ascii_uppercase
DIGITS = string.digits

EN_FILLER = [
    "The file was reviewed by the records office during the annual audit.",
    "Staff are reminded to keep the original documents in the central archive.",
    "The committee met twice that year to discuss budgets and staffing.",
    "Several departments shared the building until the renovation was finished.",
    "Requests for copies must be made in writing and are answered within ten days.",
    "The report notes that most entries were digitised in the last decade.",
    "Visitors may consult the catalogue in the reading room on weekdays.",
    "A summary of the proceedings was published in the official bulletin.",
    "The system logs every change together with the name of the operator.",
    "Older material is kept off site and can take a week to retrieve.",
]
ZH_FILLER = [
    "该文件在年度审计期间由档案室复核。",
    "工作人员应将原始文件保存在中央档案馆。",
    "委员会当年召开了两次会议，讨论预算和人员安排。",
    "在翻修完成之前，几个部门共用这栋大楼。",
    "复印申请须以书面形式提出，并在十天内答复。",
    "报告指出，大部分条目是在过去十年中数字化的。",
    "访客可在工作日到阅览室查阅目录。",
    "会议纪要已在官方公报上发布。",
    "系统会记录每一次修改以及操作人员的姓名。",
    "较早的材料存放在馆外，调取可能需要一周时间。",
]
EN_SURNAMES = """Halvorsen Okonkwo Castellanos Lindqvist Abernathy Szymanski Delacroix Nakamura Oyelaran Vasquez
    Thorvaldsen Kowalczyk Mbeki Ferreira Lundgren Petrakis Achebe Rasmussen Villanueva Ostrowski""".split()
EN_GIVEN = """Marta Julian Ingrid Tobias Leona Rafael Agnes Dmitri Soren Imelda Casimir Noor Benedikt Yara
    Emeric Thea Anselm Odile Lucian Maren""".split()
ZH_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
ZH_GIVEN = "建国华明伟芳军丽强磊洋艳勇杰娟涛超秀英敏静"

# (kind, English query, English sentence, Chinese query, Chinese sentence); {v} is the value.
TEMPLATES = {
    "code": ("archive code {v}", "The archive code of this record is {v}.",
             "档案编号{v}", "这份记录的档案编号是{v}。"),
    "error": ("error {v}", "The controller reported error {v} during the nightly run.",
              "错误代码{v}", "控制器在夜间运行时报告了错误代码{v}。"),
    "order": ("order number {v}", "Order number {v} was shipped from the northern warehouse.",
              "订单号{v}", "订单号{v}已从北部仓库发出。"),
    "statute": ("section {v} of the building code", "Section {v} of the building code sets the minimum stair width.",
                "建筑法规第{v}条", "建筑法规第{v}条规定了楼梯的最小宽度。"),
    "name": ("who is {v}", "{v} joined the records office as a senior archivist.",
             "{v}是谁", "{v}以高级档案员的身份加入了档案室。"),
}


def _value(kind: str, lang: str, rng: random.Random) -> str:
    if kind == "code":
        return "".join(rng.choices(LETTERS, k=2)) + "".join(rng.choices(DIGITS, k=3)) + "".join(rng.choices(LETTERS, k=2))
    if kind == "error":
        return f"{rng.choice(['E', 'ERR', 'SYS'])}-{rng.randrange(1000, 9999)}"
    if kind == "order":
        return str(rng.randrange(10_000_000, 99_999_999))
    if kind == "statute":
        return f"{rng.randrange(10, 99)}-{rng.randrange(100, 999)}"
    if lang == "zh":
        return rng.choice(ZH_SURNAMES) + "".join(rng.sample(ZH_GIVEN, 2))
    return f"{rng.choice(EN_GIVEN)} {rng.choice(EN_SURNAMES)}"


def _look_alike(value: str, kind: str, lang: str, rng: random.Random) -> str:
    """The value with one character changed (a digit for a digit, a letter for a letter)."""
    if kind == "name":
        if lang == "zh":  # same surname and first given character, last character differs
            return value[:-1] + rng.choice([c for c in ZH_GIVEN if c != value[-1]])
        given, surname = value.split(" ")
        return f"{rng.choice([g for g in EN_GIVEN if g != given])} {surname}" if rng.random() < 0.5 else \
            f"{given} {rng.choice([s for s in EN_SURNAMES if s != surname])}"
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    i = rng.choice(positions)
    pool = DIGITS if value[i].isdigit() else LETTERS
    return value[:i] + rng.choice([c for c in pool if c != value[i]]) + value[i + 1 :]


def _document(sentence: str, lang: str, long: bool, rng: random.Random) -> str:
    if not long:
        return sentence
    filler = ZH_FILLER if lang == "zh" else EN_FILLER
    body = rng.sample(filler, 8)
    body.insert(rng.randrange(len(body) + 1), sentence)
    return ("" if lang == "zh" else " ").join(body)


def generate(groups: int = 320, seed: int = 13) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """(corpus rows, query rows, qrels pairs); every query has exactly one relevant document."""
    rng = random.Random(seed)
    corpus: list[dict] = []
    queries: list[dict] = []
    qrels: list[tuple[str, str]] = []
    kinds = sorted(TEMPLATES)
    seen: set[str] = set()
    for g in range(groups):
        kind, lang = kinds[g % len(kinds)], ("en", "zh")[(g // len(kinds)) % 2]
        en_q, en_s, zh_q, zh_s = TEMPLATES[kind]
        query_t, sentence_t = (zh_q, zh_s) if lang == "zh" else (en_q, en_s)
        value = _value(kind, lang, rng)
        while value in seen:
            value = _value(kind, lang, rng)
        alikes: list[str] = []
        while len(alikes) < 3:
            other = _look_alike(value, kind, lang, rng)
            if other not in seen and other != value and other not in alikes:
                alikes.append(other)
        seen.update([value, *alikes])
        # Half the targets are long documents among short look-alikes (the hard case), half the reverse.
        target_long = g % 4 < 2
        for n, v in enumerate([value, *alikes]):
            long = target_long if n == 0 else not target_long
            corpus.append({"_id": f"id{g}-{n}", "title": "", "text": _document(sentence_t.format(v=v), lang, long, rng)})
        queries.append({"_id": f"idq{g}", "text": query_t.format(v=value), "kind": kind, "lang": lang})
        qrels.append((f"idq{g}", f"id{g}-0"))
    return corpus, queries, qrels


def write(out: Path, groups: int = 320, seed: int = 13) -> Path:
    """Write the set as a BEIR directory; returns it."""
    corpus, queries, qrels = generate(groups, seed)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (out / name).open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q}\t{d}\t1\n" for q, d in qrels)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--groups", type=int, default=320)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    print(write(args.out, args.groups, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
