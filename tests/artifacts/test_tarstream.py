"""The bounded tar reader: every format real writers use (ustar, pax, GNU), and every bound."""

from __future__ import annotations

import io
import tarfile

import pytest

from deployments.artifacts.limits import Budget, InvalidArtifact, ReadLimits
from deployments.artifacts.tarstream import TarReader, parse_pax
from tests.artifacts.tools import END_OF_ARCHIVE, pax_record, raw_entry, raw_header


def entries(data: bytes, budget: Budget | None = None) -> list[tuple[str, int, str, bytes]]:
    reader = TarReader(io.BytesIO(data), budget or Budget(), "test.tar")
    out = []
    while (e := reader.next()) is not None:
        out.append((e.name, e.size, e.kind, reader.read(e.size + 1) if e.is_regular else b""))
    return out


def bad(data: bytes, reason: str, budget: Budget | None = None) -> None:
    with pytest.raises(InvalidArtifact) as exc:
        entries(data, budget)
    assert reason in exc.value.message, exc.value.message


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reads_what_tarfile_writes_in_every_format(fmt):
    members = [("a", b"x" * 700), ("dir/" * 30 + "deep", b"deep"), ("ü-ñ.txt", b"utf8")]
    if fmt != tarfile.USTAR_FORMAT:  # ustar splits long paths at a '/' only
        members.append(("n" * 150, b""))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tf.addfile(info, io.BytesIO(data))
    assert entries(out.getvalue()) == [(n, len(d), "file", d) for n, d in members]


def test_pax_overrides_and_global_headers():
    pax = pax_record(b"path", "ünïcode-name".encode()) + pax_record(b"mtime", b"1700000000.25") + \
        pax_record(b"size", b"3") + pax_record(b"SCHILY.xattr.user.x", b"ignored")
    glob = pax_record(b"path", b"global-name")
    data = (raw_entry(b"././@PaxHeader", glob, b"g") + raw_entry(b"PaxHeader/x", pax, b"x")
            + raw_header(b"short", 999) + b"abc" + b"\0" * 509
            + raw_entry(b"second", b"2") + END_OF_ARCHIVE)
    reader = TarReader(io.BytesIO(data), Budget(), "t")
    first = reader.next()
    assert (first.name, first.size, first.mtime) == ("ünïcode-name", 3, 1700000000.25)
    assert reader.read(10) == b"abc"
    second = reader.next()
    assert second.name == "global-name" and reader.read() == b"2"  # a global path applies on
    assert reader.next() is None


def test_gnu_long_name_base256_size_v7_and_signed_checksums():
    long = b"L" * 300
    data = raw_entry(b"././@LongLink", long + b"\0", b"L", magic=b"ustar  \0") + raw_entry(b"cut", b"data")
    assert entries(data + END_OF_ARCHIVE) == [("L" * 300, 4, "file", b"data")]
    base256 = b"\x80" + (5).to_bytes(11, "big")
    assert entries(raw_header(b"b256", size_field=base256) + b"hello" + b"\0" * 507) == \
        [("b256", 5, "file", b"hello")]
    assert entries(raw_entry(b"v7", b"old", magic=b"\0" * 8)) == [("v7", 3, "file", b"old")]
    prefixed = raw_header(b"name", 0, prefix=b"some/prefix")
    assert entries(prefixed) == [("some/prefix/name", 0, "file", b"")]
    assert entries(raw_header(b"name", 0, prefix=b"ignored", magic=b"ustar  \0")) == [("name", 0, "file", b"")]
    # a header whose checksum was computed over signed bytes (old Sun tar) is accepted
    block = bytearray(raw_header("é".encode(), 0))
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(b - 256 if b > 127 else b for b in block)
    assert entries(bytes(block))[0][0] == "é"


def test_end_of_archive_and_truncation():
    assert entries(b"") == []
    assert entries(raw_entry(b"a", b"1")) == [("a", 1, "file", b"1")]  # end of stream on a block boundary
    reader = TarReader(io.BytesIO(raw_entry(b"a", b"1") + END_OF_ARCHIVE + b"after"), Budget(), "t")
    assert reader.next().name == "a" and reader.next() is None and reader.next() is None
    assert reader.offset == 1024 + 512  # stops at the marker: what follows is the caller's to check
    bad(raw_header(b"a", 1000) + b"short", "truncated")
    bad(raw_header(b"a", 0)[:300], "truncated")


