"""The sync's configuration: the example file documents and loads it; errors name keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.config import masked_dump
from csat_hook.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
SECTIONS = ("google", "results", "metrics", "output", "sync")


def test_the_example_loads_without_any_environment():
    config = load_config(EXAMPLE, env={})
    assert config.results.source == "csv" and config.google.service_account_json is None


def keys(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{prefix}{key}"
            if key != "rating_labels":  # free-form: label → score
                yield from keys(item, f"{prefix}{key}.")


def test_the_example_shows_every_sync_key():
    written = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    dumped = Config().model_dump(mode="json")
    for section in SECTIONS:
        assert set(keys(written[section], f"{section}.")) == set(
            keys(dumped[section], f"{section}.")
        ), section


def test_every_sync_key_in_the_example_has_a_comment():
    """A key line carries a comment, follows one, or opens a block (rating labels excepted)."""
    part = EXAMPLE.read_text(encoding="utf-8").split("# --- The sync")[1].split("\n", 1)[1]
    lines = part.splitlines()
    in_labels = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("rating_labels:"):
            in_labels = True
        elif line and not line.startswith(" "):
            in_labels = False
        if not stripped or stripped.startswith(("#", "- ")) or in_labels:
            continue
        documented = "#" in line or lines[i - 1].strip().startswith("#")
        assert documented or stripped.endswith(":"), f"undocumented: {line}"


def test_the_service_account_json_is_a_masked_secret():
    config = load_config(EXAMPLE, env={"GOOGLE_SERVICE_ACCOUNT_JSON": '{"private_key": "x"}'})
    assert "private_key" not in str(masked_dump(config))


def test_both_service_account_settings_are_refused_naming_both():
    # The inline JSON silently won over the file: which account the sync used depended on
    # a rule written nowhere.
    env = {"SA_FILE": "/etc/csat/sa.json", "SA_JSON": '{"private_key": "SECRET-KEY"}'}
    with pytest.raises(ConfigError) as raised:
        load_config(
            None,
            env=env,
            overrides={
                "google": {
                    "service_account_file": "${SA_FILE}",
                    "service_account_json": "${SA_JSON}",
                }
            },
        )

    assert (
        "google: service_account_file and service_account_json are both set: set one of them"
        in raised.value.message
    )
    assert "SECRET-KEY" not in raised.value.message
    # Either one alone, or one left blank by an unset ${VAR:-}, is fine.
    blank = {"service_account_file": "${SA_FILE}", "service_account_json": "${NONE:-}"}
    assert load_config(None, env=env, overrides={"google": blank}).google.has_credentials


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"results": {"source": "gsheets", "gsheets": {"spreadsheet_id": "x"}}},
            "results: gsheets.sheet_gid or gsheets.sheet_name is required",
        ),
        (
            {"results": {"source": "forms_api", "forms_api": {"form_id": "f"}}},
            "results: forms_api.question_ids needs rating, token",
        ),
        (
            {"results": {"forms_api": {"question_ids": {"rating": "not hex!"}}}},
            "results.forms_api.question_ids: rating: 'not hex!' is not a Forms questionId",
        ),
        ({"metrics": {"top_box": 7}}, "metrics: top_box must lie within scale_min..scale_max"),
        ({"metrics": {"timezone": "Moscow"}}, "metrics.timezone: unknown time zone 'Moscow'"),
        ({"results": {"columns": {"rating": []}}}, "results.columns.rating: give at least one"),
        (
            {"google": {"sheets_base_url": "sheets.local"}},
            "google.sheets_base_url: must start with https://",
        ),
        ({"output": {"gsheets": {"enabled": True}}}, "output.gsheets.spreadsheet_id is required"),
        (
            {"results": {"rating_labels": {"Супер": 10}}},
            "results.rating_labels.Супер: 10 is outside",
        ),
        # Labels are compared without case, spacing or width: two such spellings with two
        # scores made the later one win, silently (every "Отлично" re-credited as a 4).
        (
            {"results": {"rating_labels": {"Отлично": 5, " ОТЛИЧНО ": 4}}},
            "results.rating_labels: 'Отлично' and ' ОТЛИЧНО ' are one label",
        ),
        (
            {"results": {"rating_labels": {"Very  satisfied": 5, "very satisfied": 4}}},
            "results.rating_labels: 'Very  satisfied' and 'very satisfied' are one label",
        ),
        # One column for two roles: the ticket field read the agent column (every answer an
        # "edit in place" of its ticket field), the comment the references, the NPS the ratings.
        (
            {"results": {"columns": {"ticket": ["Ticket", "agent "]}}},
            "results.columns: 'agent ' is a title of two roles, agent and ticket",
        ),
        (
            {"results": {"columns": {"nps": ["Оценка"]}}},
            "results.columns: 'Оценка' is a title of two roles, rating and nps",
        ),
        # Checked at start-up (check-config said OK, and every sync then failed).
        (
            {"results": {"csv": {"encoding": "klingon"}}},
            "results.csv.encoding: 'klingon' is not an encoding",
        ),
        (
            {"results": {"csv": {"encoding": "base64"}}},
            "results.csv.encoding: 'base64' is not a text encoding",
        ),
        (
            {"results": {"csv": {"encoding": "rot13"}}},
            "results.csv.encoding: 'rot13' is not a text encoding",
        ),
        # A link pasted for an id: every run failed at Google with a 404 that said to share
        # the spreadsheet (a "?" in it: a 400 about an unknown query parameter).
        (
            {
                "results": {
                    "source": "gsheets",
                    "gsheets": {
                        "spreadsheet_id": "https://docs.google.com/spreadsheets/d/1AbC_d-9/edit#gid=0"
                    },
                }
            },
            "results.gsheets.spreadsheet_id: a link, not an id: give 1AbC_d-9 (the part after /d/)",
        ),
        (
            {
                "output": {
                    "gsheets": {"enabled": True, "spreadsheet_id": "1AbC_d-9/edit?usp=sharing"}
                }
            },
            "output.gsheets.spreadsheet_id: '1AbC_d-9/edit?usp=sharing' is not a spreadsheet id",
        ),
        (
            {
                "results": {
                    "forms_api": {
                        "form_id": "https://docs.google.com/forms/d/e/1FAIpQLSd_x/viewform?usp=sf_link"
                    }
                }
            },
            "results.forms_api.form_id: the respondents' link (/forms/d/e/.../viewform) names the "
            "published form, not the form",
        ),
        (
            {"results": {"forms_api": {"form_id": "https://docs.google.com/forms/d/1Fx-y_z/edit"}}},
            "results.forms_api.form_id: a link, not an id: give 1Fx-y_z (the part after /d/)",
        ),
        # The id in the respondents' link alone (a published form's ids start "1FAIpQL"):
        # the Forms API knows the form by its edit id only, and answered 404.
        (
            {"results": {"forms_api": {"form_id": "1FAIpQLSd_x-yZ"}}},
            "results.forms_api.form_id: '1FAIpQLSd_x-yZ' is the id in the respondents' link",
        ),
        # Google refuses a body over 10 MiB ("Request payload size exceeds the limit:
        # 10485760 bytes."): up to 100 MB was taken, and every write of a report that
        # needed it failed at Google.
        (
            {"output": {"gsheets": {"max_request_bytes": 20_000_000}}},
            "output.gsheets.max_request_bytes: Input should be less than or equal to 10485760",
        ),
    ],
)
def test_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, overrides=overrides)
    assert message in caught.value.message
    # The key comes first, as in every other line (a check across sections was shown as
    # "(top level): results.rating_labels...").
    assert f"\n  {message}" in caught.value.message


def test_one_label_spelled_twice_with_one_score_is_accepted():
    config = load_config(
        None, env={}, overrides={"results": {"rating_labels": {"Отлично": 5, "отлично": 5}}}
    )
    assert config.results.rating_labels == {"Отлично": 5, "отлично": 5}


@pytest.mark.parametrize("name", ["Europe", "America", "Etc", "x" * 300])
@pytest.mark.parametrize(
    ("key", "section"),
    [
        ("metrics.timezone", lambda zone: {"metrics": {"timezone": zone}}),
        ("results.csv.timezone", lambda zone: {"results": {"csv": {"timezone": zone}}}),
        (
            "results.csv.timezone_abbreviations",
            lambda zone: {"results": {"csv": {"timezone_abbreviations": {"MSK": zone}}}},
        ),
    ],
)
def test_a_folder_of_the_zone_database_or_an_overlong_name_is_an_unknown_zone(key, section, name):
    # ZoneInfo("Europe") opens the folder .../zoneinfo/Europe: IsADirectoryError, and a name
    # longer than a file name may be gives OSError; both ended check-config in a traceback.
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, overrides=section(name))
    assert caught.value.message.count("\n") == 1  # the one key, named
    assert f"{key}" in caught.value.message
    assert "time zone" in caught.value.message or "IANA zone" in caught.value.message


ALERTS_ON = {
    "destinations": {
        "slack": {"kind": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"}
    },
    "rules": [{"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}],
}


@pytest.mark.parametrize(
    "overrides",
    [
        {"alerts": {**ALERTS_ON, "tab": "Summary"}},
        {"alerts": {**ALERTS_ON, "tab": "сводка"}},  # the Russian report's Summary
        {"alerts": {**ALERTS_ON, "tab": "Responses:"}},  # written as "Responses"
        {"alerts": ALERTS_ON, "output": {"gsheets": {"summary_tab": "alerts"}}},
        {"alerts": {**ALERTS_ON, "tab": "Team"}, "output": {"gsheets": {"unverified_tab": "Team"}}},
    ],
)
def test_the_alerts_tab_is_titled_apart_from_the_reports_other_tabs(overrides):
    """The report's own tabs are titled in order, the Alerts tab last: one titled like
    another became "Summary 2", while the team's "Handled" column was read back from the tab
    of the configured title, the other one. It was never found, and every edit the team made
    was overwritten by the next sync, silently."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, overrides=overrides)
    assert "alerts.tab" in caught.value.message
    assert "Handled" in caught.value.message


