"""The peer of the Forms benchmark: the script an analyst would write with
google-api-python-client and pandas (read every response through the Forms API, group by
agent), run against the same fake Forms API as csat-hook.

    pip install -e '.[test,bench]'      # google-api-python-client and pandas
    python benchmarks/peer_forms_pandas.py <fake url> <service account JSON file> <form id>

``analyst_report`` is that script as one would write it from the Forms API's Python
quickstart and pandas' docs: ``forms.get`` to find the questions by title,
``responses.list`` / ``list_next`` for every page, a DataFrame, a groupby. The rest points the
client at the fake (``client_options.api_endpoint``, the documented way) and prints what the
run cost as JSON: wall time, this process's CPU time (imports excluded), its peak RSS. It
credits answers by the form's Agent field and keeps no state between runs (every run reads
every response), has no notion of a survey, an edit or a forged reference, and writes nothing
back: it only has to be as fast, not as correct.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pandas as pd
from google.oauth2 import service_account
from googleapiclient.discovery import build
from peer_gspread_pandas import peak_rss_mb

SCOPES = [
    "https://www.googleapis.com/auth/forms.body.readonly",
    "https://www.googleapis.com/auth/forms.responses.readonly",
]


def analyst_report(forms: Any, form_id: str) -> pd.DataFrame:
    """CSAT, mean rating and answer count per agent, from every response of the form."""
    form = forms.get(formId=form_id).execute()
    ids = {
        item["title"]: item["questionItem"]["question"]["questionId"]
        for item in form.get("items", [])
        if "questionItem" in item
    }
    rating_id, agent_id = ids["How satisfied are you?"], ids["Agent"]
    rows = []
    request = forms.responses().list(formId=form_id)
    while request is not None:
        page = request.execute()
        for response in page.get("responses", []):
            answers = response.get("answers", {})
            if rating_id in answers and agent_id in answers:
                rows.append(
                    {
                        "agent": answers[agent_id]["textAnswers"]["answers"][0]["value"],
                        "rating": int(answers[rating_id]["textAnswers"]["answers"][0]["value"]),
                    }
                )
        request = forms.responses().list_next(request, page)
    df = pd.DataFrame(rows)
    df["satisfied"] = df["rating"] >= 4
    return (
        df.groupby("agent")
        .agg(answers=("rating", "size"), csat=("satisfied", "mean"), mean=("rating", "mean"))
        .reset_index()
    )


def main() -> None:
    fake_url, account_file, form_id = sys.argv[1:4]
    with open(account_file, encoding="utf-8") as handle:
        info = json.load(handle)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    forms = build(
        "forms",
        "v1",
        credentials=credentials,
        client_options={"api_endpoint": fake_url},
        static_discovery=True,
        cache_discovery=False,
    ).forms()
    started, cpu = time.perf_counter(), time.process_time()
    summary = analyst_report(forms, form_id)
    print(
        json.dumps(
            {
                "agents": len(summary),
                "answers": int(summary["answers"].sum()),
                "wall": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
                "rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
