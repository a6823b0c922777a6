"""Rows appended to a batchGet response, found in its bytes (sync/sources/appended.py): only
a response whose rows start with exactly the earlier rows' bytes gives the added rows, in the
layouts Google and the fake write; anything else answers None (the caller decodes it all)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.sync.sources.appended import RowsPrefix
from csat_hook.sync.sources.appended import prefix_of
from csat_hook.sync.sources.appended import rows_after
from csat_hook.sync.sources.appended import values_span
from csat_hook.sync.sources.appended import whole_rows

HEADER = ["Отметка времени", "Оценка", "Комментарий", "Reference"]
ROWS: list[list[Any]] = [
    HEADER,
    [46000.5, 5, "ok", "tok-1"],
    [],  # a blank row in the middle: Google sends []
    [46001.25, 4, 'a "quoted" ], [ comment\n', "tok-2"],
]


def body(rows: list[list[Any]], *, indent: int | None = None, ascii_only: bool = False) -> bytes:
    document = {
        "spreadsheetId": "1AbC",
        "valueRanges": [
            {
                "range": f"'Form \"values\" 1'!A1:D{len(rows)}",
                "majorDimension": "ROWS",
                "values": rows,
            }
        ],
    }
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    return text.encode("utf-8")


def found_after(data: bytes, earlier: RowsPrefix) -> tuple[list[Any], list[list[Any]]] | None:
    """``(header, added rows)`` that :func:`rows_after` finds in ``data`` after ``earlier``
    (None when it finds none), its new prefix checked on the way: the one a read of every
    row of ``data`` leaves (:func:`prefix`), though hashed on from ``earlier``'s."""
    span = values_span(data)
    assert span is not None
    found = rows_after(data, span, earlier)
    if found is None:
        return None
    assert found.prefix == prefix(data)
    return found.header, found.rows


def prefix(data: bytes) -> RowsPrefix:
    """The prefix a read of every row of ``data`` leaves."""
    found = whole_rows(data)
    assert found is not None
    rows, span = found
    assert rows == json.loads(data)["valueRanges"][0]["values"]
    return prefix_of(data, span, len(rows))


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "Google's two-space layout"])
def test_added_rows_are_found_and_decoded_as_json_loads_does(indent):
    before = body(ROWS, indent=indent)
    new = [[46002.0, 1, "новый", "tok-3"], [], [46003.0, "5", None, "tok-4"]]
    after = body([*ROWS, *new], indent=indent)
    found = found_after(after, prefix(before))
    assert found == (HEADER, new)
    assert found[1] == json.loads(after)["valueRanges"][0]["values"][len(ROWS) :]
    # Nothing added: no rows, and the same prefix.
    assert found_after(before, prefix(before)) == (HEADER, [])


@pytest.mark.parametrize(
    "changed",
    [
        [HEADER, [46000.5, 4, "ok", "tok-1"], [], ROWS[3]],  # a rating edited
        [HEADER, ROWS[1], ROWS[3]],  # a row deleted
        [HEADER, [46000.5, 5, "ok", "tok-1"], [], ROWS[3][:3]],  # a last cell emptied
        [[*HEADER, "NPS"], *ROWS[1:]],  # a question added
    ],
    ids=["edited", "deleted", "trimmed", "header"],
)
def test_any_change_to_the_earlier_rows_answers_none(changed):
    earlier = prefix(body(ROWS))
    after = body([*changed, [46009.0, 3, "", "tok-9"]])
    assert rows_after(after, values_span(after), earlier) is None


def test_an_escaped_encoding_of_the_same_rows_is_not_mistaken():
    # A lone surrogate anywhere makes the whole response ASCII-escaped: other bytes.
    earlier = prefix(body(ROWS))
    after = body([*ROWS, [46009.0, 3, "\ud800", "tok-9"]], ascii_only=True)
    assert rows_after(after, values_span(after), earlier) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"spreadsheetId": "x", "valueRanges": [{"range": "A1"}]}',  # no values (empty tab)
        b'{"valueRanges": [{"values": [["a"]], "range": "A1"}]}',  # values not last
        b'{"valueRanges": [{"values": [["a"]]}, {"values": [["b"]]}]}',  # two ranges
        b'{"valueRanges": [{"values": [["a"]]}]} trailing',
        b'{"valueRanges": [{"values": [["a"]]}]',  # cut short
        b'{"a": "\\"values\\": [", "valueRanges": [{"values": [["a"]]}]}',
    ],
)
def test_a_body_that_is_not_one_value_range_gives_no_prefix(data):
    found = whole_rows(data)
    if data.startswith(b'{"a"'):  # the escaped key: the real array is the one found
        assert found is not None and found[0] == [["a"]]
    else:
        assert found is None


