"""The runs a comparison report reads, each from its own files (standard library only).

A report input is a *search* folder (``pareto.json``, written by ``DetOFASearcher``; its training
run is the folder its ``training_run`` names) or a *training* folder holding ``search/pareto.json``
(a DetOFA run whose experiment ends with the search phase). From the training run come the label
(its ``experiment.json``: ``args.algorithm`` and ``hparams``), the training time (DetOFA's
``phases.json`` ledger, the supernet trainer's ``summary.json`` history), the path filter's
quality (DetOFA's ``summary.json``) and Fig. 6's paths (DetOFA's ``fig6_paths.json``).

Every problem is one :class:`ReportError` line naming the folder or file, raised before the
report writes anything.
"""
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..reading import read_json

PARETO_FILE = "pareto.json"
PARETO_FORMAT = "nnabla_nas_detofa.pareto"
PARETO_VERSION = 1
METRICS = ("mAP", "AP")
METRIC_SCALES = {"fraction": 100.0, "percent": 1.0}   # factor to percent
EXPERIMENT_FILE = "experiment.json"
SUMMARY_FILE = "summary.json"
PHASES_FILE = "phases.json"
FIG6_FILE = "fig6_paths.json"

DETOFA = "DetOFA"
OFA_PS = "OFA w/ PS"
OFA_UNIFORM = "OFA w/o PS"
COMPOFA = "CompOFA*"


class ReportError(ValueError):
    """Bad report input; the message starts with the folder or file."""


@dataclass
class ParetoPoint:
    budget_mflops: float
    mflops: float
    ap: float                      # percent
    params: Optional[float] = None
    latency_ms: Optional[float] = None
    arch: Optional[dict] = None


@dataclass
class Run:
    """One report input: its Pareto set, and what its training run recorded."""
    given: str                                  # the folder given on the command line
    label: str
    kind: str                                   # DetOFA / OFA w/ PS / OFA w/o PS / CompOFA* / the algorithm
    pareto_path: str
    metric: str
    input_size: Optional[int]
    points: List[ParetoPoint]
    fullnet: Optional[ParetoPoint]
    search_seconds: Optional[float]
    search: dict
    training: Optional[str] = None              # the training run's folder
    algorithm: Optional[str] = None
    summary: Optional[dict] = None              # the training run's summary.json
    phases: Optional[dict] = None               # DetOFA's phases.json ledger
    fig6: Optional[list] = None
    notes: List[str] = field(default_factory=list)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read(path: str, what: str):
    return read_json(path, ReportError, what)


def _ap(test, metric: str, factor: float, where: str) -> float:
    if not isinstance(test, dict) or not _number(test.get(metric)):
        raise ReportError(f"{where}: expected a 'test' object with a number '{metric}', got "
                          f"{test.get(metric) if isinstance(test, dict) else test!r}")
    v = float(test[metric])
    top, scale = (1.0, "fraction") if factor != 1.0 else (100.0, "percent")
    if not 0.0 <= v <= top:
        raise ReportError(f"{where}: test.{metric}={v} is not a {scale} in [0, {top:g}] (the file says "
                          f"metric_scale '{scale}')")
    return v * factor


def _point(entry, metric, factor, where, budget=True) -> ParetoPoint:
    if not isinstance(entry, dict):
        raise ReportError(f"{where}: expected an object")
    keys = ("budget_mflops", "mflops") if budget else ("mflops",)
    for k in keys:
        if not _number(entry.get(k)):
            raise ReportError(f"{where}: '{k}' must be a number, got {entry.get(k)!r}")
    opt = {k: float(entry[k]) if _number(entry.get(k)) else None for k in ("params", "latency_ms")}
    return ParetoPoint(float(entry["budget_mflops"]) if budget else float(entry["mflops"]), float(entry["mflops"]),
                       _ap(entry.get("test"), metric, factor, where), arch=entry.get("arch"), **opt)


