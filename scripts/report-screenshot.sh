#!/usr/bin/env bash
# Renders a sample daily report in headless Chromium so that a person can
# look at it: scripts/report-screenshot.sh [OUTDIR]
# Writes OUTDIR/report-2026-11-20.{html,csv}, the sample log it came from,
# and OUTDIR/report.png (1280 wide) and OUTDIR/report-print.pdf.
# Installs Debian's chromium if it is missing (needs root). Not part of
# `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    chrome=$(command -v chromium)
  else
    echo "report-screenshot: chromium is not installed (apt-get install chromium)" >&2
    exit 1
  fi
fi

SCHOOLGATE_REPORT_SAMPLE="$out" go test -count=1 -run '^TestWriteSample$' ./report >/dev/null

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --user-data-dir="$profile")
"$chrome" "${flags[@]}" --screenshot="$out/report.png" --window-size=1280,${HEIGHT:-2400} \
  "file://$out/report-2026-11-20.html" 2>/dev/null
"$chrome" "${flags[@]}" --print-to-pdf="$out/report-print.pdf" --no-pdf-header-footer \
  "file://$out/report-2026-11-20.html" 2>/dev/null || true
echo "$out/report.png"
