"""Template rendering: URL values are quoted (each when the URL uses it), other strings are
filled as they are, and an unknown placeholder is an error."""

from __future__ import annotations

import pytest

from csat_hook.helpdesks.generic.templates import render

VALUES = {"dialog_id": "7/8 ä?#&", "text": "Rate us: 1 2 & {3}", "empty": ""}


def test_url_values_are_quoted_with_nothing_kept_safe():
    url = render("https://desk.example/d/{dialog_id}/m?t={text}&e={empty}", VALUES, quote=True)
    assert url == (
        "https://desk.example/d/7%2F8%20%C3%A4%3F%23%26/m?t=Rate%20us%3A%201%202%20%26%20%7B3%7D&e="
    )


def test_a_value_used_twice_is_quoted_the_same_both_times():
    quoted = "7%2F8%20%C3%A4%3F%23%26"
    assert render("{dialog_id}|{dialog_id}", VALUES, quote=True) == f"{quoted}|{quoted}"


def test_json_templates_are_filled_unquoted_and_keep_non_strings():
    body = {"text": "{text}", "meta": [{"id": "{dialog_id}"}, 3, None, True]}
    assert render(body, VALUES) == {
        "text": "Rate us: 1 2 & {3}",
        "meta": [{"id": "7/8 ä?#&"}, 3, None, True],
    }


@pytest.mark.parametrize("quote", [True, False])
def test_an_unknown_placeholder_is_an_error(quote):
    with pytest.raises(KeyError):
        render("https://desk.example/{nope}", VALUES, quote=quote)
