"""Each row's text as a local file's last write wrote it, kept for the runner's next write.

A runner kept across runs (``sync --periodic``) builds a later report from the last one's
rows: an answer that did not change keeps its row object (report/answers.py: ``KeptRows``).
The workbook and the CSV files are written whole each run, so without this each of their
100,000 rows was written again from its values (the workbook's ≈ 1.3 s of rows and the CSV
files' ≈ 0.8 s of a later run; docs/performance.md, the forty-fifth round). With it a row held
again is copied as the last write wrote it, when what else its text depends on (its
signature: a sheet's columns, a CSV file's formats) is equal.

Rows held again in their old order are copied as one run: the run's text is one slice of
the last write's, and a worksheet's row numbers are put in it by one ``bytes % tuple``
(the text is kept with a NUL where each number goes: :class:`RowTexts`), not row by row
(the forty-sixth round: a row by row copy cost ≈ 4 µs a row, 1 s of a later run's 255,000).

The text is kept compressed (zlib, level 1: a 100,000-answer report's 40 MB of SpreadsheetML
in ≈ 6 MB), in blocks of about :data:`BLOCK` rows, each written under one signature. A later
write holds most old rows again in the same order, new ones merged in (newest first), so most
blocks come back whole: such a block is kept as it was, not compressed again; only the rows
around what changed are. Rows are held, so no other live object can have their ``id``: a
row is found again by it, as the Sheets output's ``KeptEncoding`` finds its rows.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from itertools import chain
from itertools import repeat
from typing import Any

_LEVEL = 1  # the fastest: this text is kept for one run, never stored
BLOCK = 256  # rows a block, at least (a run copied whole may make it longer)
_DECOMPRESSED = 8  # blocks a write holds decompressed at a time
_PLACE = 32  # bits of a row's place in its block, in the position the index gives
_WRITE = 512  # new rows' texts gathered before they are written


@dataclass(frozen=True, slots=True)
class _Block:
    """Rows (held) and their texts one after another, compressed, all written under
    ``signature``: row ``i``'s text is ``lengths[i]`` bytes, and has ``marks[i]`` NULs where
    its number goes (numbered text only, else None)."""

    rows: tuple[Sequence[Any], ...]
    blob: bytes
    lengths: array[int]
    marks: array[int] | None
    signature: Any


@dataclass(frozen=True, slots=True)
class KeptText:
    """One file's (or sheet's) rows and their text, in blocks."""

    blocks: tuple[_Block, ...]
    numbered: bool


class RowTexts:
    """A write's rows' texts: each run of rows held in ``before`` in the same order under an
    equal signature copied from there, every other row made by the caller; collected for
    the next write when ``keep``. The one path both the workbook's sheets and the CSV files
    take.

    ``numbered``: each row's text holds its number (a worksheet's ``<row r="…">`` and its
    cells' references): ``make`` writes a NUL (which no cell's text holds) wherever it goes,
    and :meth:`write` puts the number there."""

    def __init__(self, before: KeptText | None, *, keep: bool, numbered: bool = False) -> None:
        blocks = before.blocks if before is not None and before.numbered == numbered else ()
        self._blocks = blocks
        # id(row) → its block << _PLACE | its place there: a run held in order is a run of
        # consecutive positions, which stops where its block ends.
        self._index: dict[int, int] = {}
        for b, block in enumerate(blocks):  # a block's rows at once, not one by one
            start = b << _PLACE
            self._index.update(
                zip(map(id, block.rows), range(start, start + len(block.rows)), strict=True)
            )
        self._numbered = numbered
        self._texts: dict[int, tuple[bytes, list[int]]] = {}  # block → text, row offsets
        # (id(kept signature), id(signature)) → both (held: their ids stay theirs), equal
        self._same: dict[tuple[int, int], tuple[Any, Any, bool]] = {}
        self._keep = keep
        self._kept: list[_Block] = []
        # The block being made: its rows, their texts and lengths (and marks), and signature.
        self._rows: list[Sequence[Any]] = []
        self._pieces: list[bytes] = []
        self._lengths = array("q")
        self._marks = array("q")
        self._signature: Any = None

    def write(
        self,
        out: Callable[[bytes], object],
        rows: Sequence[Sequence[Any]],
        first: int,
        signature: Any,
        make: Callable[[Sequence[Any]], bytes],
        *,
        copy: bool = True,
    ) -> None:
        """Write ``rows`` (numbered ``first``, ``first + 1``, … when numbered) to ``out``,
        under ``signature`` (an object the caller holds while it writes): each run held in
        the last write under an equal signature, in its order, copied, every other row
        ``make(row)``. Not ``copy``: each row made, and none kept (what it is made of is more
        than the signature says: a worksheet's taller row)."""
        if self._keep and self._rows and not self._equal(self._signature, signature):
            self._made()
        index, count = self._index, len(rows)
        found = list(map(index.get, map(id, rows))) if copy and index else [None] * count
        numbered = self._numbered
        new: list[bytes] = []
        k = 0
        while k < count:
            at = found[k]
            if at is None or not self._matches(at >> _PLACE, signature):
                template = make(rows[k])
                text = template.replace(b"\0", b"%d" % (first + k)) if numbered else template
                new.append(text)
                if len(new) >= _WRITE:
                    out(b"".join(new))
                    new.clear()
                if self._keep and copy:
                    self._add(rows[k], template, signature)
                k += 1
                continue
            end = k + 1
            while end < count and found[end] == at + (end - k):
                end += 1
            if new:
                out(b"".join(new))
                new.clear()
            out(self._copied(at, end - k, first + k))
            if self._keep:
                self._add_run(rows, k, end, at, signature)
            k = end
        if new:
            out(b"".join(new))

    def kept(self) -> KeptText | None:
        """What to keep for the next write (None when not asked to keep)."""
        if not self._keep:
            return None
        self._made()
        return KeptText(tuple(self._kept), self._numbered)

    def _matches(self, b: int, signature: Any) -> bool:
        return self._equal(self._blocks[b].signature, signature)

    def _equal(self, kept: Any, signature: Any) -> bool:
        if kept is signature:
            return True
        key = (id(kept), id(signature))
        same = self._same.get(key)
        if same is None:
            same = self._same[key] = (kept, signature, kept == signature)
        return same[2]

    def _text(self, b: int) -> tuple[bytes, list[int]]:
        """Block ``b``'s text and each row's offset in it (and its end)."""
        found = self._texts.get(b)
        if found is None:
            # A later write holds the old rows mostly in their old order: the few blocks
            # decompressed last are kept, not the whole file's text (≈ 15 MB for a
            # 100,000-answer Responses sheet).
            if len(self._texts) >= _DECOMPRESSED:
                del self._texts[next(iter(self._texts))]
            block = self._blocks[b]
            found = self._texts[b] = (
                zlib.decompress(block.blob),
                list(accumulate(block.lengths, initial=0)),
            )
        return found

    def _copied(self, at: int, run: int, number: int) -> bytes:
        """The text of ``run`` rows of the last write from position ``at``, numbered from
        ``number``."""
        b, i = at >> _PLACE, at & ((1 << _PLACE) - 1)
        text, offsets = self._text(b)
        piece = text[offsets[i] : offsets[i + run]]
        marks = self._blocks[b].marks
        if marks is None:
            return piece
        # Each row's number wherever its NULs are, at once: "%" is no longer a format there.
        numbers = chain.from_iterable(map(repeat, range(number, number + run), marks[i : i + run]))
        return piece.replace(b"%", b"%%").replace(b"\0", b"%d") % tuple(numbers)

    def _add(self, row: Sequence[Any], template: bytes, signature: Any) -> None:
        """A row made anew, to keep."""
        if not self._rows:
            self._signature = signature
        self._rows.append(row)
        self._pieces.append(template)
        self._lengths.append(len(template))
        if self._numbered:
            self._marks.append(template.count(b"\0"))
        if len(self._rows) >= BLOCK:
            self._made()

    def _add_run(
        self, rows: Sequence[Sequence[Any]], k: int, end: int, at: int, signature: Any
    ) -> None:
        """Rows ``k:end`` copied from position ``at`` of the last write, to keep: their block
        as it was when they are all of it, else with the block being made."""
        b, i = at >> _PLACE, at & ((1 << _PLACE) - 1)
        block = self._blocks[b]
        run = end - k
        # A small block (the new rows a run put on top) is joined to the rows before it, not
        # kept apart: each run's few new rows had made a block of their own, kept whole ever
        # after (300 runs: 79 blocks of 253 rows on average became 282 of 70).
        if i == 0 and run == len(block.rows) and (not self._rows or run >= BLOCK // 2):
            self._made()
            self._kept.append(block)
            return
        if not self._rows:
            self._signature = signature
        text, offsets = self._text(b)
        self._rows.extend(rows[k:end])
        self._pieces.append(text[offsets[i] : offsets[i + run]])
        self._lengths.extend(block.lengths[i : i + run])
        if block.marks is not None:
            self._marks.extend(block.marks[i : i + run])
        if len(self._rows) >= BLOCK:
            self._made()

    def _made(self) -> None:
        """The rows pending as a new block."""
        if not self._rows:
            return
        self._kept.append(
            _Block(
                tuple(self._rows),
                zlib.compress(b"".join(self._pieces), _LEVEL),
                self._lengths,
                self._marks if self._numbered else None,
                self._signature,
            )
        )
        self._rows, self._pieces = [], []
        self._lengths, self._marks = array("q"), array("q")
        self._signature = None
