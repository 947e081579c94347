"""Comparison reports over searched runs (issue 9 §3; DetOFA paper Fig. 5, Fig. 6, Tables 2-3).

``write_report([(folder, label), ...], out)`` reads every run (``runs``), computes the numbers
(``compare``), and writes into ``out``: ``fig5_ap_vs_mflops.png``, ``fig6_val_loss.png`` (when a
DetOFA run recorded Fig. 6's paths), ``report.md`` and ``report.json``. Every input is checked
and the output folder is checked before anything is written: ``out`` must be absent, empty, or a
folder holding only an earlier report's files.
"""
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from ..atomic import write_json_atomic, write_text_atomic
from .compare import DEFAULT_TOLERANCE, REPORT_FORMAT, compare
from .figures import FIG5, FIG6, plot_fig5, plot_fig6
from .markdown import render
from .runs import PARETO_FORMAT, PARETO_VERSION, ReportError, Run, label_of, read_pareto, read_run, read_runs

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
OWN_FILES = (REPORT_MD, REPORT_JSON, FIG5, FIG6)


def check_output_folder(out: str) -> None:
    """``out`` is absent, an empty folder, or a folder of an earlier report (its ``report.json``
    says so and it holds nothing else): a report never replaces a file it did not write."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ReportError(f"-o {out}: is a file, not a folder")
    if not os.path.isdir(out):
        return
    entries = set(os.listdir(out))
    if not entries:
        return
    foreign = sorted(entries - set(OWN_FILES))
    own = False
    if REPORT_JSON in entries:
        try:
            with open(os.path.join(out, REPORT_JSON), encoding="utf-8") as f:
                own = json.load(f).get("format") == REPORT_FORMAT
        except (OSError, ValueError, AttributeError):
            own = False
    if foreign or not own:
        what = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "") if foreign else \
            ", ".join(sorted(entries))
        raise ReportError(f"-o {out}: the folder holds files this report did not write ({what}); give a new or "
                          f"empty folder, or the folder of an earlier report")


def write_report(specs: Sequence[Tuple[str, Optional[str]]], out: str,
                 tolerance: float = DEFAULT_TOLERANCE) -> Dict:
    """Read ``specs`` ((folder, label or None) pairs), write the report into ``out``; returns
    the ``report.json`` dict (with ``files``: what was written)."""
    if not specs:
        raise ReportError("give at least one run folder")
    if not 0 <= tolerance < 1:
        raise ReportError(f"--budget-tolerance {tolerance}: expected a fraction in [0, 1)")
    runs: List[Run] = read_runs(specs)
    check_output_folder(out)
    rep = compare(runs, tolerance)
    os.makedirs(out, exist_ok=True)
    plot_fig5(runs, os.path.join(out, FIG5))
    figures = {"fig5": FIG5, "fig6": None}
    fig6_path = os.path.join(out, FIG6)
    if any(r.fig6 for r in runs):
        plot_fig6(runs, fig6_path)
        figures["fig6"] = FIG6
    elif os.path.isfile(fig6_path):          # an earlier report's figure of other runs
        os.remove(fig6_path)
    rep["figures"] = figures
    write_json_atomic(os.path.join(out, REPORT_JSON), rep, indent=1)
    write_text_atomic(os.path.join(out, REPORT_MD), render(rep, figures))
    rep["files"] = [os.path.join(out, f) for f in (REPORT_MD, REPORT_JSON, FIG5, figures["fig6"]) if f]
    return rep


__all__ = ["write_report", "check_output_folder", "ReportError", "Run", "read_run", "read_runs", "read_pareto",
           "label_of", "compare", "PARETO_FORMAT", "PARETO_VERSION", "REPORT_FORMAT", "OWN_FILES"]
