"""Survey links and reply texts."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.errors import ConfigError
from csat_hook.links import FormConfig
from csat_hook.links import LinkValues
from csat_hook.links import ReplyConfig
from csat_hook.links import agent_label
from csat_hook.links import build_link
from csat_hook.links import decode_link
from csat_hook.links import parse_prefilled_link
from csat_hook.links import readable_agent_name
from csat_hook.links import reply_text
from csat_hook.links import with_rating
from csat_hook.links.form import MAX_LINK_LENGTH
from csat_hook.links.short import survey_segment
from tests.helpers import link_fields

FORM = FormConfig(
    url="https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=sf_link",
    fields={"agent_name": "entry.1", "ticket": "entry.2", "token": "entry.3", "team": "entry.4"},
)
VALUES = LinkValues(
    agent_name="Анна (L2)",
    agent_id="7",
    agent_email="",
    ticket="T 1&2",
    helpdesk="zendesk",
    team="",
    token="abc.def",
)


def test_google_forms_prefill_link_encodes_like_google():
    link = build_link(FORM, VALUES)
    assert link.startswith("https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=pp_url&")
    assert "entry.1=%D0%90%D0%BD%D0%BD%D0%B0+%28L2%29" in link  # space → +, ( → %28
    assert "entry.2=T+1%262" in link
    assert "entry.4" not in link  # empty values are left out
    assert decode_link(link, FORM) == {
        "agent_name": "Анна (L2)",
        "ticket": "T 1&2",
        "token": "abc.def",
    }


def test_template_links_quote_values():
    form = FormConfig(
        kind="template", url_template="https://x.typeform.com/to/A#agent={agent_name}&ref={token}"
    )
    assert build_link(form, VALUES) == (
        "https://x.typeform.com/to/A#agent=%D0%90%D0%BD%D0%BD%D0%B0%20%28L2%29&ref=abc.def"
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("pt_BR", "pt-br"),
        ("PT-br", "pt-br"),
        ("de", "en"),
        (None, "en"),
    ],
)
def test_reply_language_falls_back_sensibly(language, expected):
    reply = ReplyConfig(templates={"en": "en {link}", "ru": "ru {link}", "pt-BR": "pt-br {link}"})
    text = reply_text(
        reply,
        language,
        link="L",
        agent_name="A",
        customer_name="",
        ticket="1",
        helpdesk="h",
        team="",
    )
    assert text == f"{expected} L"


def test_reply_placeholders():
    reply = ReplyConfig(templates={"en": "{agent_first_name}|{agent_name}|{ticket}|{link}"})
    text = reply_text(
        reply,
        "en",
        link="L",
        agent_name="Anna Petrova",
        customer_name="C",
        ticket="9",
        helpdesk="h",
        team="t",
    )
    assert text == "Anna|Anna Petrova|9|L"


def test_prefilled_link_maps_roles_from_sample_values():
    parsed = parse_prefilled_link(
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=pp_url"
        "&entry.11=agent_name&entry.22=TICKET&entry.33=token&entry.44=something+else"
    )
    assert parsed.url == "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform"
    assert parsed.roles == {"agent_name": "entry.11", "ticket": "entry.22", "token": "entry.33"}
    assert parsed.unmatched == {"entry.44": "something else"}


def test_prefilled_link_maps_the_score_picked_to_the_rating_question():
    # docs/links.md: pick any score on the "Get pre-filled link" screen; its entry is the
    # rating question (fields.rating, which style: scores needs). It was "matched no role",
    # in a list of roles without rating.
    link = (
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=pp_url"
        "&entry.11=agent_name&entry.33=token&entry.55=4"
    )
    parsed = parse_prefilled_link(link)
    assert parsed.roles == {"agent_name": "entry.11", "token": "entry.33", "rating": "entry.55"}
    assert parsed.unmatched == {}
    result = CliRunner().invoke(main, ["form-fields", link])
    assert result.exit_code == 0 and "rating: entry.55" in result.output


def test_an_unmatched_entry_is_told_every_role_it_could_have():
    result = CliRunner().invoke(
        main,
        [
            "form-fields",
            "https://docs.google.com/forms/d/e/x/viewform?entry.1=token&entry.2=something",
        ],
    )
    assert result.exit_code == 0
    [said] = [line for line in result.output.splitlines() if line.startswith("# entry.2")]
    for role in ("agent_name", "agent_id", "agent_email", "ticket", "helpdesk", "team", "token"):
        assert role in said
    assert "rating" in said


@pytest.mark.parametrize(
    "bad",
    [
        "https://example.com/?entry.1=a",
        "https://docs.google.com/forms/d/e/x/viewform",
        "https://[docs.google.com/forms/d/e/x/viewform?entry.1=token",  # was a ValueError
    ],
)
def test_prefilled_link_errors_are_clear(bad):
    with pytest.raises(ConfigError):
        parse_prefilled_link(bad)


@pytest.mark.parametrize("short", ["https://forms.gle/AbC123xyz", "https://goo.gl/forms/AbC123"])
def test_form_fields_given_the_forms_short_link_says_where_the_prefilled_link_is(short):
    # The form's "Send" link is what a new user has at hand: it was "does not look like a
    # Google Forms link", about a link that is one.
    result = CliRunner().invoke(main, ["form-fields", short], env={"CSAT_HOOK_CONFIG": None})
    assert result.exit_code == 2
    assert "a short link to the form (forms.gle/…), which pre-fills nothing" in result.output
    assert "Get pre-filled link" in result.output


def test_a_prefilled_link_naming_an_entry_twice_is_refused_not_read_by_its_last():
    # entry.1=token&entry.1=agent_name read as agent_name, then "no token field found".
    with pytest.raises(ConfigError) as refused:
        parse_prefilled_link(
            "https://docs.google.com/forms/d/e/x/viewform?entry.1=token&entry.1=agent_name"
        )
    assert "entry.1" in refused.value.message and "twice" in refused.value.message


def test_a_prefilled_link_with_a_raw_character_beyond_ascii_is_refused_as_check_config_does():
    # The link printed would be one check-config refuses (survey.form.url): said now instead.
    link = "https://docs.google.com/forms/d/e/фо/viewform?entry.1=token"
    with pytest.raises(ConfigError) as refused:
        parse_prefilled_link(link)
    assert "only ASCII in a link" in refused.value.message
    result = CliRunner().invoke(main, ["form-fields", link])
    assert result.exit_code == 2 and "only ASCII in a link" in result.output
    assert "url:" not in result.output


def test_form_fields_command_prints_config():
    result = CliRunner().invoke(
        main,
        [
            "form-fields",
            "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=pp_url"
            "&entry.11=agent&entry.22=ticket&entry.33=ref",
        ],
    )
    assert result.exit_code == 0
    assert "url: https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform" in result.output
    assert "agent_name: entry.11" in result.output and "token: entry.33" in result.output


def test_link_command_prints_a_link_with_a_valid_token(tmp_path):
    from csat_hook import tokens

    result = CliRunner().invoke(
        main,
        ["link", "--agent", "Anna", "--agent-id", "7", "--ticket", "42"],
        env={"CSAT_HOOK_CONFIG": None},
    )
    assert result.exit_code == 0, result.output
    fields = link_fields(result.output.strip())
    config = load_config(None, env={})
    ref = tokens.verify(fields[config.survey.form.fields["token"]], config.token.all_secrets())
    assert (ref.helpdesk, ref.dialog_id, ref.agent) == ("dryrun", "42", "7")


@pytest.mark.parametrize(
    ("arguments", "option", "says"),
    [
        # Bytes that are not UTF-8 on a UTF-8 terminal reach Python as lone surrogates: the
        # link's encoding raised UnicodeEncodeError, a traceback.
        (["--agent", "M\udcfcller", "--ticket", "42"], "--agent", "not text"),
        (["--agent", "Anna", "--ticket", "4\udcff2"], "--ticket", "not text"),
        (["--agent", "Anna", "--team", "L\udce42", "--ticket", "42"], "--team", "not text"),
        # A ticket no webhook could carry: the link was printed, with a reference longer than
        # any that verifies (the short link and the sync refused it as malformed).
        (["--agent", "Anna", "--ticket", "x" * 5000], "--ticket", "longer than 191"),
        (["--agent", "Anna", "--agent-id", "7" * 1000, "--ticket", "42"], "--agent-id", "1024"),
        # A helpdesk misspelt: named with those configured, as every other command does.
        (
            ["--agent", "Anna", "--ticket", "42", "--helpdesk", "dryrn"],
            "--helpdesk",
            "configured: dryrun",
        ),
    ],
)
def test_link_command_refuses_values_no_survey_could_carry_naming_the_option(
    arguments, option, says
):
    result = CliRunner().invoke(main, ["link", *arguments], env={"CSAT_HOOK_CONFIG": None})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert option in result.output and says in result.output
    assert "docs.google.com" not in result.output


# --- a reply whose agent has no known name (issue #10) --------------------------------------


@pytest.mark.parametrize(
    ("name", "agent_id", "email", "readable"),
    [
        ("Anna Petrova", "7", "anna@x.org", "Anna Petrova"),
        ("  Анна ", None, None, "Анна"),
        (None, "7", "anna@x.org", None),
        ("", "7", None, None),
        ("7", "7", None, None),  # helpdesks fill a missing name with the id…
        ("anna@x.org", "7", "anna@x.org", None),  # …or the e-mail
        ("Anna <anna@x.org>", None, None, None),
        ("222", None, None, None),  # no letter: an id, whatever it says
    ],
)
def test_readable_agent_name(name, agent_id, email, readable):
    assert readable_agent_name(name, agent_id=agent_id, email=email) == readable


@pytest.mark.parametrize(
    ("language", "start"),
    [
        ("en", "Thanks for contacting us! How did we do?"),
        ("en-GB", "Thanks for contacting us! How did we do?"),
        ("ru", "Спасибо за обращение! Оцените, пожалуйста, как мы с вами поработали:"),
        ("de", "Thanks for contacting us! How did we do?"),  # the default language's
    ],
)
def test_an_empty_agent_name_picks_the_template_without_an_agent(language, start):
    text = reply_text(
        ReplyConfig(),
        language,
        link="L",
        agent_name=" ",
        customer_name="C",
        ticket="9",
        helpdesk="h",
        team="",
    )
    assert text.startswith(start) and text.endswith("L") and "  " not in text


def test_a_template_that_does_not_name_the_agent_is_kept_without_a_name():
    reply = ReplyConfig(templates={"en": "Rate us: {link}"}, templates_without_agent={})
    text = reply_text(
        reply, "en", link="L", agent_name="", customer_name="", ticket="", helpdesk="", team=""
    )
    assert text == "Rate us: L"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"templates_without_agent": {"en": "How did {agent_name} do? {link}"}}, "{agent_name}"),
        ({"templates_without_agent": {"ru": "Оцените нас"}}, "must contain {link}"),
        ({"agent_label_without_name": {"en": "team@example.com"}}, "e-mail"),
        ({"agent_label_without_name": {"en": " "}}, "1 to 100 characters"),
    ],
)
def test_templates_without_an_agent_are_checked_at_load(reply, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ReplyConfig.model_validate(reply)


def test_an_older_config_without_a_nameless_template_loads_and_uses_the_label():
    # Configurations from before templates_without_agent keep starting (check-config warns);
    # a reply without a known name then reads the stand-in label, never an id.
    reply = ReplyConfig.model_validate(
        {
            "templates": {"de": "Wie war {agent_name}? {link}"},
            "agent_label_without_name": {"de": "Support-Team"},
            "default_language": "de",
        }
    )
    assert reply.languages_without_nameless_template() == ["de"]
    text = reply_text(
        reply, "de", link="L", agent_name="", customer_name="", ticket="", helpdesk="", team=""
    )
    assert text == "Wie war Support-Team? L"


def test_a_language_with_both_templates_loads():
    reply = ReplyConfig.model_validate(
        {
            "templates": {"de": "Wie war {agent_name}? {link}"},
            "templates_without_agent": {"de": "Wie waren wir? {link}"},
            "agent_label_without_name": {"de": "Support-Team"},
            "default_language": "de",
        }
    )
    assert agent_label(reply, "de-AT", None) == "Support-Team"
    assert agent_label(reply, "de", "Anna") == "Anna"
    # No label for the language nor the default one: the agent field is left empty.
    assert agent_label(ReplyConfig(default_language="de"), "fr", None) == ""


def _open_at_each_line_end_or_before(text: str, *ours: str) -> list[str]:
    """The bidirectional embeddings, overrides and isolates still open where our own text
    starts (before each of ``ours``) or a line ends: Unicode's bidi algorithm, in short."""
    found: list[str] = []
    points = {len(text)} | {i for i, c in enumerate(text) if c == "\n"}
    points |= {i for fragment in ours for i in range(len(text)) if text.startswith(fragment, i)}
    for at in sorted(points):
        stack: list[str] = []
        for char in text[:at]:
            if char == "\n":
                stack.clear()
            elif char in "\u202a\u202b\u202d\u202e\u2066\u2067\u2068":
                stack.append(char)
            elif char == "\u202c" and stack and stack[-1] in "\u202a\u202b\u202d\u202e":
                stack.pop()
            elif char == "\u2069" and any(c in "\u2066\u2067\u2068" for c in stack):
                while stack.pop() not in "\u2066\u2067\u2068":
                    pass
        found += stack
    return found


