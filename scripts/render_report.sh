#!/usr/bin/env bash
# Render the demo report's Summary, in English and in Russian, as a real spreadsheet
# application shows it: `csat-hook dev demo` writes the .xlsx, LibreOffice (headless) prints
# it to PDF, poppler's pdftoppm turns the first page into a PNG.
#
#   scripts/render_report.sh [OUT_DIR]      # default: docs/images (summary-en.png, summary-ru.png)
#
# LibreOffice Calc and poppler-utils are installed with apt-get when missing (as root, or
# through sudo). The Russian rendering runs LibreOffice with a Russian locale, so numbers read
# 85,3% as a Russian reader's spreadsheet shows them: the file stores formats, not text.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/images}
python=${PYTHON:-.venv/bin/python}

need() {  # need COMMAND PACKAGE...
    command -v "$1" >/dev/null 2>&1 && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing ${*:2} (for $1)" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}
need soffice libreoffice-calc fonts-dejavu-core
need pdftoppm poppler-utils

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
for lang in en ru; do
    mkdir -p "$work/$lang"
    # examples/demo.yaml with this language and everything under the scratch directory.
    "$python" - "$work/$lang" "$lang" <<'PY'
import sys
from pathlib import Path

import yaml

work, lang = Path(sys.argv[1]), sys.argv[2]
config = yaml.safe_load(Path("examples/demo.yaml").read_text(encoding="utf-8"))
config["database"]["url"] = f"sqlite:///{work}/csat.sqlite3"
config["results"]["csv"]["path"] = str(work / "form-responses.csv")
config["output"]["language"] = lang
config["output"]["local"] = {"dir": str(work / "report"), "csv": False}
config["helpdesks"]["dryrun"]["output"] = str(work / "dry.jsonl")
(work / "demo.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
PY
    "$python" -m csat_hook -c "$work/$lang/demo.yaml" dev demo >/dev/null 2>&1
    locale=C.UTF-8
    [ "$lang" = ru ] && locale=ru_RU.UTF-8
    LANG=$locale LC_ALL=$locale soffice -env:UserInstallation="file://$work/lo-$lang" \
        --headless --convert-to pdf --outdir "$work/$lang" "$work/$lang/report/csat-report.xlsx" >/dev/null 2>&1
    pdftoppm -png -r 80 -f 1 -l 1 -singlefile "$work/$lang/csat-report.pdf" "$out/summary-$lang"
    echo "$out/summary-$lang.png"
done
