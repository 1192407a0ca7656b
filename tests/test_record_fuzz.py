"""The standing record fuzzer (issue 10): random JSON shapes, field types, encodings and containers,
mixed with every kind of bad line, read the way build reads them.

Each example writes one file: good records (a non-blank text under `text`, `raw_content` or
`content`, any id and extra fields of any JSON type, Pile/Dolma/C4 shapes) interleaved with bad
lines whose reject reason is known in advance, joined with LF or CRLF, blank lines between, a BOM
maybe, then stored plain (read in random byte ranges), gzip (one member or one per line), zstd,
bz2, xz, or inside a tar, under its true name or a lying one. The readers must give exactly one
result per record (`read == kept + sum(dropped)` at the read stage), every good document with its
text intact and in order, each bad line as the expected reject, and nothing Arrow or a UTF-8 file
cannot store. In-process and bounded (40 examples), so it runs in CI in seconds; one Beam build of
a fixed fuzzed corpus checks the same through the whole pipeline and its manifest funnel.
"""
from __future__ import annotations

import bz2
import collections
import gzip
import io
import json
import lzma
import tarfile
import tempfile
from pathlib import Path

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaymill.schemas.document import to_record_batch
from replaymill.transforms.records import REJECT_REASONS

from conftest import read_path

LIMIT = 4096  # max_record_bytes: good lines stay well under it, the too_large line over it

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                           max_size=3), max_leaves=8)
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(lambda t: t.strip())
ID_VALUES = st.none() | st.text(max_size=12) | st.integers()


@st.composite
def good_record(draw) -> dict:
    """A record the build must keep: its shape, text key and extra fields drawn at random."""
    shape = draw(st.sampled_from(["generic", "pile", "dolma", "c4", "ccnet", "code"]))
    body = draw(text)
    extra = draw(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ("text", "raw_content", "content",
                                                                                "id", "meta", "source")),
                                 json_value, max_size=3))
    if shape == "pile":
        rec = {"text": body, "meta": {"pile_set_name": draw(st.text(max_size=10))}}
    elif shape == "dolma":
        rec = {"id": draw(st.text(max_size=12)), "text": body, "source": draw(st.text(max_size=8)),
               "metadata": {"url": draw(st.text(max_size=20))}}
    elif shape == "c4":
        rec = {"text": body, "url": draw(st.text(max_size=20)), "timestamp": "2019-04-25T12:57:54Z"}
    elif shape == "ccnet":
        rec = {"raw_content": body, "url": "http://x/", "digest": "sha1:X", "cc_segment": "s"}
    elif shape == "code":
        rec = {"content": body, "repo": draw(st.text(max_size=10))}
    else:
        rec = {"text": body, "id": draw(ID_VALUES)}
    return {**extra, **rec}


def _with_surrogate(draw) -> bytes:
    """A good-looking record with a lone surrogate escape in one (drawn) field."""
    field = draw(st.sampled_from(["id", "url", "source", "metadata", "extra", "text"]))
    bad = "x\\ud800y"
    rec = {"id": "i", "text": "fine text", "source": "cc", "metadata": {"url": "u"}}
    raw = json.dumps(rec)
    target = {"id": '"id": "i"', "url": '"metadata": {"url": "u"}', "source": '"source": "cc"',
              "metadata": '"metadata": {"url": "u"}', "extra": '"text"', "text": '"text": "fine text"'}[field]
    replacement = {"id": f'"id": "{bad}"', "url": f'"metadata": {{"url": "{bad}"}}', "source": f'"source": "{bad}"',
                   "metadata": f'"metadata": {{"url": "u", "t{bad}": 1}}', "extra": f'"k": ["{bad}"], "text"',
                   "text": f'"text": "fine {bad} text"'}[field]
    return raw.replace(target, replacement, 1).encode()


