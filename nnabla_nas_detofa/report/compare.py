"""The numbers of a comparison report (standard library only): AP per budget, the average AP gap
of the reference run to every other run over the budgets they share (the paper's +0.85 VOC /
+0.45 COCO), training time per phase and in total (Table 3) and the path filter's quality
(Table 2). ``compare(runs)`` returns them as one JSON-ready dict (``report.json``).

Budgets of two runs are the same budget when they differ by at most ``tolerance`` (relative to
the larger). Training time is measured the same way for every run: the supernet's training
steps are the sum of the epochs' step time in the trainer's history (per-epoch validation of the
reference paths not included), DetOFA's other phases come from its ``phases.json`` ledger (wall
time, summed over resumed runs; Fig. 6's labelling is shown but left out of the totals) and the
search from the ``seconds`` of its ``pareto.json``.
"""
from typing import Dict, List, Optional

from .runs import DETOFA, Run

REPORT_FORMAT = "nnabla_nas_detofa.report"
REPORT_VERSION = 1
DEFAULT_TOLERANCE = 0.01
WEAK = "0.25"   # Table 2: detection of the weakest 25 % of paths
# DetOFA ledger phases -> report columns (warm-up and path-pruned training are the supernet's steps)
PATH_PHASES = ("paths", "paths_final")
SUPERNET_PHASES = ("warmup", "pruned_training")


def reference_run(runs: List[Run]) -> Run:
    """The run the gaps are measured from: the first DetOFA run, else the first run."""
    return next((r for r in runs if r.kind == DETOFA), runs[0])