def test_a_name_opening_a_right_to_left_override_does_not_reverse_the_reply():
    # An agent's display name ending in U+202E (RIGHT-TO-LEFT OVERRIDE) showed the rest of
    # the customer's line reversed: "How did Bob ?od uoy did woH" for "do, Ann? <link>".
    reply = ReplyConfig(
        templates={"en": "How did {agent_name} ({team}) do, {customer_name}? {link}"}
    )
    text = reply_text(
        reply,
        "en",
        link="https://csat.example.com/s/abc.def",
        agent_name="Bob\u202e",
        customer_name="Ann\u202b",
        ticket="9",
        helpdesk="h",
        team="\u2067L1",
    )
    assert _open_at_each_line_end_or_before(text, " (", ") do", "? https") == []
    assert "Bob\u202e" in text and "Ann\u202b" in text  # the names as typed


LONG_FORM = FormConfig(
    url="https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform",
    fields={
        "agent_name": "entry.1",
        "agent_id": "entry.5",
        "agent_email": "entry.6",
        "ticket": "entry.2",
        "token": "entry.3",
        "team": "entry.4",
        "rating": "entry.7",
    },
    rating_values={5: "5 – Очень довольны 😀" * 8},
)
# As long as a survey's values can be (the columns' sizes), each character of them taking
# 6 to 12 characters encoded: far over what Google Forms opens (about 2,000).
LONG_VALUES = LinkValues(
    agent_name="Анна 😀&#+%" * 25,  # 250 characters
    agent_id="7" * 191,
    agent_email=("ж" * 240) + "@example.com",
    ticket="&#+%Ж" * 38,
    helpdesk="generic",
    team="Поддержка 🚀" * 20,
    token="MXxnZW5lcmljfEQtMTd8N3x0b3N1bzB8dXllOA." + "A" * 300,
)


