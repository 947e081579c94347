"""``search``: the best path per FLOPs budget of a trained run, measured on its test split and exported.

    python -m nnabla_nas_detofa search --run RUN_DIR [--budgets M ... | --n-budgets K] [--generations G]
        [--algorithm regularized|truncation|random] [--path-filter F.h5] [--pruned-space F.json] -o OUT

Runs the search runner (``DetOFASearcher``, the same code as ``nnabla_nas -f`` with that runner)
on the network, data and measurement settings of the run in ``RUN_DIR`` (``run.json`` /
``experiment.json``, as ``export`` reads them) and its trained weights (a DetOFA run's
``supernet/supernet.h5``, a trainer's ``supernet.h5``, or ``--weights``). For a DetOFA run the path
filter and the pruned space default to the run's ``paths_final/path_filter.h5`` and
``pruning/pruned_space.json``; otherwise a filter is trained first on paths labelled in
``OUT/paths``. The run's fixed BatchNorm calibration set is reused (its ``measurement_sets.json``
is copied into OUT). Every flag is checked against the runner's option specs before any work.
"""
import json
import os
import shutil
import sys

from ..schema import Int, ListOf
from ..search.options import SEARCH_OPTIONS
from .argtypes import flag
from .errors import UserError

# the run's settings the searcher takes over (the measurement settings, so BN is re-calibrated as the run did)
RUN_HPARAMS = ("batch_size_train", "batch_size_valid", "mini_batch_train", "mini_batch_valid", "print_frequency",
               "seed", "loss_weights", "bn_calib_images", "bn_calib_batch_size", "valid_images",
               "measurement_cache_mb", "n_buckets")


def _choices(spec):
    return list(spec.item.choices if isinstance(spec, ListOf) else spec.choices)


def _default_weights(run) -> str:
    for rel in ("supernet/supernet.h5", "supernet.h5"):
        p = os.path.join(run.folder, rel)
        if os.path.isfile(p):
            return p
    raise UserError(f"--run {run.folder}: no trained weights found (supernet/supernet.h5 or supernet.h5); "
                    "give them with --weights")


def _run_space(run):
    hp = run.conf["hparams"]
    if hp.get("space") is not None:
        return hp["space"]
    return run.spaces()[-1].to_dict()   # a schedule's last phase: the space the run ends on


def search_experiment(args, run) -> dict:
    """The searcher's experiment for the run in ``run`` (a RunFolder) and the flags."""
    conf = {k: json.loads(json.dumps(run.conf[k])) for k in ("dataloader", "network")}
    name = next(iter(conf["dataloader"]))
    conf["dataloader"][name].pop("synthetic", None)   # data is only read here, never made
    net_name = next(iter(conf["network"]))
    net = conf["network"][net_name]
    for k in ("pretrained", "weights", "arch"):
        net.pop(k, None)
    net["weights"] = os.path.abspath(args.weights or _default_weights(run))
    rh = run.conf["hparams"]
    hp = {k: rh[k] for k in RUN_HPARAMS if k in rh}
    hp["space"] = _run_space(run)
    detofa = run.run.get("algorithm") == "DetOFA"
    pf = args.path_filter
    ps = args.pruned_space
    if detofa:
        if pf is None and args.fitness != "val_loss":
            cand = os.path.join(run.folder, "paths_final", "path_filter.h5")
            pf = cand if os.path.isfile(cand) else None
        if ps is None:
            cand = os.path.join(run.folder, "pruning", "pruned_space.json")
            ps = cand if os.path.isfile(cand) else None
    hp.update({"path_filter": pf, "pruned_space": ps, "training_run": os.path.abspath(run.folder)})
    for key in ("budgets", "n_budgets", "algorithm", "population", "sample", "generations", "fitness", "max_params",
                "latency_table", "max_latency_ms", "export", "paths_per_bucket"):
        v = getattr(args, key)
        if v is not None:
            hp[key] = v
    if args.no_fullnet:
        hp["test_fullnet"] = False
    if args.seed is not None:
        hp["seed"] = args.seed
    return {"args": {"algorithm": "DetOFASearcher", "context": args.context, "output_path": args.output},
            "dataloader": conf["dataloader"], "network": conf["network"], "optimizer": {}, "hparams": hp,
            "comment": f"search of the run in {os.path.abspath(run.folder)}"}