def test_the_alerts_tab_may_share_a_title_when_it_is_not_written():
    assert load_config(None, env={}, overrides={"alerts": {"tab": "Summary"}}).alerts.tab
    config = load_config(None, env={}, overrides={"alerts": {**ALERTS_ON, "tab": ""}})
    assert config.alerts.tab is None


@pytest.mark.parametrize(
    "encoding", ["utf-8", "UTF-8-SIG", "cp1251", "utf_16", "latin-1", "koi8-r"]
)
def test_a_csv_export_may_be_in_any_text_encoding(encoding):
    config = load_config(None, env={}, overrides={"results": {"csv": {"encoding": encoding}}})
    assert config.results.csv.encoding == encoding


@pytest.mark.parametrize(
    ("given", "path"), [("/etc/keys/sa.json", True), ("keys/sa.json", True), ("AIzaSy-x", False)]
)
def test_a_service_account_json_that_is_no_json_object_is_refused_at_load(given, path):
    # GOOGLE_SERVICE_ACCOUNT_JSON=/etc/keys/sa.json (a path, as GOOGLE_APPLICATION_CREDENTIALS
    # holds) passed check-config; every sync then said "not valid JSON (… at char 0)".
    with pytest.raises(ConfigError) as refused:
        load_config(
            None,
            env={"SA_JSON": given},
            overrides={"google": {"service_account_json": "${SA_JSON}"}},
        )
    message = refused.value.message
    assert "google.service_account_json" in message and "holds no JSON object" in message
    assert ("give the path as service_account_file" in message) is path
    assert "SA_JSON" in message and given not in message  # the variable named, never its value


