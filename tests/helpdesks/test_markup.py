"""The HTML form of a reply (Intercom and Help Scout bodies) and ids read from YAML."""

from __future__ import annotations

import html
import re

from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.markup import text_to_html

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