def read_pareto(path: str) -> dict:
    """``pareto.json`` checked (format, version, metric, budgets, fullnet): a dict of what the
    report uses, AP in percent."""
    doc = _read(path, "Pareto file")
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: expected an object (a pareto.json of DetOFASearcher)")
    if doc.get("format") != PARETO_FORMAT:
        raise ReportError(f"{path}: format {doc.get('format')!r}, expected {PARETO_FORMAT!r} (not a Pareto file "
                          f"of DetOFASearcher)")
    if doc.get("version") != PARETO_VERSION:
        raise ReportError(f"{path}: version {doc.get('version')!r}; this report reads version {PARETO_VERSION}")
    metric = doc.get("metric")
    if metric not in METRICS:
        raise ReportError(f"{path}: metric {metric!r}, expected one of {list(METRICS)}")
    scale = doc.get("metric_scale")
    if scale not in METRIC_SCALES:
        raise ReportError(f"{path}: metric_scale {scale!r}, expected one of {list(METRIC_SCALES)}")
    factor = METRIC_SCALES[scale]
    budgets = doc.get("budgets")
    if not isinstance(budgets, list) or not budgets:
        raise ReportError(f"{path}: 'budgets' must be a non-empty list of searched budgets")
    points = [_point(b, metric, factor, f"{path}: budgets[{i}]") for i, b in enumerate(budgets)]
    full = doc.get("fullnet")
    fullnet = None if full is None else _point(full, metric, factor, f"{path}: fullnet", budget=False)
    size = doc.get("input_size")
    seconds = doc.get("seconds")
    tr = doc.get("training_run")
    if tr is not None and not isinstance(tr, str):
        raise ReportError(f"{path}: training_run={tr!r}: expected a folder or null")
    search = doc.get("search") if isinstance(doc.get("search"), dict) else {}
    return {"metric": metric, "points": sorted(points, key=lambda p: p.budget_mflops), "fullnet": fullnet,
            "input_size": size if isinstance(size, int) and not isinstance(size, bool) else None,
            "seconds": float(seconds) if _number(seconds) else None, "training_run": tr, "search": search}


def label_of(experiment: dict) -> str:
    """The paper's name of a training run, from its experiment: DetOFA; the supernet trainer with
    progressive-shrinking stages (``space_schedule``) is OFA w/ PS, over the CompOFA* space
    CompOFA*, else OFA w/o PS; any other runner goes by its name."""
    args = experiment.get("args") if isinstance(experiment.get("args"), dict) else {}
    hp = experiment.get("hparams") if isinstance(experiment.get("hparams"), dict) else {}
    algo = args.get("algorithm")
    if algo == "DetOFA":
        return DETOFA
    if algo == "DetOFASupernetTrainer":
        if hp.get("space_schedule"):
            return OFA_PS
        space = hp.get("space", "ofa")
        if space == "compofa" or isinstance(space, dict) and (space.get("coupled") or space.get("name") == "compofa"):
            return COMPOFA
        return OFA_UNIFORM
    return str(algo) if algo else "run"


def _resolve(folder: str, base: str) -> str:
    """A folder a file names: as given (relative to the working folder), else relative to ``base``."""
    if os.path.isabs(folder) or os.path.isdir(folder):
        return folder
    alt = os.path.join(base, folder)
    return alt if os.path.isdir(alt) else folder


def _history_ok(summary, path):
    hist = summary.get("history")
    if not isinstance(hist, list) or not all(isinstance(h, dict) for h in hist):
        raise ReportError(f"{path}: expected 'history', a list of epoch entries (a summary.json of a DetOFA "
                          f"training run)")


