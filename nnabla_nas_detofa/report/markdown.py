"""``report.md``: the comparison as Markdown tables (readable without opening any JSON)."""
from typing import Dict, Optional

from .figures import FIG5, FIG6


def _f(v, fmt="{:.2f}", none="-") -> str:
    return none if v is None else fmt.format(v)


def seconds(v: Optional[float]) -> str:
    """Seconds as a person reads them: s below 2 min, min below 2 h, else h."""
    if v is None:
        return "-"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.2f} h"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(rep: Dict, figures: Dict[str, Optional[str]]) -> str:
    runs = rep["runs"]
    labels = [r["label"] for r in runs]
    metric = f"{rep['metric']} (%)"
    out = ["# DetOFA comparison report", ""]
    out.append(_table(["run", "kind", "Pareto file", "training run"],
                      [[r["label"], r["kind"], f"`{r['pareto']}`", f"`{r['training_run']}`" if r["training_run"]
                        else "-"] for r in runs]))
    out += ["", f"AP gaps are measured from **{rep['reference']}**; budgets match within "
                f"{100 * rep['budget_tolerance']:g} % of each other.", ""]

    out += [f"## {metric} per FLOPs budget (Fig. 5)", "",
            "Each cell: the test-split " + rep["metric"] + " of the path found under the budget "
            "(its MFLOPs in brackets).", ""]
    rows = []
    for b in rep["budgets"]:
        rows.append([f"{b['budget_mflops']:g}"] + [
            "-" if b["ap"][lab] is None else f"{b['ap'][lab]:.2f} ({b['mflops'][lab]:.1f})" for lab in labels])
    rows.append(["full network"] + ["-" if r["fullnet"] is None else
                                    f"{r['fullnet']['ap']:.2f} ({r['fullnet']['mflops']:.1f})" for r in runs])
    out += [_table(["budget (MFLOPs)"] + labels, rows), ""]

    out += ["## Average AP gap", ""]
    if rep["gaps"]:
        out.append(_table(["reference", "vs", f"mean gap ({rep['metric']} points)", "budgets shared", "per budget"],
                          [[g["reference"], g["run"], _f(g["mean_gap"], "{:+.2f}"), g["n_budgets"],
                            ", ".join(f"{p['budget_mflops']:g}: {p['gap']:+.2f}" for p in g["per_budget"]) or "-"]
                           for g in rep["gaps"]]))
        out += ["", "Positive: the reference found better paths (the paper: DetOFA +0.85 VOC / +0.45 COCO over "
                    "OFA w/o PS).", ""]
    else:
        out += ["One run only: no gap to measure.", ""]

    out += ["## Training time (Table 3)", "",
            "Supernet steps: the epochs' training steps (per-epoch validation not included); path sampling: "
            "labelling paths and training the path filter (DetOFA, after the warm-up and on the final "
            "supernet); Fig. 6 paths: labelling the figure's paths (not counted in the totals); search: the search "
            "run's own time.", ""]
    trows = []
    for r in runs:
        t = r["time_seconds"]
        trows.append([r["label"], seconds(t["supernet_steps"]), _f(t["epochs"], "{}"), _f(t["steps"], "{}"),
                      seconds(t["path_sampling"]), seconds(t["pruning"]), seconds(t["figures"]),
                      seconds(t["training_total"]), _f(t["training_vs_reference"], "{:.2f}x"),
                      seconds(t["search"]), seconds(t["total"])])
    out += [_table(["run", "supernet steps", "epochs", "steps", "path sampling", "pruning", "Fig. 6 paths",
                    "training total", f"vs {rep['reference']}", "search", "total"], trows), ""]
    for r in runs:
        per = r["time_seconds"]["steps_per_space"]
        if per and len(per) > 1:
            out += [f"{r['label']}: supernet steps per sampled space: "
                    + ", ".join(f"{k} {seconds(v)}" for k, v in per.items()) + ".", ""]
        ph = r["time_seconds"]["phases_wall"]
        if ph:
            out += [f"{r['label']}: wall time per phase (`phases.json`): "
                    + ", ".join(f"{k} {seconds(v)}" for k, v in ph.items()) + ".", ""]

    out += ["## Path filter quality (Table 2)", ""]
    qrows = []
    for r in runs:
        for which, q in (r["filter_quality"] or {}).items():
            if q is None:
                continue
            fl = q.get("flops_only") or {}
            qrows.append([r["label"], "after warm-up" if which == "warmup" else "final supernet (search)",
                          _f(q["kendall_tau_within"], "{:.3f}"), _f(q["weak25_precision"], "{:.3f}"),
                          _f(q["weak25_recall"], "{:.3f}"), _f(q["weak25_accuracy"], "{:.3f}"),
                          _f(fl.get("kendall_tau_within"), "{:.3f}"), _f(fl.get("weak25_precision"), "{:.3f}"),
                          _f(q["n"], "{}"), "yes" if q["held_out"] else "no (validation split)"])
    if qrows:
        out += [_table(["run", "filter", "Kendall tau within buckets", "weakest-25% precision", "recall", "accuracy",
                        "FLOPs-only tau", "FLOPs-only precision", "paths", "held out"], qrows),
                "", "The paper's filter: weakest-25% precision 0.870, accuracy 0.930, recall 0.224.", ""]
    else:
        out += ["No run with a path filter report (DetOFA runs write one).", ""]

    out += ["## Figures", "", f"![Fig. 5: {metric} vs MFLOPs]({figures.get('fig5') or FIG5})", ""]
    if figures.get("fig6"):
        out += [f"![Fig. 6: validation loss of paths of A and of the pruned space]({figures['fig6']})", ""]
        for r in runs:
            if r["fig6"]:
                out.append(_table([f"{r['label']}: bucket", "paths of A", "mean loss (A)", "paths of the pruned space",
                                   "mean loss (pruned)"],
                                  [[b["bucket"], b["A"]["n"], _f(b["A"]["mean_val_loss"], "{:.4f}"), b["pruned"]["n"],
                                    _f(b["pruned"]["mean_val_loss"], "{:.4f}")] for b in r["fig6"]]))
                out.append("")
    else:
        out += [f"Fig. 6 ({FIG6}) skipped: no DetOFA run among the inputs has fig6_paths.json.", ""]
    if rep["notes"]:
        out += ["## Notes", ""] + [f"- {n}" for n in rep["notes"]] + [""]
    return "\n".join(out)
