"""Run every benchmark in this folder, one after the other, on this machine (`make bench`)."""
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ("bench_flops", "bench_train_step", "bench_loader", "bench_path_filter", "bench_pruning", "bench_search",
         "bench_detofa")


def main(names=None):
    sys.path.insert(0, HERE)
    names = names or [n for n in ORDER if os.path.isfile(os.path.join(HERE, n + ".py"))]
    for name in names:
        print(f"\n=== {name}", flush=True)
        t = time.time()
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        import inspect
        mod.main(*([[]] if inspect.signature(mod.main).parameters else []))
        print(f"({name} took {time.time() - t:.1f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