_CELL = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    # Text made of what could confuse a search of the bytes: quotes, brackets, the key itself.
    st.lists(
        st.sampled_from(
            ['"', "\\", "]", "[", "}", "{", ",", ":", " ", "\n", '"values":[', "ё", "x"]
        )
        | st.text(max_size=3),
        max_size=6,
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(_CELL, max_size=5), max_size=6),
    title=st.sampled_from(["Form Responses 1", 'A "values": [ tab', "]}]}", "Ответы"]),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
)
def test_the_rows_decoded_from_the_array_alone_are_those_of_the_whole_body(
    rows, title, indent, ascii_only
):
    """A read of every row decodes the response once, from its ``values`` array: whatever
    the cells and the tab's title hold, those are the rows a decode of the whole body gives."""
    document = {
        "spreadsheetId": "1AbC",
        "valueRanges": [{"range": f"'{title}'!A1:E9", "majorDimension": "ROWS", "values": rows}],
    }
    data = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass"
    )
    found = whole_rows(data)
    assert found is not None
    assert found[0] == json.loads(data)["valueRanges"][0]["values"] == rows


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(_CELL, max_size=5), min_size=1, max_size=8),
    data=st.data(),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
)
def test_any_rows_appended_are_found_with_the_prefix_a_whole_read_leaves(
    rows, data, indent, ascii_only
):
    """Whatever the cells hold, the rows added after an earlier read are found and decoded
    as ``json.loads`` decodes them, and the prefix hashed on from the earlier one is the one
    a read of every row leaves (:func:`found_after` checks it)."""
    kept = data.draw(st.integers(1, len(rows)), label="rows read before")
    before = body(rows[:kept], indent=indent, ascii_only=ascii_only)
    after = body(rows, indent=indent, ascii_only=ascii_only)
    assert found_after(after, prefix(before)) == (rows[0], rows[kept:])


@pytest.mark.parametrize(
    "tail",
    [b', "not a row"', b", [1] [2]", b", [1], ", b", [1,", b" [1]", b", {}"],
)
def test_added_elements_that_are_not_rows_answer_none(tail):
    before = body([HEADER, [1]])
    earlier = prefix(before)
    span = values_span(before)
    assert span is not None
    end = span[1]
    after = before[:end] + tail + before[end:]
    new_span = values_span(after)
    assert new_span is None or rows_after(after, new_span, earlier) is None


def test_a_prefix_read_back_from_storage():
    earlier = prefix(body(ROWS))
    assert RowsPrefix.from_dict(earlier.as_dict()) == earlier
    assert RowsPrefix.from_dict({"length": "x"}) is None
    assert RowsPrefix.from_dict(None) is None


@pytest.mark.parametrize("shift", range(4))
def test_a_header_longer_than_a_window_is_read_whole_across_split_characters(shift):
    """The header row is decoded from 64 KiB windows, growing until it is whole: titles of
    any length, multibyte characters cut by a window's edge included."""
    from csat_hook.sync.sources import appended

    # "x" * shift moves the 2-, 3- and 4-byte characters across the first window's edge.
    long_title = "x" * shift + "Комментарий 评论 🙂 " * 4_000  # ≈ 130 KiB of UTF-8
    header = ["Timestamp", long_title, "Reference"]
    rows = [header, [46000.5, "ok", "tok-1"]]
    added = [[46001.5, "новый", "tok-2"]]
    before, after = body(rows), body([*rows, *added])
    assert len(long_title.encode()) > 2 * appended._FIRST_WINDOW
    assert found_after(after, prefix(before)) == (header, added)


def _raw(rows: list[list[Any]]) -> bytes:
    """A body with lone surrogates written as bytes (not escaped): only a decode with
    surrogatepass reads it, as ``json.loads`` of bytes does."""
    document = {"valueRanges": [{"range": "A1:D9", "majorDimension": "ROWS", "values": rows}]}
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("filler", [0, 200_000], ids=["one window", "many windows"])
def test_earlier_rows_that_are_not_valid_utf8_answer_none(filler):
    """The prefix is checked as strict UTF-8 throughout, as a decode of it all was, however
    many windows it spans (a lone surrogate's bytes in the header or any later row: None,
    and the whole body is decoded with surrogatepass instead)."""
    from csat_hook.sync.sources import appended

    added = [[46002.0, 1, "new", "tok-3"]]
    padding = [[46000.0 + n, 5, "Комментарий", f"tok-{n}"] for n in range(filler // 40)]
    for rows in (
        [["Time\udc80", "Rating"], *padding, [46000.5, 5]],
        [HEADER, *padding, [46000.5, 5, "cell \ud800", "tok-1"]],
    ):
        before, after = _raw(rows), _raw([*rows, *added])
        assert (len(before) > 3 * appended._FIRST_WINDOW) == bool(filler)
        assert rows_after(after, values_span(after), prefix(before)) is None
    clean = [HEADER, *padding, [46000.5, 5, "cell", "tok-1"]]
    before, after = _raw(clean), _raw([*clean, *added])
    assert found_after(after, prefix(before)) == (HEADER, added)