@st.composite
def bad_line(draw) -> tuple[bytes, str]:
    """One line the build must reject, with the reason it must give."""
    kind = draw(st.sampled_from(["malformed", "not_object", "bad_bytes", "surrogate", "missing", "not_string",
                                 "empty", "too_large"]))
    if kind == "malformed":
        tail = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters='"'), max_size=10))
        return b'{"text": "unterminated' + tail.encode(), "malformed_json"
    if kind == "not_object":
        value = draw(st.lists(st.integers(), max_size=3) | st.integers() | st.text(max_size=5).map(lambda s: s or "s"))
        return json.dumps(value).encode(), "malformed_json"
    if kind == "bad_bytes":
        return b'{"text": "caf\xe9 ' + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + b'"}', "bad_utf8"
    if kind == "surrogate":
        return _with_surrogate(draw), "bad_utf8"
    if kind == "missing":
        return json.dumps({"meta": draw(json_value), "title": "t"}).encode(), "missing_text"
    if kind == "not_string":
        value = draw(st.integers() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
                     | st.lists(st.integers(), min_size=1, max_size=3) | st.none())
        return json.dumps({"text": value}).encode(), "text_not_string"
    if kind == "empty":
        return json.dumps({"text": draw(st.sampled_from(["", " ", "\n\t ", "\u3000"]))}).encode(), "empty_text"
    return b'{"text": "' + b"x" * (LIMIT + draw(st.integers(1, 500))) + b'"}', "too_large"


CONTAINERS = ["plain", "gz", "gz_members", "zst", "bz2", "xz", "tar", "tar_zst_member"]


def store(path: Path, body: bytes, lines: list[bytes], container: str, truthful: bool) -> Path:
    """Write `body` in `container` under a name that tells the truth or lies about its codec."""
    data = {
        "plain": lambda: body,
        "gz": lambda: gzip.compress(body, mtime=0),
        "gz_members": lambda: b"".join(gzip.compress(line, mtime=0) for line in lines) or gzip.compress(b""),
        "zst": lambda: zstandard.ZstdCompressor().compress(body),
        "bz2": lambda: bz2.compress(body),
        "xz": lambda: lzma.compress(body),
    }
    if container.startswith("tar"):
        buf = io.BytesIO()
        member = zstandard.ZstdCompressor().compress(body) if container == "tar_zst_member" else body
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("shard/part.jsonl.zst" if container == "tar_zst_member" else "shard/part.jsonl")
            info.size = len(member)
            tar.addfile(info, io.BytesIO(member))
        name, payload = "data.jsonl.tar", buf.getvalue()
    else:
        payload = data[container]()
        true_suffix = {"plain": "", "gz": ".gz", "gz_members": ".gz", "zst": ".zst", "bz2": ".bz2", "xz": ".xz"}[container]
        suffix = true_suffix if truthful else {"": ".gz", ".gz": ".zst", ".zst": ".gz", ".bz2": "", ".xz": ".gz"}[true_suffix]
        name = "data.jsonl" + suffix
        if not truthful and container in ("bz2", "xz"):
            name = "data.jsonl"  # a compressed file named plain: sniffed by its magic
    out = path / name
    out.write_bytes(payload)
    return out


