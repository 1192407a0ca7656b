"""Mixture presets (cited data) and user targets: loading, mapping onto domains, validation."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from replaymill.schemas.domains import DOMAINS
from replaymill.schemas.mixtures import get_preset, load_user_target, parse_key, preset_names, resolve_target


def test_presets_load_normalized_and_cited():
    assert preset_names() == ["dolma", "llama1", "pile", "redpajama-1t", "slimpajama"]
    for name in preset_names():
        mix = get_preset(name)
        assert mix.citation and sum(mix.weights.values()) == pytest.approx(1.0)
        assert set(mix.weights) <= set(DOMAINS)
    llama = get_preset("llama1").weights
    assert llama["web"] == pytest.approx(0.82) and llama["forum"] == pytest.approx(0.02)
    pile = get_preset("pile")
    assert len(pile.components) == 22 and sum(c.weight for c in pile.components) == pytest.approx(100.0, abs=0.01)
    assert get_preset("pile").target(with_lang=True)["wiki/en"] == pytest.approx(0.0153)


def test_user_target(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("by: docs\nweights: {web: 3, code: 1, books/de: 0}\n")
    user = load_user_target(path)
    assert user.by == "docs" and user.target() == {"code": 0.25, "web": 0.75}
    path.write_text("web: 1\nbooks/de: 1\n")  # a bare mapping works too
    assert resolve_target(str(path))[0] == {"books/de": 0.5, "web": 0.5}
    assert resolve_target("llama1")[1] == "tokens"
    for bad in ("weights: {webz: 1}\n", "weights: {web: -1, code: 2}\n", "weights: {web: 0}\n", "weights: {web/: 1}\n"):
        path.write_text(bad)
        with pytest.raises((ValidationError, ValueError)):
            load_user_target(path)
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        resolve_target(str(tmp_path / "missing.yaml"))
    assert parse_key("web/en") == ("web", "en")
