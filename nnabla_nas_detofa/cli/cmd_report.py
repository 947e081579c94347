"""``report``: the comparison of searched runs (DetOFA, OFA w/o PS, OFA w/ PS, CompOFA*) as figures and tables.

    python -m nnabla_nas_detofa report RUN_DIR[:LABEL] [RUN_DIR[:LABEL] ...] -o OUT [--budget-tolerance 0.01]

A RUN_DIR is a search folder (``pareto.json`` of DetOFASearcher) or a training folder holding
``search/pareto.json``. OUT gets ``fig5_ap_vs_mflops.png``, ``fig6_val_loss.png``, ``report.md``
and ``report.json`` (see ``nnabla_nas_detofa.report``); it must be new, empty, or an earlier
report's folder. Prints one JSON line: the files written and the average AP gaps.
"""
import json
import os
import sys

from ..schema import Num
from .argtypes import flag
from .errors import UserError


def parse_run_spec(text: str):
    """``RUN_DIR`` or ``RUN_DIR:LABEL`` (a folder whose own name holds ':' is taken as it is)."""
    if os.path.isdir(text) or ":" not in text:
        return text, None
    folder, label = text.rsplit(":", 1)
    if not label.strip():
        raise UserError(f"{text}: empty label after ':' (give RUN_DIR or RUN_DIR:LABEL)")
    return folder, label.strip()


def run_report(args):
    from ..report import ReportError, write_report
    specs = [parse_run_spec(t) for t in args.runs]
    try:
        rep = write_report(specs, args.output, args.budget_tolerance)
    except ReportError as err:
        raise UserError(str(err)) from None
    line = {"output": os.path.abspath(args.output), "files": rep["files"], "reference": rep["reference"],
            "mean_gap": {g["run"]: g["mean_gap"] for g in rep["gaps"]}, "notes": rep["notes"]}
    sys.stdout.write(json.dumps(line) + "\n")
    return 0


def register(sub):
    p = sub.add_parser("report", help="compare searched runs: Fig. 5 (AP vs MFLOPs), Fig. 6, AP per budget, "
                                      "average AP gap, training time (Table 3), filter quality (Table 2)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR[:LABEL]",
                   help="a search folder (pareto.json) or a training folder with search/pareto.json; "
                        "LABEL names it in the report (default: DetOFA / OFA w/ PS / OFA w/o PS / CompOFA* "
                        "from its training run's experiment)")
    p.add_argument("-o", "--output", required=True, help="the report folder (new, empty, or an earlier report's)")
    p.add_argument("--budget-tolerance", type=flag(Num(0, 1, hi_open=True)), default=0.01,
                   help="budgets of two runs are one budget when they differ by at most this fraction (default 0.01)")
    p.set_defaults(func=run_report)