def same_budget(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def budget_rows(runs: List[Run], tolerance: float) -> List[dict]:
    """One row per distinct budget (sorted): ``{"budget_mflops", "ap": {label: AP or None},
    "mflops": {label: MFLOPs of the found path or None}}``; a run's budget joins the first row it
    matches (one point per run and row)."""
    rows: List[dict] = []
    for run in runs:
        for p in run.points:
            row = next((r for r in rows if same_budget(r["budget_mflops"], p.budget_mflops, tolerance)
                        and run.label not in r["_points"]), None)
            if row is None:
                row = {"budget_mflops": p.budget_mflops, "_points": {}}
                rows.append(row)
            row["_points"][run.label] = p
    rows.sort(key=lambda r: r["budget_mflops"])
    out = []
    for r in rows:
        pts = r["_points"]
        out.append({"budget_mflops": r["budget_mflops"],
                    "ap": {run.label: pts[run.label].ap if run.label in pts else None for run in runs},
                    "mflops": {run.label: pts[run.label].mflops if run.label in pts else None for run in runs}})
    return out


def ap_gaps(rows: List[dict], ref: Run, runs: List[Run]) -> List[dict]:
    """Per other run: the reference's AP minus the run's, per shared budget and on average."""
    out = []
    for run in runs:
        if run is ref:
            continue
        per = [{"budget_mflops": r["budget_mflops"], "gap": r["ap"][ref.label] - r["ap"][run.label]}
               for r in rows if r["ap"][ref.label] is not None and r["ap"][run.label] is not None]
        mean = sum(g["gap"] for g in per) / len(per) if per else None
        out.append({"reference": ref.label, "run": run.label, "mean_gap": mean, "n_budgets": len(per),
                    "per_budget": per})
    return out


def _sum(values) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return float(sum(vals)) if vals else None


def training_time(run: Run) -> dict:
    """Seconds per part (see module doc); ``None`` where the run has no such part or no record."""
    hist = run.summary.get("history", []) if run.summary else []
    t = {"supernet_steps": _sum(float(h["seconds"]) for h in hist if isinstance(h.get("seconds"), (int, float)))
         if hist else None,
         "steps": int(sum(int(h.get("steps", 0) or 0) for h in hist)) if hist else None,
         "epochs": len(hist) if hist else None,
         "path_sampling": None, "pruning": None, "figures": None, "other_phases": None,
         "search": run.search_seconds, "phases_wall": None, "steps_per_space": None}
    if hist and any(h.get("space") for h in hist):
        per = {}
        for h in hist:
            if isinstance(h.get("seconds"), (int, float)):
                key = str(h.get("space"))
                per[key] = per.get(key, 0.0) + float(h["seconds"])
        t["steps_per_space"] = per      # progressive shrinking: one entry per stage's space
    if run.phases is not None:
        ph = {k: float(v["seconds"]) for k, v in run.phases.items()}
        t["phases_wall"] = ph
        t["path_sampling"] = _sum(ph.get(k) for k in PATH_PHASES)
        t["pruning"] = ph.get("pruning")
        t["figures"] = ph.get("figures")
        known = set(PATH_PHASES) | set(SUPERNET_PHASES) | {"pruning", "figures", "search"}
        t["other_phases"] = _sum(v for k, v in ph.items() if k not in known)
    # Fig. 6's labelling is a diagnostic of the run, not part of the method: outside the totals
    t["training_total"] = _sum([t["supernet_steps"], t["path_sampling"], t["pruning"], t["other_phases"]])
    t["total"] = _sum([t["training_total"], t["search"]])
    return t


def _quality_entry(q: Optional[dict]) -> Optional[dict]:
    if not isinstance(q, dict):
        return None
    weak = (q.get("weak") or {}).get(WEAK) or {}
    flops = q.get("flops_only") or {}
    fweak = (flops.get("weak") or {}).get(WEAK) or {}
    return {"kendall_tau_within": q.get("kendall_tau_within"), "weak25_precision": weak.get("precision"),
            "weak25_recall": weak.get("recall"), "weak25_accuracy": weak.get("accuracy"), "n": q.get("n"),
            "held_out": q.get("held_out"), "computed_on": q.get("computed_on"),
            "flops_only": {"kendall_tau_within": flops.get("kendall_tau_within"),
                           "weak25_precision": fweak.get("precision")} if flops else None}


def filter_quality(run: Run) -> Optional[dict]:
    """DetOFA's path filters (after the warm-up, and re-trained on the final supernet for the
    search), as its summary reports them (held-out when the run had a test split)."""
    fq = run.summary.get("filter_quality") if run.summary else None
    if not isinstance(fq, dict):
        return None
    out = {k: _quality_entry(fq.get(k)) for k in ("warmup", "final")}
    return out if any(out.values()) else None


def fig6_summary(rows: Optional[list]) -> Optional[List[dict]]:
    """Per FLOPs bucket: how many paths of A and of the pruned space Fig. 6 shows, and their mean
    validation loss."""
    if not rows:
        return None
    out = []
    for b in sorted({r["bucket"] for r in rows}):
        entry = {"bucket": b}
        for space in ("A", "pruned"):
            v = [float(r["val_loss"]) for r in rows if r["bucket"] == b and r["space"] == space]
            entry[space] = {"n": len(v), "mean_val_loss": sum(v) / len(v) if v else None}
        out.append(entry)
    return out


def _point_dict(p) -> dict:
    return {"budget_mflops": p.budget_mflops, "mflops": p.mflops, "ap": p.ap, "params": p.params,
            "latency_ms": p.latency_ms, "arch": p.arch}


def compare(runs: List[Run], tolerance: float = DEFAULT_TOLERANCE) -> Dict:
    ref = reference_run(runs)
    rows = budget_rows(runs, tolerance)
    gaps = ap_gaps(rows, ref, runs)
    notes = [n for r in runs for n in r.notes]
    missing = {run.label: [r["budget_mflops"] for r in rows if r["ap"][run.label] is None] for run in runs}
    if any(missing.values()):
        notes.append("the runs were searched at different budgets: " + "; ".join(
            f"{label} has no result at {', '.join(f'{b:g}' for b in bs)} MFLOPs"
            for label, bs in missing.items() if bs) + " (gaps are averaged over the shared budgets only)")
    for g in gaps:
        if not g["n_budgets"]:
            notes.append(f"{g['reference']} and {g['run']} share no budget (tolerance {tolerance:g}): no AP gap")
    sizes = {r.input_size for r in runs if r.input_size is not None}
    if len(sizes) > 1:
        notes.append("the runs were searched at different input sizes: "
                     + ", ".join(f"{r.label} {r.input_size}" for r in runs))
    out_runs = []
    for r in runs:
        out_runs.append({"label": r.label, "kind": r.kind, "algorithm": r.algorithm, "folder": r.given,
                         "pareto": r.pareto_path, "training_run": r.training, "input_size": r.input_size,
                         "search": r.search, "points": [_point_dict(p) for p in r.points],
                         "fullnet": _point_dict(r.fullnet) if r.fullnet else None,
                         "time_seconds": training_time(r), "filter_quality": filter_quality(r),
                         "fig6": fig6_summary(r.fig6)})
    ref_total = next(o["time_seconds"]["training_total"] for o in out_runs if o["label"] == ref.label)
    for o in out_runs:
        tot = o["time_seconds"]["training_total"]
        o["time_seconds"]["training_vs_reference"] = tot / ref_total if tot is not None and ref_total else None
    return {"format": REPORT_FORMAT, "version": REPORT_VERSION, "metric": runs[0].metric, "metric_unit": "percent",
            "reference": ref.label, "budget_tolerance": tolerance, "runs": out_runs, "budgets": rows,
            "gaps": gaps, "notes": notes}
