#!/usr/bin/env bash
# Mini reproduction of the DetOFA comparison (issue 9 §3) on the embedded synthetic data, on CPU:
# DetOFA and OFA w/o PS trained at equal epochs (6), both searched at the same budgets by
# DetOFASearcher, then `report` over both. Every step resumes: a finished step is skipped
# (its summary.json / pareto.json exists), a killed one continues where it stopped.
#   make reproduce-mini            (or: PY=.venv/bin/python scripts/reproduce_mini.sh)
# Outputs: runs/mini/{ofa_uniform,detofa,ofa_uniform_search,detofa_search}/, runs/mini/report/
# (report.md, report.json, fig5_ap_vs_mflops.png, fig6_val_loss.png), runs/mini/wall_seconds.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAS="$(dirname "$PY")/nnabla_nas"
MINI=examples/mini
mkdir -p runs/mini

step() {   # step NAME DONE_FILE: run examples/mini/NAME.json unless DONE_FILE exists
  local name=$1 done_file=$2 t0
  if [ -f "$done_file" ]; then
    echo "== $name: done ($done_file exists)"
    return
  fi
  echo "== $name: $NAS -f $MINI/$name.json (log: runs/mini/$name.log)"
  t0=$(date +%s)
  "$NAS" -f "$MINI/$name.json" -c cpu > "runs/mini/$name.log" 2>&1 || {
    echo "error: $name failed; the last lines of runs/mini/$name.log:" >&2
    tail -n 5 "runs/mini/$name.log" >&2
    exit 1
  }
  echo "$name $(( $(date +%s) - t0 ))" >> runs/mini/wall_seconds.txt
}

step ofa_uniform runs/mini/ofa_uniform/summary.json
step detofa runs/mini/detofa/summary.json
step ofa_uniform_search runs/mini/ofa_uniform_search/pareto.json
step detofa_search runs/mini/detofa_search/pareto.json
echo "== report"
"$PY" -m nnabla_nas_detofa report runs/mini/detofa_search runs/mini/ofa_uniform_search -o runs/mini/report
echo "== runs/mini/report/report.md"
cat runs/mini/report/report.md
