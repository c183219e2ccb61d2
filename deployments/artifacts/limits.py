"""What reading one artifact may cost: the limits (settings and constants) and the budget that spends them.

Every limit is checked while streaming, before the bytes or the allocation it bounds, and a refusal
is an `InvalidArtifact` (400) naming the limit and, for settings, the variable that sets it.
The budget's counters (`entries`, `unpacked`, `cpu_seconds()`) also let tests measure what an
input cost without timing anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from common.errors import BadRequest

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# constants: formats need no more; documented in docs/artifacts.md
MAX_PAX_HEADER = 64 * KIB     # one pax extended header (its records)
MAX_LONG_NAME = 4 * KIB       # one GNU long name or long link record (PATH_MAX)
MAX_META_CHAIN = 8            # pax / GNU records in front of one entry
UNPACK_SLACK = 1 * MIB        # each compressed member may unpack to ratio × its size + this
XZ_MEMORY = 80 * MIB          # xz decoder memory (xz -9 needs 65 MiB)
ZSTD_WINDOW = 64 * MIB        # largest zstd window (zstd -19 uses 8 MiB)


class InvalidArtifact(BadRequest):
    """The upload is not a well-formed .mender artifact, or reading it would cost too much (400)."""


def size_text(n: int) -> str:
    """A byte count as operators read it (`64 KiB`, `1000 bytes`)."""
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class ReadLimits:
    """The configurable limits (defaults = the settings' defaults in common/config.py)."""

    max_unpacked: int = 20 * GIB   # DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE
    max_ratio: float = 2000.0      # DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO
    max_entries: int = 10000       # DEPLOYMENTS_ARTIFACT_MAX_ENTRIES
    max_cpu_seconds: float = 600.0  # DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS

    @classmethod
    def from_config(cls, config) -> "ReadLimits":
        return cls(max_unpacked=int(config["DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE"]),
                   max_ratio=float(config["DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO"]),
                   max_entries=int(config["DEPLOYMENTS_ARTIFACT_MAX_ENTRIES"]),
                   max_cpu_seconds=float(config["DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS"]))


class Budget:
    """The limits of one artifact being read, and what it has spent so far.

    CPU time is the reading thread's own (`time.thread_time`), so a loaded machine does not make
    an upload fail, and a busy one cannot hide a costly input."""

    def __init__(self, limits: ReadLimits | None = None):
        self.limits = limits or ReadLimits()
        self.entries = 0
        self.unpacked = 0
        self._cpu_start = time.thread_time()

    def cpu_seconds(self) -> float:
        return time.thread_time() - self._cpu_start

    def tick(self) -> None:
        """Called on every read: stop when the CPU budget is spent."""
        if time.thread_time() - self._cpu_start > self.limits.max_cpu_seconds:
            raise InvalidArtifact(f"invalid artifact: reading it took more than {self.limits.max_cpu_seconds:g} s "
                                  f"of CPU time (DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS)")

    def entry(self, where: str) -> None:
        """One more tar header block (an entry, or a pax / GNU record) anywhere in the artifact."""
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise InvalidArtifact(f"invalid artifact: {where}: more than {self.limits.max_entries} tar entries "
                                  f"in the artifact (DEPLOYMENTS_ARTIFACT_MAX_ENTRIES)")

    def member(self, name: str, compressed_size: int) -> "MemberBudget":
        """The budget of one (compressed) member of the outer tar: header.tar.*, data/NNNN.tar.*."""
        return MemberBudget(self, name, compressed_size)


class MemberBudget:
    """Bytes unpacked from one member: at most ratio × its size + UNPACK_SLACK, and the artifact's
    total at most the absolute cap."""

    def __init__(self, budget: Budget, name: str, compressed_size: int):
        self.budget = budget
        self.name = name
        self.compressed_size = compressed_size
        self.allowed = int(budget.limits.max_ratio * compressed_size) + UNPACK_SLACK
        self.unpacked = 0

    def _ratio_error(self, amount: str) -> InvalidArtifact:
        return InvalidArtifact(
            f"invalid artifact: {self.name} {amount} more than {self.budget.limits.max_ratio:g} times its "
            f"{self.compressed_size} bytes (DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO)")

    def _total_error(self, amount: str) -> InvalidArtifact:
        return InvalidArtifact(
            f"invalid artifact: {self.name} {amount} more than {size_text(self.budget.limits.max_unpacked)} in all "
            f"(DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE)")

    def claim(self, what: str, size: int) -> None:
        """A tar header says `size` bytes follow: refuse at once if they cannot fit."""
        if self.unpacked + size > self.allowed:
            raise self._ratio_error(f"claims {size} bytes for {what!r}, which would unpack to")
        if self.budget.unpacked + size > self.budget.limits.max_unpacked:
            raise self._total_error(f"claims {size} bytes for {what!r}, which would unpack the artifact to")

    def spend(self, n: int) -> None:
        """`n` more bytes came out of the decompressor."""
        self.unpacked += n
        self.budget.unpacked += n
        if self.unpacked > self.allowed:
            raise self._ratio_error("unpacks to")
        if self.budget.unpacked > self.budget.limits.max_unpacked:
            raise self._total_error("unpacks the artifact to")
        self.budget.tick()