def test_malformed_headers():
    block = bytearray(raw_header(b"a", 0))
    block[0] ^= 1
    bad(bytes(block), "bad tar header checksum")
    bad(raw_header(b"a", size_field=b"12x45678901\0"), "not a number")
    bad(raw_header(b"a", size_field=b"\xff" + b"\xff" * 11), "impossible size")
    bad(raw_header(b"\xff\xfe", 0), "not UTF-8")
    bad(raw_entry(b"p", pax_record(b"GNU.sparse.size", b"10"), b"x") + raw_entry(b"a", b""), "sparse")
    bad(raw_entry(b"p", pax_record(b"size", b"-1"), b"x") + raw_entry(b"a", b""), "malformed pax size")
    bad(raw_entry(b"p", pax_record(b"mtime", b"1e999"), b"x") + raw_entry(b"a", b""), "malformed pax mtime")
    for record in (b"x path=a\n", b"99 path=a\n", b"11 path=a\n\0", b"7 =ab\n", b"8 pathab\n", b"3 \n", b"9" * 20):
        with pytest.raises(InvalidArtifact):
            parse_pax(record, "t")
    assert parse_pax(pax_record(b"path", b"a=b") + b"\0\0\0", "t") == {b"path": b"a=b"}


def test_non_files_are_reported_and_never_read_past():
    for flag, kind in ((b"2", "symbolic link"), (b"1", "hard link"), (b"5", "directory"), (b"3", "character device"),
                       (b"S", "type b'S'"), (b"V", "type b'V'")):
        reader = TarReader(io.BytesIO(raw_header(b"x", 100, flag) + b"\0" * 1024), Budget(), "t")
        assert reader.next().kind == kind and reader.next() is None
    reader = TarReader(io.BytesIO(raw_entry(b"l", b"/etc/shadow\0", b"K") + raw_header(b"x", 0)), Budget(), "t")
    assert reader.next().kind == "hard link"  # a long link target makes any entry a link


def test_pax_and_long_name_records_are_bounded_before_they_are_read():
    # the CVE-2024-6232 shape: a pax header of 400,000 digits; and records claiming 512 MiB
    source = io.BytesIO(raw_entry(b"p", b"9" * 400_000 + b" path=x\n", b"x") + raw_entry(b"a", b""))
    with pytest.raises(InvalidArtifact) as exc:
        entries_of(source)
    assert "pax header of 400008 bytes (at most 64 KiB)" in exc.value.message
    assert source.tell() == 512  # the header block, not one byte of the record
    for flag, label in ((b"x", "pax header"), (b"g", "pax header"), (b"L", "GNU long name"), (b"K", "GNU long name")):
        source = io.BytesIO(raw_header(b"p", 512 << 20, flag))
        with pytest.raises(InvalidArtifact) as exc:
            entries_of(source)
        assert f"a {label} of {512 << 20} bytes" in exc.value.message and source.tell() == 512
    # within the size bound, a long length field is refused at once too
    bad(raw_entry(b"p", b"9" * 60_000 + b" path=x\n", b"x"), "malformed pax record length")
    chain = b"".join(raw_entry(b"p", pax_record(b"comment", b"x"), b"x") for _ in range(9))
    bad(chain + raw_entry(b"a", b""), "more than 8 pax or GNU records in front of one file")


def entries_of(source) -> list:
    reader = TarReader(source, Budget(), "t")
    while reader.next() is not None:
        pass


def test_every_header_block_counts_against_the_entry_limit():
    data = b"".join(raw_entry(f"f{i}".encode(), b"") for i in range(5))
    budget = Budget(ReadLimits(max_entries=5))
    assert len(entries(data, budget)) == 5 and budget.entries == 5
    with_pax = raw_entry(b"p", pax_record(b"path", b"named"), b"x") + data
    bad(with_pax, "more than 5 tar entries in the artifact (DEPLOYMENTS_ARTIFACT_MAX_ENTRIES)",
        Budget(ReadLimits(max_entries=5)))


def test_cpu_budget_is_checked_on_every_read():
    budget = Budget(ReadLimits(max_cpu_seconds=0.0))
    sum(range(100_000))  # spend a little CPU time
    bad(raw_entry(b"a", b"x"), "took more than 0 s of CPU time (DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS)", budget)
