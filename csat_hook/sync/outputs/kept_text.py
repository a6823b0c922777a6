"""Each row's text as a local file's last write wrote it, kept for the runner's next write.

A runner kept across runs (``sync --periodic``) builds a later report from the last one's
rows: an answer that did not change keeps its row object (report/answers.py: ``KeptRows``).
The workbook and the CSV files are written whole each run, so without this each of their
100,000 rows was written again from its values (the workbook's ≈ 1.3 s of rows and the CSV
files' ≈ 0.8 s of a later run; docs/performance.md, the forty-fifth round). With it a row held
again is copied as the last write wrote it, when what else its text depends on (its
signature: a sheet's styles and columns, a CSV file's columns) is equal.

The text is kept compressed (zlib, level 1: a 100,000-answer report's 40 MB of SpreadsheetML
in ≈ 6 MB), in blocks of :data:`BLOCK` rows. A later write holds most old rows again in the
same order, new ones merged in (newest first), so most blocks come back whole: such a block
is kept as it was, not compressed again; only the rows around what changed are. Rows are
held, so no other live object can have their ``id``: a row is found again by it, as the
Sheets output's ``KeptEncoding`` finds its rows.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_LEVEL = 1  # the fastest: this text is kept for one run, never stored
BLOCK = 256  # rows a block
_DECOMPRESSED = 8  # blocks a lookup holds decompressed at a time


@dataclass(frozen=True, slots=True)
class _Block:
    """Rows (held) and their texts one after another, compressed: row ``i``'s text at
    ``starts[i]:starts[i + 1]``, written under ``signatures[i]`` (a reference to an object
    shared by the rows written under it)."""

    rows: tuple[Sequence[Any], ...]
    blob: bytes
    starts: array[int]
    signatures: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class KeptText:
    """One file's (or sheet's) rows and their text, in blocks."""

    blocks: tuple[_Block, ...]


class _KeptLookup:
    """The texts of a :class:`KeptText`, found by row; decompressed while a write lasts."""

    def __init__(self, kept: KeptText) -> None:
        self.blocks = kept.blocks
        # id(row) → (block, place in it)
        self._index = {
            id(row): (b, i)
            for b, block in enumerate(kept.blocks)
            for i, row in enumerate(block.rows)
        }
        self._texts: dict[int, bytes] = {}
        # (id(kept signature), id(signature)) → both (held: their ids stay theirs), equal
        self._same: dict[tuple[int, int], tuple[Any, Any, bool]] = {}

    def get(self, row: Sequence[Any], signature: Any) -> tuple[bytes, int, int] | None:
        """``row``'s text as last written, its block and place there, if it was written
        under a signature equal to ``signature``; else None."""
        found = self._index.get(id(row))
        if found is None:
            return None
        b, i = found
        block = self.blocks[b]
        kept_signature = block.signatures[i]
        if kept_signature is not signature:
            key = (id(kept_signature), id(signature))
            same = self._same.get(key)
            if same is None:
                same = self._same[key] = (kept_signature, signature, kept_signature == signature)
            if not same[2]:
                return None
        text = self._texts.get(b)
        if text is None:
            # A later write holds the old rows mostly in their old order: the few blocks
            # decompressed last are kept, not the whole file's text (≈ 15 MB for a
            # 100,000-answer Responses sheet).
            if len(self._texts) >= _DECOMPRESSED:
                del self._texts[next(iter(self._texts))]
            text = self._texts[b] = zlib.decompress(block.blob)
        return text[block.starts[i] : block.starts[i + 1]], b, i


class _TextKeeper:
    """Collects the rows a write writes, with their texts, into a :class:`KeptText`: a run
    of rows that is a whole block of ``lookup``'s, in its order, is kept as that block."""

    def __init__(self, lookup: _KeptLookup | None = None) -> None:
        self._lookup = lookup
        self._blocks: list[_Block] = []
        self._rows: list[Sequence[Any]] = []  # the rows of the block being made, and
        self._texts: list[bytes] = []  # their texts
        self._signatures: list[Any] = []
        self._run = -1  # the old block the last rows have followed from its start, or -1
        self._run_length = 0

    def add(
        self, row: Sequence[Any], text: bytes, signature: Any, found: tuple[int, int] | None
    ) -> None:
        """``row`` written as ``text`` under ``signature``; ``found``: where ``lookup``
        held it (its block and place), or None."""
        if found is not None and found[1] == self._run_length and found[0] == self._run:
            self._run_length += 1
        elif found is not None and found[1] == 0:
            self._run, self._run_length = found[0], 1
        else:
            self._run, self._run_length = -1, 0
        self._rows.append(row)
        self._texts.append(text)
        self._signatures.append(signature)
        if self._run >= 0 and self._lookup is not None:
            whole = self._lookup.blocks[self._run]
            if self._run_length == len(whole.rows):
                # The block came back whole: the rows before it make a block of their own.
                cut = len(self._rows) - self._run_length
                self._made(cut)
                self._blocks.append(whole)
                del self._rows[:], self._texts[:], self._signatures[:]
                self._run, self._run_length = -1, 0
                return
        if len(self._rows) >= BLOCK and self._run < 0:
            self._made(len(self._rows))
            del self._rows[:], self._texts[:], self._signatures[:]

    def _made(self, count: int) -> None:
        """The first ``count`` pending rows as a new block."""
        if not count:
            return
        starts = array("q", [0])
        end = 0
        for text in self._texts[:count]:
            end += len(text)
            starts.append(end)
        blob = zlib.compress(b"".join(self._texts[:count]), _LEVEL)
        self._blocks.append(
            _Block(tuple(self._rows[:count]), blob, starts, tuple(self._signatures[:count]))
        )

    def kept(self) -> KeptText:
        self._made(len(self._rows))
        self._rows, self._texts, self._signatures = [], [], []
        return KeptText(tuple(self._blocks))


class RowTexts:
    """A write's rows' texts: each copied from ``before`` where the row is held there under an
    equal signature, else made by the caller; collected for the next write when ``keep``.
    The one path both the workbook's sheets and the CSV files take."""

    def __init__(self, before: KeptText | None, *, keep: bool) -> None:
        self._lookup = _KeptLookup(before) if before is not None else None
        self._keeper = _TextKeeper(self._lookup) if keep else None

    def text(
        self,
        row: Sequence[Any],
        signature: Any,
        make: Callable[[], bytes],
        *,
        copy: bool = True,
    ) -> bytes:
        """``row``'s text under ``signature`` (an object the caller holds while it writes):
        the last write's where held again and ``copy``, else ``make()``."""
        found = self._lookup.get(row, signature) if self._lookup is not None and copy else None
        text = found[0] if found is not None else make()
        if self._keeper is not None:
            self._keeper.add(row, text, signature, found and found[1:])
        return text

    def kept(self) -> KeptText | None:
        """What to keep for the next write (None when not asked to keep)."""
        return self._keeper.kept() if self._keeper is not None else None