def _copy_measurement_sets(run, out):
    """The run's fixed calibration / validation ids, when they are of the searcher's splits (a run
    that measured paths on D_val: DetOFA, path filter); else the searcher draws them (same seed)."""
    from ..evaluation.path_eval import MEASUREMENT_FILE
    src, dst = os.path.join(run.folder, MEASUREMENT_FILE), os.path.join(out, MEASUREMENT_FILE)
    if os.path.isfile(dst) or not os.path.isfile(src):
        return False
    from ..reading import read_json
    stored = read_json(src, UserError, "measurement set file")
    if "[search-valid]" not in str(stored.get("valid_split")):
        return False
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(src, dst)
    return True


def run_search(args):
    from ..runners.launch import ExperimentError, prepare, run_experiment
    from ..runners.run_folder import RunFolder
    if os.path.isfile(args.output):
        raise UserError(f"-o {args.output}: is a file; give the output folder")
    if args.weights is not None and not os.path.isfile(args.weights):
        raise UserError(f"--weights {args.weights}: no such file")
    try:
        run = RunFolder.open(args.run, " (--run)")
    except ExperimentError as err:
        raise UserError(str(err)) from None
    conf = search_experiment(args, run)
    source = f"search --run {args.run}"
    # every check that needs no data (flags, files, budgets against the space's FLOPs range) before any work
    prepare(conf, source)
    _copy_measurement_sets(run, args.output)
    pareto = run_experiment(conf, source)
    out = os.path.abspath(args.output)
    key = pareto["metric"]
    sys.stdout.write(json.dumps({
        "pareto": os.path.join(out, "pareto.json"), "metric": key, "seconds": pareto["seconds"],
        "budgets": [{"budget_mflops": e["budget_mflops"], "mflops": e["mflops"], key: e["test"].get(key),
                     "files": e["files"]} for e in pareto["budgets"]],
        "fullnet": None if pareto["fullnet"] is None else
        {"mflops": pareto["fullnet"]["mflops"], key: pareto["fullnet"]["test"].get(key)}}) + "\n")
    return 0


def register(sub):
    o = SEARCH_OPTIONS
    p = sub.add_parser("search", help="the best path per FLOPs budget of a trained run (regularized evolution on "
                                      "the path filter), its test AP, .nnp / ONNX export -> pareto.json")
    p.add_argument("--run", required=True, help="the trained run's folder (run.json, experiment.json)")
    p.add_argument("-o", "--output", required=True, help="output folder (a killed search resumes there)")
    p.add_argument("--weights", default=None, help="supernet weights (default: the run's supernet.h5)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--budgets", nargs="+", type=flag(o["budgets"].item), default=None, metavar="MFLOPS",
                   help="FLOPs budgets in MFLOPs (default: the upper edges of the space's FLOPs buckets)")
    g.add_argument("--n-budgets", type=flag(o["n_budgets"]), default=None,
                   help="k budgets evenly spaced over the space's FLOPs range (their upper edges)")
    p.add_argument("--algorithm", choices=_choices(o["algorithm"]), default=None, help="default regularized")
    p.add_argument("--generations", type=flag(o["generations"]), default=None, help="default 500")
    p.add_argument("--population", type=flag(o["population"]), default=None, help="default 100")
    p.add_argument("--sample", type=flag(o["sample"]), default=None, help="tournament size (default 25)")
    p.add_argument("--fitness", choices=_choices(o["fitness"]), default=None,
                   help="path_filter (default) or val_loss (the true validation loss: small studies)")
    p.add_argument("--path-filter", default=None, help="path filter .h5 (default: a DetOFA run's "
                                                       "paths_final/path_filter.h5, else one trained here)")
    p.add_argument("--paths-per-bucket", type=flag(Int(1)), default=None,
                   help="labelled paths per bucket when a filter is trained here (default 20)")
    p.add_argument("--pruned-space", default=None, help="search on this pruned_space.json (default: a DetOFA "
                                                        "run's pruning/pruned_space.json)")
    p.add_argument("--max-params", type=flag(o["max_params"]), default=None, help="parameters limit (millions)")
    p.add_argument("--latency-table", default=None, help="a measure-latency table (with --max-latency-ms)")
    p.add_argument("--max-latency-ms", type=flag(o["max_latency_ms"]), default=None)
    p.add_argument("--export", nargs="*", choices=_choices(o["export"]), default=None,
                   help="formats to export each path in (default: nnp onnx; none: no export)")
    p.add_argument("--no-fullnet", action="store_true", help="do not measure the largest path")
    p.add_argument("--seed", type=flag(Int(0)), default=None, help="default: the run's seed")
    p.add_argument("-c", "--context", default="cpu", choices=("cpu", "cudnn"),
                   help="where BN re-calibration, test evaluation and export run")
    p.set_defaults(func=run_search)

