"""Each row's text as a local file's last write wrote it, kept for the runner's next write.

A runner kept across runs (``sync --periodic``) builds a later report from the last one's
rows: an answer that did not change keeps its row object (report/answers.py: ``KeptRows``).
The workbook and the CSV files are written whole each run, so without this each of their
100,000 rows was written again from its values (the workbook's ≈ 1.3 s of rows and the CSV
files' ≈ 0.8 s of a later run; docs/performance.md, the forty-fifth round). With it a row held
again is copied as the last write wrote it, when what else its text depends on (its
signature: a sheet's columns, a CSV file's formats) is equal.

A worksheet's row holds its number (the row's reference and each cell's), which changes as
rows are inserted above it: such text is kept as a format, "%d" wherever the number goes and
its own "%" doubled (``numbered``), and written through one ``bytes % tuple`` per run of rows.
Rows held again in their old order are copied as one run: one range of the last write's text
(the forty-sixth round: a row by row copy cost ≈ 4 µs a row, 1 s of a later run's 255,000).

The text is kept in a temporary file of the write's own (anonymous, beside the file it is
for, held open by the runner until the next write has copied what it needs:
:class:`KeptText`), ≈ 45 MB for a 100,000-answer report's sheets and CSV files, in the page
cache, not in the process; in memory are the rows, each one's offset and count of numbers.
(Until the forty-seventh round it was kept in memory, compressed: each later write
decompressed it and compressed again what it kept, ≈ 0.2 s of a later run's 1.1 s, new
answers being spread over all of it. Kept in memory as it was written, a first sync's peak
went 29 MB over 200 MB.)

Rows are held, so no other live object can have their ``id``: a row is found again by it, as
the Sheets output's ``KeptEncoding`` finds its rows.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from itertools import chain
from itertools import repeat
from typing import IO
from typing import Any

_PLACE = 32  # bits of a row's place in its segment, in the position the index gives
_WRITE = 512  # new rows' texts gathered before they are written
_CHUNK = 1 << 20  # bytes a copy reads at a time, about


@dataclass(frozen=True, slots=True)
class _Segment:
    """Rows (held) written one after another under ``signature``: row ``i``'s text is bytes
    ``offsets[i]:offsets[i + 1]`` of the file, a format of ``marks[i]`` numbers when
    numbered (else ``marks`` is None)."""

    rows: tuple[Sequence[Any], ...]
    offsets: array[int]
    marks: array[int] | None
    signature: Any


@dataclass(frozen=True, slots=True)
class KeptText:
    """One file's (or sheet's) rows and where their text is in ``file``, by segments. The
    file may hold other texts too (a workbook's sheets share one); whoever keeps this closes
    it once no kept text is in it (:func:`close_unused`)."""

    file: IO[bytes]
    segments: tuple[_Segment, ...]
    numbered: bool


def close_unused(before: Iterable[KeptText], now: Iterable[KeptText]) -> None:
    """Close each file of ``before`` that no text of ``now`` is in."""
    kept = {id(text.file) for text in now}
    for file in {id(text.file): text.file for text in before}.values():
        if id(file) not in kept:
            file.close()


class RowTexts:
    """A write's rows' texts, written to ``out``: each run of rows held in ``before`` in the
    same order under an equal signature copied from there, every other row made by the
    caller. ``keep``: a file of the writer's own, not ``out``, that this write's rows' texts
    are kept in, with where each one is (:meth:`kept`), for the next write; nothing may
    overwrite what it wrote there (others may append: a workbook's sheets share one). The
    one path both the workbook's sheets and the CSV files take.

    ``numbered``: each row's text holds its number; ``make`` gives a format with "%d"
    wherever the number goes (and every other "%" doubled), and :meth:`write` puts it
    there. Else a row's text must not depend on its place in the file."""

    def __init__(
        self,
        before: KeptText | None,
        out: IO[bytes],
        *,
        keep: IO[bytes] | None,
        numbered: bool = False,
    ) -> None:
        if keep is out:
            raise ValueError("texts are kept apart from what is written")
        if before is not None and before.numbered != numbered:
            before = None
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
        self._numbered = numbered
        self._kept: list[_Segment] = []
        # The segment being made: its rows, their offsets in ``keep`` (and the end's), their
        # numbers' counts, and signature.
        self._rows: list[Sequence[Any]] = []
        self._offsets = array("q")
        self._marks = array("H")  # a row has at most 16,384 cells
        self._signature: Any = None

    def write(
        self,
        rows: Sequence[Sequence[Any]],
        first: int,
        signature: Any,
        make: Callable[[Sequence[Any]], bytes],
        *,
        copy: bool = True,
    ) -> None:
        """Write ``rows`` (numbered ``first``, ``first + 1``, … when numbered) under
        ``signature`` (an object the caller holds while it writes): each run held in the last
        write under an equal signature, in its order, copied, every other row ``make(row)``.
        Not ``copy``: each row made, and none kept (what it is made of is more than the
        signature says: a worksheet's taller row)."""
        keep_file = self._keep
        keep = keep_file is not None and copy
        position = keep_file.tell() if keep_file is not None else 0
        if self._offsets and not (
            keep and self._offsets[-1] == position and self._equal(self._signature, signature)
        ):
            self._made()
        if keep and not self._offsets:  # a segment begins where this write does
            self._signature = signature
            self._offsets.append(position)
        index, count = self._index, len(rows)
        if not (copy and index):  # no row is copied: every one made
            self._make(rows, first, make, keep, position)
            return
        found = list(map(index.get, map(id, rows)))
        k = 0
        while k < count:
            at = found[k]
            if at is None or not self._matches(at >> _PLACE, signature):
                # A stretch of rows to make: up to the next row held under this signature.
                end = k + 1
                while end < count:
                    held = found[end]
                    if held is not None and self._matches(held >> _PLACE, signature):
                        break
                    end += 1
                position = self._make(rows[k:end], first + k, make, keep, position)
                k = end
                continue
            end = k + 1
            while end < count and found[end] == at + (end - k):
                end += 1
            segment = self._segments[at >> _PLACE]
            i = at & ((1 << _PLACE) - 1)
            start = segment.offsets[i]
            self._copy(segment, i, end - k, first + k, keep)
            if keep:
                self._rows.extend(rows[k:end])
                self._offsets.extend(
                    map((position - start).__add__, segment.offsets[i + 1 : i + 1 + end - k])
                )
                position = self._offsets[-1]
                if self._numbered:
                    assert segment.marks is not None
                    self._marks.extend(segment.marks[i : i + end - k])
            k = end

    def _make(
        self,
        rows: Sequence[Sequence[Any]],
        first: int,
        make: Callable[[Sequence[Any]], bytes],
        keep: bool,
        position: int,
    ) -> int:
        """``rows`` made, numbered from ``first`` when numbered, and written :data:`_WRITE` at
        a time (and kept when ``keep``: their formats from ``position`` of the keep file on);
        where the kept text now ends."""
        for low in range(0, len(rows), _WRITE):
            piece = rows[low : low + _WRITE]
            templates = list(map(make, piece))
            marks: list[int] = []
            if self._numbered:
                # A format's "%d" are its numbers: its text's own "%" are doubled ("%%d" is
                # text).
                marks = [
                    t.count(b"%d") if b"%%" not in t else t.replace(b"%%", b"").count(b"%d")
                    for t in templates
                ]
                numbers = range(first + low, first + low + len(piece))
                self._out.write(
                    b"".join(
                        [t % ((n,) * m) for t, n, m in zip(templates, numbers, marks, strict=True)]
                    )
                )
            else:
                self._out.write(b"".join(templates))
            if keep:
                assert self._keep is not None
                self._keep.write(b"".join(templates))
                self._rows.extend(piece)
                ends = accumulate(map(len, templates), initial=position)
                next(ends)  # where the first begins: the last offset there is
                self._offsets.extend(ends)
                position = self._offsets[-1]
                if self._numbered:
                    self._marks.extend(marks)
        return position

    def kept(self) -> KeptText | None:
        """What to keep for the next write (None when not asked to keep)."""
        if self._keep is None:
            return None
        self._made()
        return KeptText(self._keep, tuple(self._kept), self._numbered)

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

    def _copy(self, segment: _Segment, i: int, run: int, number: int, keep: bool) -> None:
        """Rows ``i:i + run`` of the last write's ``segment`` written again (numbered from
        ``number``), and kept when ``keep``, a megabyte or so at a time."""
        assert self._before is not None
        source, offsets, marks = self._before.file, segment.offsets, segment.marks
        source.seek(offsets[i])
        end = i + run
        while i < end:
            # Up to a row's end about a megabyte on (one row at least): a numbered piece is
            # put through its format whole.
            stop = min(bisect_left(offsets, offsets[i] + _CHUNK, i + 1, end), end)
            size = offsets[stop] - offsets[i]
            data = source.read(size)
            if len(data) != size:  # nothing truncates a file of the runner's own
                raise OSError(f"the last write's text ended {size - len(data)} bytes early")
            if marks is None:
                self._out.write(data)
            else:
                numbers = chain.from_iterable(
                    map(repeat, range(number, number + stop - i), marks[i:stop])
                )
                self._out.write(data % tuple(numbers))
                number += stop - i
            if keep:
                assert self._keep is not None
                self._keep.write(data)
            i = stop

    def _made(self) -> None:
        """The rows pending as a segment."""
        if self._rows:
            self._kept.append(
                _Segment(
                    tuple(self._rows),
                    self._offsets,
                    self._marks if self._numbered else None,
                    self._signature,
                )
            )
        self._rows, self._offsets, self._marks = [], array("q"), array("H")
        self._signature = None
