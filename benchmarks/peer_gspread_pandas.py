"""The peer of the sync benchmark: the script a support analyst would write with gspread and
pandas (read the responses sheet, group by agent, write a tab per agent), run against the
same fake Google API as csat-hook.

    pip install pandas      # benchmark-only (or: pip install -e '.[bench]')
    python benchmarks/peer_gspread_pandas.py <fake url> <service account JSON file>
                                             <responses spreadsheet> <output spreadsheet>

``analyst_report`` is that script as one would write it from gspread's and pandas' docs; the
rest only points gspread's HTTP session at the fake (the same requests Google would get) and
prints what the run cost as JSON: wall time, this process's CPU time (imports excluded) and
its peak RSS. ``sync_bench.py`` runs it in a child process and counts its requests at the
fake. It credits answers by the form's editable Agent field and has no notion of a survey,
an edit or a forged reference: it only has to be as fast, not as correct.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import gspread
import pandas as pd
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
GOOGLE = "https://sheets.googleapis.com"


def analyst_report(gc: gspread.Client, responses_id: str, output_id: str) -> int:
    """Read every answer, compute CSAT per agent, write one tab per agent and a summary."""
    responses = gc.open_by_key(responses_id).worksheet("Form Responses 1")
    df = pd.DataFrame(responses.get_all_records())
    df["Satisfied"] = df["Rating"] >= 4
    summary = (
        df.groupby("Agent")
        .agg(answers=("Rating", "size"), csat=("Satisfied", "mean"), mean=("Rating", "mean"))
        .reset_index()
    )
    out = gc.open_by_key(output_id)
    for agent, answers in df.groupby("Agent"):
        title = str(agent)[:100]
        try:
            tab = out.worksheet(title)
            tab.clear()
        except gspread.WorksheetNotFound:
            tab = out.add_worksheet(title, rows=len(answers) + 1, cols=len(answers.columns))
        rows = answers.astype(str).values.tolist()
        tab.update([answers.columns.tolist(), *rows], "A1")
    try:
        tab = out.worksheet("Summary")
        tab.clear()
    except gspread.WorksheetNotFound:
        tab = out.add_worksheet("Summary", rows=len(summary) + 1, cols=len(summary.columns))
    tab.update([summary.columns.tolist(), *summary.astype(str).values.tolist()], "A1")
    return len(summary)


class _ToFake(requests.adapters.HTTPAdapter):
    """Sends what gspread addresses to Google to the fake instead (nothing else changes)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        request.url = self.base + request.url[len(GOOGLE) :]
        return super().send(request, *args, **kwargs)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    fake_url, account_file, responses_id, output_id = sys.argv[1:5]
    with open(account_file, encoding="utf-8") as handle:
        info = json.load(handle)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    session = AuthorizedSession(credentials)
    session.mount(GOOGLE, _ToFake(fake_url))
    gc = gspread.Client(credentials, session=session)
    started, cpu = time.perf_counter(), time.process_time()
    agents = analyst_report(gc, responses_id, output_id)
    print(
        json.dumps(
            {
                "agents": agents,
                "wall": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
                "rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