def _query(link: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


@pytest.mark.parametrize("rating", [None, 5])
def test_a_form_link_stays_short_enough_to_open_keeping_the_reference_and_the_score(rating):
    link = build_link(LONG_FORM, LONG_VALUES, rating=rating)

    assert len(link) <= MAX_LINK_LENGTH
    fields = _query(link)
    assert fields["entry.3"] == LONG_VALUES.token  # answers are credited by it: never cut
    if rating is not None:
        assert fields["entry.7"] == LONG_FORM.rating_value(5)
    # The other values are cut, least needed first; what is left of each reads as written.
    assert LONG_VALUES.agent_name.startswith(fields["entry.1"]) and fields["entry.1"]
    for entry, role in (("entry.2", "ticket"), ("entry.4", "team"), ("entry.6", "agent_email")):
        assert getattr(LONG_VALUES, role).startswith(fields.get(entry, "")), role
    # A link that fits is left whole.
    assert decode_link(build_link(LONG_FORM, VALUES), LONG_FORM) == {
        "agent_name": "Анна (L2)",
        "agent_id": "7",
        "ticket": "T 1&2",
        "token": "abc.def",
    }


def test_a_stored_link_with_the_score_added_stays_short_enough():
    # A survey's link as it went out (an earlier release did not bound it), then a score link.
    params = [
        (entry, getattr(LONG_VALUES, role))
        for role, entry in LONG_FORM.fields.items()
        if role != "rating"
    ]
    stored = LONG_FORM.url + "?" + urllib.parse.urlencode([("usp", "pp_url"), *params])
    assert len(stored) > MAX_LINK_LENGTH

    link = with_rating(LONG_FORM, stored, 5)

    assert len(link) <= MAX_LINK_LENGTH
    fields = _query(link)
    assert fields["entry.3"] == LONG_VALUES.token
    assert fields["entry.7"] == LONG_FORM.rating_value(5)
    assert LONG_VALUES.agent_name.startswith(fields["entry.1"]) and fields["entry.1"]


def test_a_template_link_stays_short_enough():
    form = FormConfig(
        kind="template",
        url_template="https://tally.so/r/abc?agent={agent_name}&team={team}&t={ticket}&ref={token}",
    )

    link = build_link(form, LONG_VALUES)

    assert len(link) <= MAX_LINK_LENGTH
    fields = _query(link)
    assert fields["ref"] == LONG_VALUES.token
    assert LONG_VALUES.agent_name.startswith(fields["agent"]) and fields["agent"]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        # Google's submit address: opening it with the pre-filled values submits them, so a
        # mail scanner following a score link would answer the survey for the customer.
        ("https://docs.google.com/forms/d/e/1FAIpQLSe_abc/formResponse", "formResponse"),
        ("https://docs.google.com/forms/d/e/1FAIpQLSe_abc/formResponse/", "formResponse"),
        ("https://docs.google.com/forms/d/1AbCdEf/edit", "/edit"),  # the editor, not public
        ("https://docs.google.com/forms/d/1AbCdEf/edit?usp=sharing", "/edit"),
        ("https://docs.google.com/forms/d/e/1FAIpQLSe_abc/prefill", "/prefill"),
    ],
)
def test_a_form_link_that_is_not_the_forms_public_page_is_refused(url, said):
    with pytest.raises(ValidationError) as raised:
        FormConfig(url=url, fields={"token": "entry.3"})

    message = str(raised.value)
    assert said in message and "/viewform" in message


