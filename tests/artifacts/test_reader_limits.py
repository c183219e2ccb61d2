"""The issue's hostile artifacts (#14), against the reader and through the upload API: each is refused
with a 400 naming its limit, at a cost measured by counters (bytes read, bytes unpacked, allocations)
or under a hard rlimit in a child process, never by the clock."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import subprocess
import sys
import textwrap
import tracemalloc

import pytest
import zstandard

from deployments.artifacts.limits import GIB, MIB, Budget, InvalidArtifact, ReadLimits
from deployments.artifacts.parser import parse_artifact
from deployments.artifacts.streams import DecompressError, decompressing
from tests.artifacts.helpers import assert_nothing_left, upload
from tests.artifacts.tools import END_OF_ARCHIVE, compress, craft, raw_entry, raw_header, tar_bytes

ZEROS_FRAME_SIZE = 64 * MIB


class CountingSource(io.RawIOBase):
    """A source that counts what the reader pulled from it."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)
        self.pulled = 0

    def readable(self):
        return True

    def read(self, n=-1):
        data = self._buf.read(n)
        self.pulled += len(data)
        return data


def refused(data: bytes, reason: str, limits: ReadLimits | None = None) -> tuple[Budget, CountingSource]:
    budget = Budget(limits)
    source = CountingSource(data)
    with pytest.raises(InvalidArtifact) as exc:
        parse_artifact(source, budget=budget)
    assert reason in exc.value.message, exc.value.message
    return budget, source


# --------------------------------------------------------------------------- the three inputs

def pax_digits_in_front(valid: bytes) -> bytes:
    """#14: a pax header of 400,000 digits in front of a valid artifact (225 KB with padding)."""
    return raw_entry(b"PaxHeaders/version", b"4" * 400_000 + b" path=version\n", b"x") + valid


def zstd_payload_claiming(flag: bytes) -> bytes:
    """#14: a ~40 KB upload whose zstd payload holds a pax (x) or GNU long name (L) record claiming 512 MiB."""
    payload = raw_header(b"././@LongLink" if flag == b"L" else b"PaxHeaders/app.conf", 512 * MIB, flag) \
        + os.urandom(40_000)
    return craft("claims", compression="zst", data_override=zstandard.ZstdCompressor().compress(payload))