@st.composite
def corpus(draw):
    entries = draw(st.lists(st.one_of(good_record().map(lambda r: ("good", r)), bad_line().map(lambda b: ("bad", b))),
                            min_size=1, max_size=25))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines, goods, reasons = [], [], []
    for kind, value in entries:
        if kind == "good":
            ensure_ascii = draw(st.booleans())
            lines.append(json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8"))
            goods.append(next(value[k] for k in ("text", "raw_content", "content") if k in value))
        else:
            lines.append(value[0])
            reasons.append(value[1])
        if draw(st.integers(0, 5)) == 0:
            lines.append(b"   ")  # a blank line is no record
    body = newline.join(lines) + draw(st.sampled_from([newline, b""]))
    if draw(st.booleans()) and entries[0][0] == "good":
        body = b"\xef\xbb\xbf" + body
    container = draw(st.sampled_from(CONTAINERS))
    return body, [line + newline for line in lines], goods, reasons, container, draw(st.booleans()), draw(
        st.integers(64, 2048))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(corpus())
def test_every_record_is_one_result_and_no_good_document_is_lost(case):
    body, lines, goods, reasons, container, truthful, range_bytes = case
    with tempfile.TemporaryDirectory() as tmp:
        path = store(Path(tmp), body, lines, container, truthful)
        docs, rejects = read_path(path, LIMIT, range_bytes)
    assert len(docs) + len(rejects) == len(goods) + len(reasons)  # read == kept + sum(dropped), per record
    assert [d["text"] for d in docs] == goods  # every good document, text intact, in order
    assert collections.Counter(r["reason"] for r in rejects) == collections.Counter(reasons)
    assert {r["reason"] for r in rejects} <= set(REJECT_REASONS)
    if docs:
        assert to_record_batch(docs).num_rows == len(docs)  # storable in Arrow
    json.dumps(rejects, ensure_ascii=False).encode("utf-8")  # writable to _rejects/


def test_fuzzed_corpus_through_the_build(tmp_path, capsys):
    """One fixed fuzzed corpus in every container through the whole Beam build: the manifest's
    funnel adds up, and every distinct good text is in the shards."""
    import random

    import pyarrow.dataset as pads

    from replaymill.pipeline.cli import main
    from replaymill.transforms.normalize import normalize_for_dedup

    rng = random.Random(10)
    inputs = tmp_path / "in"
    inputs.mkdir()
    good_texts, total = [], 0
    for n, container in enumerate(CONTAINERS):
        case = _seeded_case(rng)
        body, lines, goods, reasons = case
        sub = inputs / f"c{n}"
        sub.mkdir()
        store(sub, body, lines, container, truthful=rng.random() < 0.5)
        good_texts += goods
        total += len(goods) + len(reasons)
    out = tmp_path / "out"
    assert main(["build", "-i", str(inputs), "-o", str(out), "--in-memory"]) == 0
    funnel = json.loads((out / "_manifest.json").read_text())["funnel"]
    assert funnel["read"] == total
    assert funnel["read"] == funnel["kept"] + sum(funnel["dropped"].values())
    kept = pads.dataset(str(out), format="arrow").to_table(columns=["text"]).column("text").to_pylist()
    assert {normalize_for_dedup(t) for t in kept} == {normalize_for_dedup(t) for t in good_texts}


def _seeded_case(rng) -> tuple[bytes, list[bytes], list[str], list[str]]:
    """A corpus like `corpus()`'s, drawn from a seeded RNG (the Beam test runs once, not per example)."""
    lines, goods, reasons = [], [], []
    alphabet = "abc xyz\u00e9\u4e2d\U0001f600\n\t\"\\"
    for i in range(30):
        if rng.random() < 0.6:
            body = "doc %d " % i + "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 200)))
            key = rng.choice(["text", "raw_content", "content"])
            rec = {key: body, "id": rng.choice([None, f"id{i}", i, ""]), "n": rng.random()}
            lines.append(json.dumps(rec, ensure_ascii=rng.random() < 0.5).encode())
            goods.append(body)
        else:
            bad, reason = rng.choice([(b'{"text": "unterminated', "malformed_json"), (b"[1, 2]", "malformed_json"),
                                      (b'{"text": "caf\xe9"}', "bad_utf8"), (b'{"id": "x\\ud800", "text": "t"}', "bad_utf8"),
                                      (b'{"title": "no text"}', "missing_text"), (b'{"text": 5}', "text_not_string"),
                                      (b'{"text": "  "}', "empty_text")])
            lines.append(bad)
            reasons.append(reason)
    return b"\n".join(lines) + b"\n", [line + b"\n" for line in lines], goods, reasons