def test_a_template_that_submits_a_google_form_is_refused():
    with pytest.raises(ValidationError, match="formResponse"):
        FormConfig(
            kind="template",
            url_template="https://docs.google.com/forms/d/e/X/formResponse?entry.1={rating}"
            "&entry.2={token}&submit=Submit",
        )


def test_the_public_page_is_accepted():
    for url in (
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform",
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=sf_link",
        "http://127.0.0.1:8080/forms/d/e/x/viewform",
    ):
        assert FormConfig(url=url, fields={"token": "entry.3"}).url == url


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"entry.4": "campaign-x"}, "entry.4"),  # the reference's entry: answers uncredited
        ({"entry.5": "3"}, "entry.5"),  # the rating's: a score link would carry two
        ({"usp": "embed"}, "usp"),  # what marks the link as pre-filled
    ],
)
def test_extra_params_cannot_give_a_field_of_the_link_a_second_value(extra, named):
    # A fixed parameter naming an entry the link fills went out before it: the link carried
    # entry.4 twice, the operator's value first, where the form reads the reference.
    with pytest.raises(ValidationError) as raised:
        FormConfig(
            fields={"agent_name": "entry.1", "token": "entry.4", "rating": "entry.5"},
            extra_params=extra,
        )

    message = str(raised.value)
    assert "extra_params" in message and named in message


