"""``scripts/fault_drill.py`` in its short form: the Procfile deployment (gunicorn ``web:``
with two processes, two ``worker:`` processes) on PostgreSQL, closes sent one to four times
while the database drops the drill's connections, workers are killed mid-send, stopped,
stalled and restarted and the web is restarted, against a helpdesk that is slow, times out,
says 503 or 429 or drops the connection after storing the reply. The drill checks its own
invariants (one survey and one reply per acknowledged close, as the outbox and
``csat-hook outbox`` record it; no 5xx but a 503 with ``Retry-After``) and exits with the
number broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_every_acknowledged_close_gets_one_reply_through_the_drills_faults(
    migrated_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "fault_drill.py"),
            migrated_url,
            "--port=0",
            "--fast",
            "--dialogs=24",
            "--seconds=6",
            "--seed=11",
            "--fault-threads=2",
            f"--workdir={tmp_path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "acked dialogs: 24 of 24" in done.stdout, done.stdout
    # The faults happened (each fault thread's sequence is the seed's): connections dropped,
    # processes killed or restarted.
    assert "'pg_backends'" in done.stdout, done.stdout