def zstd_zeros(total: int, file_size: int) -> bytes:
    """A zstd payload whose tar holds `total` bytes of zeros in files of `file_size` each, built from
    one compressed 64 MiB frame repeated (32 GiB compress to about 1 MB)."""
    assert file_size % ZEROS_FRAME_SIZE == 0
    zeros = zstandard.ZstdCompressor().compress(bytes(ZEROS_FRAME_SIZE))
    cz = zstandard.ZstdCompressor()
    parts = []
    for i in range(total // file_size):
        parts.append(cz.compress(raw_header(f"zero{i:04d}".encode(), file_size)))
        parts.append(zeros * (file_size // ZEROS_FRAME_SIZE))
    parts.append(cz.compress(END_OF_ARCHIVE))
    return b"".join(parts)


def zeros_artifact(total: int = 32 * GIB, file_size: int = 64 * MIB) -> bytes:
    digest = hashlib.sha256()
    for _ in range(file_size // ZEROS_FRAME_SIZE):
        digest.update(bytes(ZEROS_FRAME_SIZE))
    names = [f"zero{i:04d}" for i in range(total // file_size)]
    return craft("zeros", compression="zst", files=[(n, b"") for n in names],
                 digests=dict.fromkeys(names, digest.hexdigest()), data_override=zstd_zeros(total, file_size))


@pytest.fixture(scope="module")
def valid() -> bytes:
    return craft("valid", compression="gz")


def test_a_pax_header_of_400000_digits_is_refused_from_its_header_block(valid):
    assert parse_artifact(io.BytesIO(valid)).name == "valid"
    budget, source = refused(pax_digits_in_front(valid), "pax header of 400014 bytes (at most 64 KiB)")
    assert source.pulled == 512 and budget.entries == 1 and budget.unpacked == 0


@pytest.mark.parametrize("flag,label", [(b"x", "pax header"), (b"L", "GNU long name")])
def test_a_zstd_payload_record_claiming_512_mib_allocates_nothing(flag, label):
    data = zstd_payload_claiming(flag)
    assert len(data) < 60_000
    tracemalloc.start()
    try:
        budget, _ = refused(data, f"data/0000.tar.zst: a {label} of {512 * MIB} bytes (at most")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert budget.unpacked <= 16 * 1024  # the small header tar and one header block: not a byte of the record
    assert peak < 4 * MIB, peak


def test_32_gib_of_zeros_in_one_file_is_refused_by_its_claim():
    data = craft(
        "zeros", compression="zst", files=[("zero", b"")],
        data_override=zstandard.ZstdCompressor().compress(raw_header(b"zero", 32 * GIB)) + b"\0" * 1_000_000)
    budget, _ = refused(data, f"claims {32 * GIB} bytes for 'zero', which would unpack to more than 2000 times")
    assert budget.unpacked <= 16 * 1024


def test_32_gib_of_zeros_in_a_1_mb_artifact_stops_at_the_ratio():
    data = zeros_artifact()
    assert len(data) < 1_200_000
    # refused at the first file whose tar header claims more than the ratio leaves
    budget, source = refused(data, "which would unpack to more than 2000 times its")
    assert 1900 * MIB < budget.unpacked <= 2000 * len(data) + 2 * MIB  # it got as far as the ratio, no further
    assert source.pulled < len(data)


def test_bytes_are_counted_as_they_come_out_of_the_decompressor():
    """Header files are not claimed ahead (each is at most 1 MiB): the count stops them."""
    header_info = b'{"payloads":[{"type":"t"}],"artifact_provides":{"artifact_name":"b"},' \
                  b'"artifact_depends":{"device_type":["d"]}}'
    scripts = [(f"scripts/ArtifactInstall_Enter_{i:02d}", bytes(MIB)) for i in range(5)]
    data = craft(compression="xz", header_members=[("header-info", header_info), *scripts])
    budget, _ = refused(data, "header.tar.xz unpacks to more than 2000 times its")
    assert budget.unpacked <= 2000 * len(data) + 2 * MIB


def test_gzip_payloads_never_reach_the_default_ratio():
    """gzip tops out at 1032:1 (on zeros): the default ratio never refuses mender-artifact's default."""
    import gzip
    zeros = bytes(64 * MIB)
    payload = gzip.compress(raw_header(b"zeros", len(zeros)) + zeros + END_OF_ARCHIVE, compresslevel=9)
    assert len(raw_header(b"zeros", len(zeros)) + zeros) / len(payload) > 1000
    data = craft("sparse", files=[("zeros", b"")], data_override=payload,
                 digests={"zeros": hashlib.sha256(zeros).hexdigest()})
    assert parse_artifact(io.BytesIO(data)).updates[0]["files"][0]["size"] == 64 * MIB


def test_the_absolute_cap_and_the_cpu_cap_stop_what_the_ratio_allows():
    data = zeros_artifact()
    limits = ReadLimits(max_ratio=1e9, max_unpacked=256 * MIB)
    budget, _ = refused(data, "more than 256 MiB in all (DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE)", limits)
    assert 256 * MIB - 64 * MIB < budget.unpacked <= 256 * MIB + MIB
    limits = ReadLimits(max_ratio=1e9, max_unpacked=64 * GIB, max_cpu_seconds=0.05)
    budget, _ = refused(data, "took more than 0.05 s of CPU time (DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS)", limits)
    assert budget.unpacked < 32 * GIB and budget.cpu_seconds() >= 0.05


def test_the_three_inputs_under_hard_memory_and_cpu_rlimits(tmp_path, valid):
    """The same inputs in a child whose address space may grow by 256 MiB and whose CPU time is
    capped at 30 s: tarfile needed 1.5 GB and 27 s for them."""
    inputs = {"digits": pax_digits_in_front(valid), "pax": zstd_payload_claiming(b"x"),
              "longname": zstd_payload_claiming(b"L"), "zeros": zeros_artifact()}
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
    script = textwrap.dedent(f"""
        import resource, sys
        from deployments.artifacts.limits import InvalidArtifact
        from deployments.artifacts.parser import parse_artifact
        vm = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 256 * 1024 * 1024,) * 2)
        used = resource.getrusage(resource.RUSAGE_SELF)
        resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 30,) * 2)
        for name in {sorted(inputs)!r}:
            try:
                with open(f"{tmp_path}/{{name}}", "rb") as f:
                    parse_artifact(f)
            except InvalidArtifact as exc:
                print(name, "refused:", exc.message)
            else:
                sys.exit(name + " was accepted")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("refused:") == 4 and "MemoryError" not in r.stderr, r.stdout


# --------------------------------------------------------------------------- other limits

def test_entry_limit_counts_every_tar_of_the_artifact():
    files = [(f"f{i}", b"x") for i in range(20)]
    data = craft("many", files=files)
    assert len(parse_artifact(io.BytesIO(data)).updates[0]["files"]) == 20
    refused(data, "more than 25 tar entries in the artifact (DEPLOYMENTS_ARTIFACT_MAX_ENTRIES)",
            ReadLimits(max_entries=25))


def test_long_payload_names_in_pax_and_gnu_form_are_read():
    import tarfile
    name = "n" * 200
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        data = craft("long", files=[(name, b"content")],
                     data_override=compress(tar_bytes([(name, b"content")], fmt=fmt), "gz"))
        assert parse_artifact(io.BytesIO(data)).updates[0]["files"][0]["name"] == name


def test_only_zero_padding_may_follow_the_archive(valid):
    assert parse_artifact(io.BytesIO(valid + b"\0" * 20000)).name == "valid"
    refused(valid + b"\0" * 512 + b"tail", "data after the end of the archive")


def test_decoders_get_bounded_memory():
    raw = os.urandom(1000) * 100
    big_dict = lzma.compress(raw, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 8 * MIB, "mf": lzma.MF_HC4}])
    assert decompressing(".xz", io.BytesIO(big_dict), xz_memory=16 * MIB, zstd_window=MIB).read(10) == raw[:10]
    with pytest.raises(DecompressError, match="[Mm]emory"):
        decompressing(".xz", io.BytesIO(big_dict), xz_memory=4 * MIB, zstd_window=MIB).read(10)
    params = zstandard.ZstdCompressionParameters(window_log=24)
    streaming = zstandard.ZstdCompressor(compression_params=params).compressobj()  # no content size: a real window
    wide = streaming.compress(raw) + streaming.flush()
    assert decompressing(".zst", io.BytesIO(wide), xz_memory=MIB, zstd_window=16 * MIB).read(10) == raw[:10]
    with pytest.raises(DecompressError, match="too much memory"):
        decompressing(".zst", io.BytesIO(wide), xz_memory=MIB, zstd_window=8 * MIB).read(10)


def test_concatenated_gzip_members_and_corrupt_streams():
    tar = tar_bytes([("app.conf", b"hello\n")])
    two = compress(tar[:700], "gz") + compress(tar[700:], "gz")
    meta = parse_artifact(io.BytesIO(craft("multi", data_override=two)))
    assert meta.updates[0]["files"][0]["checksum"] == hashlib.sha256(b"hello\n").hexdigest()
    refused(craft("c", data_override=compress(tar, "gz")[:-12]), "truncated")
    refused(craft("c", data_override=compress(tar, "gz") + b"garbage"), "corrupt compressed data")
    refused(craft("c", compression="xz", data_override=b"\xfd7zXZ\0" + b"\1" * 100), "corrupt compressed data")


# --------------------------------------------------------------------------- through the API

def test_hostile_uploads_answer_400_and_leave_nothing(app, operator, valid):
    op = operator
    for data, reason in ((pax_digits_in_front(valid), "pax header"),
                         (zstd_payload_claiming(b"L"), "GNU long name"),
                         (zeros_artifact(total=4 * GIB, file_size=GIB), "DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO")):
        r = upload(op, data)
        assert r.status_code == 400 and reason in r.get_json()["error"], r.get_json()
        assert r.get_json()["request_id"]
    assert_nothing_left(app, op)


def test_limits_are_settings(make_app):
    from tests.helpers import Operator
    app = make_app("sqlite", DEPLOYMENTS_ARTIFACT_MAX_ENTRIES="12", DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO="2",
                   DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE=str(64 * MIB), DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS="30")
    op = Operator.create(app, app.test_client())
    r = upload(op, craft("many", files=[(f"f{i}", b"x") for i in range(12)]))
    assert r.status_code == 400 and "DEPLOYMENTS_ARTIFACT_MAX_ENTRIES" in r.get_json()["error"]
    assert upload(op, craft("few", files=[(f"f{i}", b"x") for i in range(3)])).status_code == 201