def test_extra_params_of_their_own_are_carried():
    form = FormConfig(fields={"token": "entry.4"}, extra_params={"entry.9": "chat", "hl": "ru"})
    fields = link_fields(build_link(form, LinkValues("", "", "", "D1", "generic", "", "T.K")))
    assert (fields["entry.9"], fields["hl"], fields["entry.4"]) == ("chat", "ru", "T.K")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        # The ticket's entry copied as the reference's: entry.4=D1&entry.4=<reference>.
        ({"ticket": "entry.4", "token": "entry.4"}, ("fields.ticket", "fields.token")),
        # The rating's as the reference's: a score link replaced the reference by the score.
        ({"token": "entry.4", "rating": "entry.4"}, ("fields.token", "fields.rating")),
        ({"agent_name": "entry.1", "agent_id": "entry.1", "token": "entry.4"}, ("agent_id",)),
    ],
)
def test_two_fields_cannot_name_one_entry(fields, named):
    # Each role filled the entry in turn: the link carried it twice (the form reading one of
    # them), and with_rating, which replaces the rating's entry, dropped the reference.
    with pytest.raises(ValidationError) as raised:
        FormConfig(fields=fields)

    message = str(raised.value)
    assert all(name in message for name in named), message


# A Google short link (forms.gle, the older goo.gl/forms) is a redirect Google keeps: nothing
# documents that it passes a query on to the form, so every survey's pre-filled values (the
# signed reference too) may be dropped and every answer come in unverified, never credited.
# Refused at load, pointing at the long link. goo.gl links no longer resolve at all.
SHORT_FORM_LINKS = (
    "https://forms.gle/AbCdEf123456",
    "https://FORMS.GLE/AbCdEf123456/",
    "http://forms.gle/AbCdEf123456",
    "https://goo.gl/forms/AbCdEf123456",
    "https://www.goo.gl/forms/AbCdEf123456",
)


