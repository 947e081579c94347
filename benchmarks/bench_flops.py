"""Microseconds per analytic FLOPs call (uncached and cached) and per path sample."""
import random
import time

from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops
from nnabla_nas_detofa.space.flops import _mflops


def main(argv=None, n=5000):
    space, cfg = get_space("ofa"), SupernetConfig()
    rng = random.Random(0)
    t = time.perf_counter()
    archs = [space.sample(rng) for _ in range(n)]
    t_sample = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for a in archs:
        _mflops.__wrapped__(a, cfg, 384, "detector")
    t_raw = (time.perf_counter() - t) / n * 1e6
    for a in archs:
        mflops(a, cfg, 384)
    t = time.perf_counter()
    for a in archs:
        mflops(a, cfg, 384)
    t_cached = (time.perf_counter() - t) / n * 1e6
    print(f"path sample:                 {t_sample:8.1f} us/path")
    print(f"analytic FLOPs (uncached):   {t_raw:8.1f} us/call")
    print(f"analytic FLOPs (cached):     {t_cached:8.1f} us/call")
    print(f"ratio uncached / cached:     {t_raw / t_cached:8.1f}x")


if __name__ == "__main__":
    main()
