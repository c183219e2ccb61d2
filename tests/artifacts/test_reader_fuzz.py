"""Fuzzing the artifact reader with hypothesis (derandomized: the same examples on every run, so CI
cannot flake; a few seconds in all). Property: the reader returns a parsed artifact or raises
InvalidArtifact, never anything else, and never spends past its limits."""

from __future__ import annotations

import io
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.artifacts.limits import UNPACK_SLACK, Budget, InvalidArtifact, ReadLimits
from deployments.artifacts.parser import ArtifactMeta, parse_artifact
from deployments.artifacts.streams import CHUNK
from tests.artifacts.tools import END_OF_ARCHIVE, compress, craft, pax_record, raw_entry, raw_header, tar_bytes

LIMITS = ReadLimits(max_unpacked=4 * 1024 * 1024, max_ratio=50.0, max_entries=300, max_cpu_seconds=30.0)
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(data: bytes) -> None:
    """The property, for one input."""
    budget = Budget(LIMITS)
    try:
        assert isinstance(parse_artifact(io.BytesIO(data), budget=budget), ArtifactMeta)
    except InvalidArtifact as exc:
        assert exc.status == 400 and exc.message.startswith("invalid artifact")
    # one read may pass a limit before it is refused, never more
    assert budget.entries <= LIMITS.max_entries + 1
    assert budget.unpacked <= LIMITS.max_unpacked + CHUNK
    assert budget.unpacked <= LIMITS.max_ratio * len(data) * 3 + 3 * UNPACK_SLACK + CHUNK


SEEDS = [craft("gz"), craft("zst", compression="zst"), craft("xz", compression="xz"),
         craft("plain", compression="", files=[("a", b"x" * 3000), ("b", b"")], signed=True)]


@FUZZ
@given(seed=st.sampled_from(SEEDS), edits=st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "zero-run"]),
              st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.integers(1, 600)),
    min_size=1, max_size=4))
def test_mutated_artifacts(seed, edits):
    data = bytearray(seed)
    for op, where, value, length in edits:
        pos = int(where * len(data)) if data else 0
        if op == "flip" and data:
            data[pos] ^= 1 << (value % 8)
        elif op == "set" and data:
            data[pos] = value
        elif op == "insert":
            data[pos:pos] = bytes([value]) * length
        elif op == "delete":
            del data[pos:pos + length]
        elif op == "truncate":
            del data[pos:]
        else:
            data[pos:pos + length] = bytes(min(length, len(data) - pos))
    check(bytes(data))


# --------------------------------------------------------------------------- structured streams

_FLAGS = [b"0", b"0", b"0", b"\0", b"7", b"1", b"2", b"5", b"x", b"g", b"L", b"K", b"S", b"V", b"Z"]
_PAX_KEYS = [b"path", b"size", b"mtime", b"linkpath", b"GNU.sparse.map", b"comment", b"hdrcharset"]

pax_values = st.one_of(st.binary(max_size=40), st.integers(-5, 1 << 40).map(lambda n: str(n).encode()),
                       st.sampled_from([b"1e99", b"nan", b"9" * 30, b"app.conf", b"\xff\xfe", b"a/b"]))


@st.composite
def tar_entry(draw) -> bytes:
    flag = draw(st.sampled_from(_FLAGS))
    if flag in (b"x", b"g"):
        body = b"".join(pax_record(draw(st.sampled_from(_PAX_KEYS)), draw(pax_values))
                        for _ in range(draw(st.integers(0, 3))))
        if draw(st.booleans()):
            body = draw(st.binary(max_size=64))  # not records at all
        return raw_entry(b"PaxHeader", body, flag)
    name = draw(st.sampled_from([b"app.conf", b"x" * 99, b"../up", b"", b"a/b", "ü".encode(), b"\xff", b"."]))
    data = draw(st.binary(max_size=700))
    if draw(st.integers(0, 9)) == 0:  # a size field that lies, in any encoding
        field = draw(st.sampled_from([b"77777777777\0", b"\x80" + b"\0" * 7 + b"\x40" + b"\0" * 3,
                                      b"\xff" * 12, b"garbage!!!!\0", b"%011o\0" % (1 << 30)]))
        return raw_header(name, typeflag=flag, size_field=field) + data
    return raw_entry(name, data, flag)


@st.composite
def payload_tar(draw) -> bytes:
    body = b"".join(draw(st.lists(tar_entry(), max_size=5)))
    ending = draw(st.sampled_from([END_OF_ARCHIVE, b"", b"\0" * 512, b"\0" * 100, b"junk" * 200]))
    return body + ending


@FUZZ
@given(inner=payload_tar(), compression=st.sampled_from(["gz", "xz", "zst", ""]),
       in_header=st.booleans())
def test_structured_hostile_tars_inside_an_artifact(inner, compression, in_header):
    if in_header:
        data = craft("fuzz", compression=compression, header_members=[])
        data = _replace_member(data, f"header.tar{'.' + compression if compression else ''}",
                               compress(inner, compression))
    else:
        data = craft("fuzz", compression=compression, data_override=compress(inner, compression))
    check(data)


@FUZZ
@given(outer=payload_tar())
def test_structured_hostile_outer_tars(outer):
    check(outer)
    check(raw_entry(b"version", b'{"format":"mender","version":3}') + outer)


def _replace_member(artifact: bytes, name: str, content: bytes) -> bytes:
    out = []
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tf:  # our own, well-formed test input
        for m in tf.getmembers():
            out.append((m.name, content if m.name == name else tf.extractfile(m).read()))
    return tar_bytes(out)