@pytest.mark.parametrize("spelled_out", [False, True], ids=["unset", "as-the-example"])
@pytest.mark.parametrize(("low", "high"), [(1, 3), (1, 4), (2, 6), (0, 4), (0, 10), (1, 10)])
def test_a_scale_other_than_five_points_loads_and_reads_no_built_in_label(low, high, spelled_out):
    # A three-point scale, no rating_labels set: the built-in labels of the five-point scale
    # (Satisfied: 4, Very satisfied: 5) refused the configuration with an error about a key
    # nobody had written ("results.rating_labels.Satisfied: 4 is outside the scale 1..3").
    # Then they were read at their five-point scores wherever those fell on the scale: on
    # 0–10 "Very satisfied" was a 5 (a detractor's score), on 1–3 "Neutral" the top. They are
    # the 1–5 scale's words: on another scale a cell holding one is skipped, saying what to set.
    from csat_hook.sync.values import RatingError
    from csat_hook.sync.values import RatingScale

    top = min(high, 4)
    overrides: dict[str, Any] = {"metrics": {"scale_min": low, "scale_max": high, "top_box": top}}
    if spelled_out:  # config.example.yaml writes the built-in labels out: still theirs
        built_in = load_config(None, env={}, overrides={}).results.rating_labels
        overrides["results"] = {"rating_labels": dict(built_in)}
    config = load_config(None, env={}, overrides=overrides)
    scale = RatingScale.from_config(config.results, config.metrics)
    assert config.results.rating_labels  # the built-in ones, none of them read here
    for label in config.results.rating_labels:
        for cell in (label, f"  {label.upper()} "):
            with pytest.raises(RatingError) as caught:
                scale.parse(cell)
            assert caught.value.reason == "bad_rating", label
            assert f"on the {low}–{high} scale" in caught.value.detail
            assert "results.rating_labels" in caught.value.detail
    assert scale.parse(high) == high and scale.parse(f"{low} - {label}") == low
    with pytest.raises(RatingError) as other:
        scale.parse("Superb")
    assert "1–5" not in other.value.detail  # free text is not called a built-in label


