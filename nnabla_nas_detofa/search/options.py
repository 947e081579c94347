"""The options of a search run (``DetOFASearcher``, the DetOFA pipeline's ``search`` block and the
``search`` command's flags: one definition) and the budgets they stand for (standard library and
numpy only, so the command line checks its flags without importing nnabla)."""
from ..schema import Bool, Choice, Int, ListOf, Num, SchemaError, Str
from ..space.buckets import Buckets, space_buckets

ALGORITHMS = ("regularized", "truncation", "random")
FITNESS = ("path_filter", "val_loss")
EXPORT_FORMATS = ("nnp", "onnx")

# the searcher's own options (the DetOFA pipeline's "search" block takes the same ones)
SEARCH_OPTIONS = {
    "budgets": ListOf(Num(0, lo_open=True), 1, nullable=True, default=None),   # MFLOPs
    "n_budgets": Int(1, 100, nullable=True, default=None),                    # default: n_buckets
    "algorithm": Choice(ALGORITHMS, default="regularized"),
    "population": Int(2, default=100),
    "sample": Int(1, default=25),
    "generations": Int(0, default=500),
    "fitness": Choice(FITNESS, default="path_filter"),
    "max_params": Num(0, lo_open=True, nullable=True, default=None),          # millions of parameters
    "latency_table": Str(nullable=True, default=None),                        # a measure-latency table
    "max_latency_ms": Num(0, lo_open=True, nullable=True, default=None),
    "export": ListOf(Choice(EXPORT_FORMATS), default=list(EXPORT_FORMATS)),
    "test_fullnet": Bool(default=True),
}


def check_search_options(hp: dict, where: str = "hparams") -> None:
    """Checks across keys of the search options (each key is checked by its spec)."""
    if hp["algorithm"] == "regularized" and hp["sample"] > hp["population"]:
        raise SchemaError(f"{where}.sample={hp['sample']} exceeds {where}.population={hp['population']}")
    if (hp["latency_table"] is None) != (hp["max_latency_ms"] is None):
        raise SchemaError(f"{where}.latency_table and {where}.max_latency_ms go together: give both or neither")
    if hp["budgets"] is not None and hp["n_budgets"] is not None:
        raise SchemaError(f"{where}.budgets and {where}.n_budgets: give one of them")
    if not hp["export"] == list(dict.fromkeys(hp["export"])):
        raise SchemaError(f"{where}.export={hp['export']}: a format is named twice")
    if hp["latency_table"] is not None:
        from .latency import LatencyTable, LatencyTableError
        try:
            LatencyTable.load(hp["latency_table"])
        except (LatencyTableError, OSError) as err:
            raise SchemaError(f"{where}.latency_table: {err}") from None


def search_buckets(space, cfg, input_size: int, n_buckets: int, pruned=None) -> Buckets:
    """The FLOPs buckets of the search: those of the pruned space, else ``n_buckets`` over the space."""
    return pruned.buckets if pruned is not None else space_buckets(space, cfg, input_size, n_buckets)


def plan_budgets(budgets, n_budgets, buckets: Buckets, where: str = "hparams"):
    """[(tau, b, (lo_b, tau))] for each budget: its bucket b (the one with lo_b < tau <= hi_b; the
    first one for tau = lo) and the FLOPs range the search keeps to. Default budgets: the upper
    edges of ``n_budgets`` (default: the buckets') equal-width bins over the space's range."""
    edges = buckets.edges
    if budgets is None:
        k = n_budgets or buckets.n
        budgets = [float(e) for e in Buckets(buckets.lo, buckets.hi, k).edges[1:]]
    eps = 1e-9 * max(abs(buckets.hi), 1.0)
    out = []
    for i, tau in enumerate(budgets):
        if not buckets.lo - eps <= tau <= buckets.hi + eps:
            raise SchemaError(f"{where}.budgets[{i}]={tau:g}: outside the space's FLOPs range [{buckets.lo:.6g}, "
                              f"{buckets.hi:.6g}] MFLOPs")
        b = next(j for j in range(buckets.n) if tau <= edges[j + 1] + eps)
        tau = min(max(float(tau), buckets.lo), buckets.hi)
        out.append((tau, b, (float(edges[b]), tau)))
    return out


def load_latency_table(path: str, cfg, input_size: int, where: str = "hparams.latency_table"):
    """The latency table at ``path``, measured for the network ``cfg`` at ``input_size`` (else a
    SchemaError naming the setting)."""
    from .latency import LatencyTable, LatencyTableError
    try:
        table = LatencyTable.load(path)
        table.check(cfg=cfg, input_size=input_size)
    except (LatencyTableError, OSError) as err:
        raise SchemaError(f"{where}: {err}") from None
    return table