def read_training(folder: str, run: Run, source: str) -> None:
    """Fill ``run`` with what the training run in ``folder`` recorded (``source``: who named it)."""
    if not os.path.isdir(folder):
        raise ReportError(f"{source}={folder!r}: no such folder")
    exp_path = os.path.join(folder, EXPERIMENT_FILE)
    if not os.path.isfile(exp_path):
        raise ReportError(f"{folder}: not a training run folder (no {EXPERIMENT_FILE}; named by {source})")
    exp = _read(exp_path, "experiment file")
    if not isinstance(exp, dict):
        raise ReportError(f"{exp_path}: expected an experiment object")
    run.training = folder
    run.algorithm = (exp.get("args") or {}).get("algorithm") if isinstance(exp.get("args"), dict) else None
    run.kind = label_of(exp)
    sum_path = os.path.join(folder, SUMMARY_FILE)
    if not os.path.isfile(sum_path):
        raise ReportError(f"{folder}: no {SUMMARY_FILE} (the training run has not finished; resume it first)")
    summary = _read(sum_path, "run summary")
    if not isinstance(summary, dict):
        raise ReportError(f"{sum_path}: expected an object")
    _history_ok(summary, sum_path)
    run.summary = summary
    if run.kind == DETOFA:
        ph_path = os.path.join(folder, PHASES_FILE)
        phases = _read(ph_path, "phase ledger") if os.path.isfile(ph_path) else summary.get("phases")
        if not isinstance(phases, dict) or not all(isinstance(v, dict) and _number(v.get("seconds"))
                                                   for v in phases.values()):
            raise ReportError(f"{ph_path}: expected the phase ledger {{phase: {{\"seconds\": s, ...}}}}")
        run.phases = phases
        f6 = os.path.join(folder, FIG6_FILE)
        if os.path.isfile(f6):
            rows = _read(f6, "Fig. 6 paths file")
            ok = isinstance(rows, list) and all(isinstance(r, dict) and r.get("space") in ("A", "pruned")
                                                and _number(r.get("val_loss")) and _number(r.get("flops"))
                                                and isinstance(r.get("bucket"), int) for r in rows)
            if not ok:
                raise ReportError(f"{f6}: expected a list of {{\"space\": \"A\"|\"pruned\", \"bucket\", \"flops\", "
                                  f"\"val_loss\"}} rows")
            run.fig6 = rows


def read_run(given: str, label: Optional[str] = None) -> Run:
    """The report input ``given`` (a search folder or a training folder with ``search/pareto.json``)."""
    if not os.path.isdir(given):
        raise ReportError(f"{given}: no such run folder")
    own = os.path.join(given, PARETO_FILE)
    nested = os.path.join(given, "search", PARETO_FILE)
    if os.path.isfile(own):
        path = own
    elif os.path.isfile(nested):
        path = nested
    elif os.path.isfile(os.path.join(given, EXPERIMENT_FILE)):
        raise ReportError(f"{given}: a run without a search result (no {PARETO_FILE} or search/{PARETO_FILE}); "
                          f"search its supernet first (DetOFASearcher) and give the search folder")
    else:
        raise ReportError(f"{given}: not a run folder (no {PARETO_FILE}, search/{PARETO_FILE} or {EXPERIMENT_FILE})")
    p = read_pareto(path)
    run = Run(given=given, label="", kind="run", pareto_path=path, metric=p["metric"], input_size=p["input_size"],
              points=p["points"], fullnet=p["fullnet"], search_seconds=p["seconds"], search=p["search"])
    if path == nested:
        read_training(given, run, path)
    elif p["training_run"] is not None:
        read_training(_resolve(p["training_run"], given), run, f"{path}: training_run")
    else:
        run.notes.append(f"{path} names no training run: no training time or filter quality for it")
    run.label = label or run.kind
    return run


def read_runs(specs) -> List[Run]:
    """``specs``: (folder, label or None) pairs; labels made unique (the folder's name is added to
    labels two runs share); all runs measured with one metric."""
    runs = [read_run(folder, label) for folder, label in specs]
    counts = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    seen = set()
    for r in runs:
        if counts[r.label] > 1:
            base = f"{r.label} ({os.path.basename(os.path.normpath(r.given))})"
            name, k = base, 2
            while name in seen:
                name, k = f"{base} #{k}", k + 1
            r.label = name
        seen.add(r.label)
    metrics = {r.metric for r in runs}
    if len(metrics) > 1:
        which = ", ".join(f"{r.pareto_path}: {r.metric}" for r in runs)
        raise ReportError(f"the runs were measured with different metrics ({which}); compare VOC runs with VOC runs "
                          f"and COCO runs with COCO runs")
    return runs
