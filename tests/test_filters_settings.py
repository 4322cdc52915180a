"""Filter parsing and typed settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.filters import Match, MatchAny, Range, parse_filter_args, parse_filters
from zhiku.engine.settings import Settings, load_settings


def test_filters_map_user_keys_to_meta_and_keep_reserved() -> None:
    got = parse_filters({"lang": "en", "doc_id": "d1", "tag": ["a", "b"], "year": {"gte": 2000, "lt": 2020}})
    assert got == (
        Match("meta.lang", "en"),
        Match("doc_id", "d1"),
        MatchAny("meta.tag", ("a", "b")),
        Range("meta.year", gte=2000.0, lt=2020.0),
    )


@pytest.mark.parametrize(
    "bad",
    [{"x": []}, {"x": {"near": 1}}, {"x": {"gt": "a"}}, {"x": None}, {"x": [{"a": 1}]}, {"": 1}, ["x"]],
)
def test_bad_filters_are_clear_errors(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_filters(bad)  # type: ignore[arg-type]


def test_cli_filter_args() -> None:
    assert parse_filter_args(["lang=en", "year=2001", "tag=a", "tag=b"]) == {
        "lang": "en",
        "year": 2001,
        "tag": ["a", "b"],
    }
    with pytest.raises(InvalidRequest):
        parse_filter_args(["novalue"])


def test_settings_env_file_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "zhiku.toml"
    cfg.write_text('data_dir = "/from/file"\n[retrieval]\nalpha = 0.7\nfusion = "rrf"\n')
    monkeypatch.setenv("ZHIKU_CONFIG", str(cfg))
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_RETRIEVAL__ALPHA", "0.3")
    s = load_settings(retrieval__rrf_k=10)
    assert s.data_dir == Path("/from/file")
    assert s.embed.backend == "fake"
    assert s.retrieval.alpha == 0.3  # env beats file
    assert s.retrieval.fusion == "rrf"  # file beats default
    assert s.retrieval.rrf_k == 10  # override beats all
    assert load_settings(data_dir=tmp_path).data_dir == tmp_path


def test_settings_reject_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_RETRIEVAL__ALPHA", "3")
    with pytest.raises(ValueError):
        Settings()
