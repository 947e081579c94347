"""Several ranks on one CPU: processes that each run an experiment with a communicator whose
object gather goes through multiprocessing queues (the MPI communicator's role)."""
import multiprocessing as mp


class QueueComm:
    """``n_procs`` ranks; ``gather_objects`` collects every rank's object on rank 0 in rank order."""

    def __init__(self, rank, n_procs, ctx, queue, results):
        self.rank, self.n_procs, self.ctx, self.comm = rank, n_procs, ctx, None
        self._queue, self._results = queue, results

    def all_reduce(self, arrays, division, inplace):
        raise RuntimeError("this simulated communicator gathers objects only")

    def gather_objects(self, obj):
        if self.rank != 0:
            self._queue.put((self.rank, obj))
            return []
        parts = {0: obj}
        while len(parts) < self.n_procs:
            r, o = self._queue.get(timeout=600)
            parts[r] = o
        return [parts[r] for r in range(self.n_procs)]


def _rank_main(rank, n, conf, queue, results):
    import nnabla_nas_detofa
    nnabla_nas_detofa.register()
    from nnabla_nas_detofa.runners import launch
    launch.make_communicator = lambda ctx: QueueComm(rank, n, ctx, queue, results)
    launch.run_experiment(conf)
    results.put(rank)


def run_ranks(conf, n):
    """Run ``conf`` on ``n`` simulated ranks (spawned processes); returns when all are done."""
    ctx = mp.get_context("spawn")
    queue, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(r, n, conf, queue, results)) for r in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(900)
    codes = [p.exitcode for p in procs]
    if any(c != 0 for c in codes):
        raise RuntimeError(f"simulated ranks exited with {codes}")