@pytest.mark.parametrize("url", SHORT_FORM_LINKS)
def test_a_google_short_link_as_the_form_is_refused_naming_the_long_one(url):
    with pytest.raises(ValidationError) as raised:
        FormConfig(url=url, fields={"token": "entry.3"})

    message = str(raised.value)
    assert "short link" in message
    assert "docs.google.com/forms/d/e/…/viewform" in message and "Get pre-filled link" in message


def test_a_google_short_link_in_a_template_is_refused():
    with pytest.raises(ValidationError, match="short link"):
        FormConfig(kind="template", url_template="https://forms.gle/AbC?entry.1={token}")


def test_check_config_refuses_a_google_short_link_as_the_form(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text("survey:\n  form:\n    url: https://forms.gle/AbCdEf123456\n")

    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])

    assert result.exit_code == 2, result.output
    assert "survey.form.url: https://forms.gle/… is a short link" in result.output
    assert "Get pre-filled link" in result.output


def test_the_long_link_and_other_hosts_are_not_taken_for_a_short_link():
    for url in (
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform",
        "https://forms.gle.example.com/viewform",  # another host that only starts alike
        "https://goo.gl.example.com/forms/x",
    ):
        assert FormConfig(url=url, fields={"token": "entry.3"}).url == url
    form = FormConfig(kind="template", url_template="https://tally.so/r/abc?ref={token}")
    assert form.url_template == "https://tally.so/r/abc?ref={token}"


