"""Each row's text as a local file's last write wrote it, kept for the runner's next write.

A runner kept across runs (``sync --periodic``) builds a later report from the last one's
rows: an answer that did not change keeps its row object (report/answers.py: ``KeptRows``).
The workbook and the CSV files are written whole each run, so without this each of their
100,000 rows was written again from its values (the workbook's ≈ 1.3 s of rows and the CSV
files' ≈ 0.8 s of a later run; docs/performance.md, the forty-fifth round). With it a row held
again is copied as the last write wrote it, when what else its text depends on (its
signature: a sheet's columns, a CSV file's formats) is equal. A row's text holds nothing of
its place (a worksheet's rows and cells are written without references: xlsx_cells._row),
so a row is copied as it is wherever it now is.

The text stays where the last write wrote it: in that write's anonymous temporary file (a
workbook's sheets share one), which the runner holds open until the next write has copied
what it needs (:class:`KeptText`; ≈ 30 MB for a 100,000-answer report's sheets and CSV files,
in the page cache, not in the process). In memory are the rows and each one's offset.
Rows held again in their old order are copied as one run: one range of the last write's file.
(Until the forty-seventh round the text was kept in memory, compressed, with each row's number
left out; each later write decompressed it, put the numbers in and compressed again what it
kept: ≈ 0.25 s of a later run's 1.2 s, new answers being spread over all of it. Kept as it was
written, in memory, a first sync's peak went 29 MB over 200 MB.)

Rows are held, so no other live object can have their ``id``: a row is found again by it, as
the Sheets output's ``KeptEncoding`` finds its rows.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO
from typing import Any

_PLACE = 32  # bits of a row's place in its segment, in the position the index gives
_WRITE = 512  # new rows' texts gathered before they are written
_CHUNK = 1 << 20  # bytes a copy reads at a time


@dataclass(frozen=True, slots=True)
class _Segment:
    """Rows (held) written one after another under ``signature``: row ``i``'s text is bytes
    ``offsets[i]:offsets[i + 1]`` of the file."""

    rows: tuple[Sequence[Any], ...]
    offsets: array[int]
    signature: Any


@dataclass(frozen=True, slots=True)
class KeptText:
    """One file's (or sheet's) rows and where their text is in ``file``, by segments. The
    file may hold other texts too (a workbook's sheets share one); whoever keeps this closes
    it once no kept text is in it (:func:`close_unused`)."""

    file: IO[bytes]
    segments: tuple[_Segment, ...]


def close_unused(before: Iterable[KeptText], now: Iterable[KeptText]) -> None:
    """Close each file of ``before`` that no text of ``now`` is in."""
    kept = {id(text.file) for text in now}
    for file in {id(text.file): text.file for text in before}.values():
        if id(file) not in kept:
            file.close()


class RowTexts:
    """A write's rows' texts, written to ``out``: each run of rows held in ``before`` in the
    same order under an equal signature copied from there, every other row made by the
    caller. ``keep``: ``out`` is kept with where each row's text is (:meth:`kept`), for the
    next write; it must then be a file of the writer's own, which nothing else writes to
    once :meth:`kept` is asked. The one path both the workbook's sheets and the CSV files
    take. A row's text must not depend on its place in the file."""

    def __init__(self, before: KeptText | None, out: IO[bytes], *, keep: bool) -> None:
        self._before = before
        segments = before.segments if before is not None else ()
        self._segments = segments
        # id(row) → its segment << _PLACE | its place there: a run held in order is a run
        # of consecutive positions, which stops where its segment ends.
        self._index: dict[int, int] = {}
        for s, segment in enumerate(segments):  # a segment's rows at once, not one by one
            start = s << _PLACE
            self._index.update(
                zip(map(id, segment.rows), range(start, start + len(segment.rows)), strict=True)
            )
        # (id(kept signature), id(signature)) → both (held: their ids stay theirs), equal
        self._same: dict[tuple[int, int], tuple[Any, Any, bool]] = {}
        self._out = out
        self._keep = keep
        self._kept: list[_Segment] = []
        # The segment being made: its rows, their offsets in ``out`` (and the end's), and
        # signature.
        self._rows: list[Sequence[Any]] = []
        self._offsets = array("q")
        self._signature: Any = None

    def write(
        self,
        rows: Sequence[Sequence[Any]],
        signature: Any,
        make: Callable[[Sequence[Any]], bytes],
        *,
        copy: bool = True,
    ) -> None:
        """Write ``rows`` under ``signature`` (an object the caller holds while it writes):
        each run held in the last write under an equal signature, in its order, copied,
        every other row ``make(row)``. Not ``copy``: each row made, and none kept (what it is
        made of is more than the signature says: a worksheet's taller row)."""
        out = self._out
        keep = self._keep and copy
        position = out.tell() if self._keep else 0
        if self._offsets and not (
            keep and self._offsets[-1] == position and self._equal(self._signature, signature)
        ):
            self._made()
        if keep and not self._offsets:  # a segment begins where this write does
            self._signature = signature
            self._offsets.append(position)
        kept_rows, offsets = self._rows, self._offsets
        index, count = self._index, len(rows)
        found = list(map(index.get, map(id, rows))) if copy and index else [None] * count
        new: list[bytes] = []
        k = 0
        while k < count:
            at = found[k]
            if at is None or not self._matches(at >> _PLACE, signature):
                text = make(rows[k])
                new.append(text)
                if len(new) >= _WRITE:
                    out.write(b"".join(new))
                    new.clear()
                if keep:
                    kept_rows.append(rows[k])
                    position += len(text)
                    offsets.append(position)
                k += 1
                continue
            end = k + 1
            while end < count and found[end] == at + (end - k):
                end += 1
            if new:
                out.write(b"".join(new))
                new.clear()
            segment = self._segments[at >> _PLACE]
            i = at & ((1 << _PLACE) - 1)
            start = segment.offsets[i]
            self._copy(start, segment.offsets[end - k + i] - start)
            if keep:
                kept_rows.extend(rows[k:end])
                offsets.extend(
                    map((position - start).__add__, segment.offsets[i + 1 : i + 1 + end - k])
                )
                position = offsets[-1]
            k = end
        if new:
            out.write(b"".join(new))

    def kept(self) -> KeptText | None:
        """What to keep for the next write (None when not asked to keep)."""
        if not self._keep:
            return None
        self._made()
        return KeptText(self._out, tuple(self._kept))

    def _matches(self, s: int, signature: Any) -> bool:
        return self._equal(self._segments[s].signature, signature)

    def _equal(self, kept: Any, signature: Any) -> bool:
        if kept is signature:
            return True
        key = (id(kept), id(signature))
        same = self._same.get(key)
        if same is None:
            same = self._same[key] = (kept, signature, kept == signature)
        return same[2]

    def _copy(self, start: int, size: int) -> None:
        """Bytes ``start:start + size`` of the last write's file to ``out``."""
        assert self._before is not None
        source = self._before.file
        source.seek(start)
        while size:
            data = source.read(min(size, _CHUNK))
            if not data:  # nothing truncates a file of the runner's own: this is no state
                raise OSError(f"the last write's text ended {size} bytes early")
            self._out.write(data)
            size -= len(data)

    def _made(self) -> None:
        """The rows pending as a segment."""
        if self._rows:
            self._kept.append(_Segment(tuple(self._rows), self._offsets, self._signature))
        self._rows, self._offsets = [], array("q")
        self._signature = None