def test_the_built_in_labels_are_read_on_the_five_point_scale():
    from csat_hook.sync.values import RatingScale

    config = load_config(None, env={}, overrides={})
    scale = RatingScale.from_config(config.results, config.metrics)
    assert {label: scale.parse(label) for label in config.results.rating_labels} == (
        config.results.rating_labels
    )
    assert scale.parse("very SATISFIED") == 5 and scale.parse("отлично") == 5


def test_labels_the_configuration_gives_are_read_on_a_ten_point_scale():
    from csat_hook.sync.values import RatingError
    from csat_hook.sync.values import RatingScale

    config = load_config(
        None,
        env={},
        overrides={
            "metrics": {"scale_min": 0, "scale_max": 10, "top_box": 9},
            "results": {"rating_labels": {"Very satisfied": 10, "Neutral": 5}},
        },
    )
    scale = RatingScale.from_config(config.results, config.metrics)
    assert scale.parse("Very satisfied") == 10 and scale.parse("neutral") == 5
    with pytest.raises(RatingError) as caught:
        scale.parse("Satisfied")  # not given, and the built-in ones are replaced
    assert "neither a number nor a configured label" in caught.value.detail


def test_a_label_the_configuration_gives_is_still_checked_against_the_scale():
    with pytest.raises(ConfigError) as caught:
        load_config(
            None,
            env={},
            overrides={
                "metrics": {"scale_min": 1, "scale_max": 3, "top_box": 3},
                "results": {"rating_labels": {"Great": 3, "Superb": 4}},
            },
        )
    assert "results.rating_labels.Superb: 4 is outside the scale 1..3" in caught.value.message


@pytest.mark.parametrize(
    "links",
    [
        {"scale_min": 1, "scale_max": 5},
        {"style": "scores", "public_base_url": "https://csat.example.com"},
    ],
)
def test_score_links_shown_or_set_are_still_checked_against_the_scale(links):
    with pytest.raises(ConfigError) as caught:
        load_config(
            None,
            env={},
            overrides={
                "metrics": {"scale_min": 1, "scale_max": 3, "top_box": 3},
                "survey": {
                    "links": links,
                    "form": {"fields": {"token": "entry.1", "rating": "entry.2"}},
                },
            },
        )
    assert "survey.links: the scale 1–5 must lie within" in caught.value.message