def test_a_prefilled_link_without_a_token_field_is_refused_not_printed_as_a_block():
    # It printed a survey.form block without fields.token, exit 0, and a warning on stderr:
    # pasted, check-config refused it ("survey.form: fields.token is required").
    link = (
        "https://docs.google.com/forms/d/e/1FAIpQLSe_abc/viewform?usp=pp_url"
        "&entry.11=agent_name&entry.22=ticket&entry.33=signed"
    )
    result = CliRunner().invoke(main, ["form-fields", link])
    assert result.exit_code == 2, result.output
    assert "no field holds the value 'token'" in result.output
    assert "entry.33='signed'" in result.output and "survey.form.fields.token" in result.output
    assert "fields:" not in result.output and "Traceback" not in result.output


RATED_FORM = {
    "url": "https://docs.google.com/forms/d/e/X/viewform",
    "fields": {
        "agent_name": "entry.1",
        "ticket": "entry.3",
        "token": "entry.4",
        "rating": "entry.5",
    },
}


def _links(**links: object) -> dict[str, object]:
    """A survey section showing the scale labelled, on 0–10 unless ``links`` say otherwise."""
    return {
        "form": RATED_FORM,
        "links": {
            "public_base_url": "https://csat.example.com",
            "style": "scores",
            "labelled": True,
            "scale_min": 0,
            "scale_max": 10,
            **links,
        },
    }


def _shown(survey: dict[str, object], language: str) -> list[str]:
    config = load_config(
        None, env={}, overrides={"survey": survey, "metrics": {"scale_min": 0, "scale_max": 10}}
    )
    return [c.label for c in survey_segment(config.survey.links, "abc.def", language).choices]


def test_a_0_to_10_scale_shown_labelled_has_its_ends_labelled_as_built_in():
    # The built-in labels are the 1–5 scale's: on 0–10 they read "1 – Very dissatisfied" ...
    # "5 – Very satisfied" in the middle of the scale, 0 and 6–10 bare.
    numbers = [str(score) for score in range(1, 10)]
    assert _shown(_links(), "en") == ["0 – Very dissatisfied", *numbers, "10 – Very satisfied"]
    assert _shown(_links(), "ru") == ["0 – Очень плохо", *numbers, "10 – Отлично"]
    # config.example.yaml writes the built-in labels out: the same.
    example = {
        "en": {
            1: "Very dissatisfied",
            2: "Dissatisfied",
            3: "Neutral",
            4: "Satisfied",
            5: "Very satisfied",
        }
    }
    assert _shown(_links(labels=example), "en")[::10] == [
        "0 – Very dissatisfied",
        "10 – Very satisfied",
    ]
    # An operator's labels of the ends, and any between, are shown as written.
    mine = {"en": {0: "Not at all", 5: "So-so", 10: "Perfect"}}
    assert _shown(_links(labels=mine), "en")[::5] == ["0 – Not at all", "5 – So-so", "10 – Perfect"]


@pytest.mark.parametrize(
    ("links", "message"),
    [
        (
            {"labels": {"en": {1: "Awful", 2: "Bad", 3: "OK", 4: "Good", 5: "Great"}}},
            "survey.links: labels.en.0 and labels.en.10 missing: labelled: true shows the "
            "scale 0–10, whose ends need a label",
        ),
        (
            {"labels": {"en": {0: "Awful", 10: "Great"}, "de": {0: "Schlecht"}}},
            "survey.links: labels.de.10 missing",
        ),
        (
            {"scale_min": 1, "scale_max": 4, "labels": {"en": {1: "Awful", 4: "Good", 5: "Great"}}},
            "survey.links: labels.en.5: 5 is off the scale 1–4",
        ),
    ],
)
def test_labels_of_the_operators_that_miss_an_end_of_the_scale_shown_are_refused(links, message):
    with pytest.raises(ConfigError) as refused:
        _shown(_links(**links), "en")
    assert message in str(refused.value)


@pytest.mark.parametrize("shown", [{"labelled": False}, {"style": "link"}])
def test_labels_not_shown_are_not_checked(shown):
    labels = {"en": {1: "Awful", 5: "Great"}}
    load_config(
        None,
        env={},
        overrides={
            "survey": _links(labels=labels, **shown),
            "metrics": {"scale_min": 0, "scale_max": 10},
        },
    )
