"""The HTML form of a reply (Intercom and Help Scout bodies), plain text as Markdown that
renders as written (Chatwoot's notes), and ids read from YAML."""

from __future__ import annotations

import html
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.markup import text_to_markdown
from tests.helpdesks.markdown import as_read
from tests.helpdesks.markdown import shown

LINK = "https://docs.google.com/forms/d/e/F/viewform?usp=pp_url&entry.111=A+%26+B&entry.444=t"


def test_names_are_escaped_and_the_link_is_an_anchor_that_decodes_to_itself():
    rendered = text_to_html(f'How did <b>"Ann" & Co</b> do?\nRate: {LINK}', LINK)

    assert rendered.startswith("<p>How did &lt;b&gt;&quot;Ann&quot; &amp; Co&lt;/b&gt; do?<br>")
    [href] = re.findall(r'href="([^"]+)"', rendered)
    assert html.unescape(href) == LINK
    assert "<b>" not in rendered


def test_blank_lines_make_paragraphs():
    assert text_to_html("Hello\n\n\nBye\r\n\r\nNow") == "<p>Hello</p><p>Bye</p><p>Now</p>"


def test_text_without_the_link_is_left_without_anchors():
    assert "<a " not in text_to_html("no link here", LINK)


def test_ids_from_yaml_become_text():
    assert ids_as_text(42) == "42"
    assert ids_as_text({5017691: "Billing", "7": "Sales"}) == {"5017691": "Billing", "7": "Sales"}
    assert ids_as_text([1, "2"]) == ["1", "2"]
    assert ids_as_text(True) is True and ids_as_text(None) is None


# --- plain text as Markdown that renders as it reads (Chatwoot's notes) ------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[text](https://evil.example/x) and ![x](https://evil.example/img.png)",
        "**bold** *it* _it_ __u__ ~~s~~ `code` <b>raw</b> <https://auto.example/>",
        "# heading\n## two\n- item\n+ item\n* item\n1. one\n2) two\n---\n***\n===",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "&lt;b&gt; &amp; &#60; evil.example a@evil.example http://x.example (c) -- +- ...",
        "    four spaces\n\ttab\n  - indented item",
        "> quoted [link](https://e.example)\n> # heading in a quote\n> - list in a quote",
        "trailing backslash\\\nand \\*escaped\\* already",
    ],
)
def test_markdown_renders_the_text_as_written(text):
    assert shown(text_to_markdown(text)) == as_read(text)


@given(
    st.text(
        alphabet=st.sampled_from([*string.punctuation, *"ab1 \t\n>-", "\u00a0", "é"]),
        max_size=60,
    )
)
def test_any_text_renders_as_written(text):
    assert shown(text_to_markdown(text)) == as_read(text)


def test_a_ref_and_a_lone_hyphen_stay_bare_a_hyphen_that_can_be_syntax_does_not():
    ref = "csat-alert-0123456789abcdef01234567"
    rendered = text_to_markdown(f"- a-b -- c\ncsat-hook · Alert ref: {ref}")
    assert rendered == f"\\- a-b \\-\\- c\ncsat-hook · Alert ref\\: {ref}"


def test_a_quote_marker_stays_a_quote_and_line_breaks_are_kept():
    assert text_to_markdown("Comment:\r\n> *x*\r> \n\n  y") == (
        "Comment\\:\n> \\*x\\*\n> \n\n\u00a0\u00a0y"
    )
