import subprocess
import sys


def test_nnabla_nas_contrib_and_runner_import_after_register():
    # a fresh interpreter: the shim must be what makes these imports work
    code = ("import nnabla_nas_detofa; nnabla_nas_detofa.register();"
            "import nnabla_nas.contrib, nnabla_nas.runner, nnabla_nas.contrib.model; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


HEAVY = ("nnabla", "nnabla_nas", "nnabla_ext", "hydra", "omegaconf", "pycocotools", "cv2", "matplotlib")


def test_arch_math_imports_nothing_heavy():
    # space/, pruning/, search/ (and the package itself) must stay numpy-only: no nnabla, NNablaNAS, hydra,
    # pycocotools, cv2
    code = ("import sys, nnabla_nas_detofa, nnabla_nas_detofa.space, nnabla_nas_detofa.space.bucket_sampling,"
            " nnabla_nas_detofa.space.batch, nnabla_nas_detofa.pruning, nnabla_nas_detofa.search;"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_registration_is_explicit_and_idempotent():
    code = ("import nnabla_nas_detofa\n"
            "import nnabla_nas_detofa.nets\n"  # importing our networks does not register them
            "import nnabla_nas.contrib as c\n"
            "assert 'detofa_resnet50' not in c.__all__\n"
            "a = nnabla_nas_detofa.register(); b = nnabla_nas_detofa.register()\n"
            "assert a == b and c.__all__.count('detofa_resnet50') == 1\n"
            "print(a['runners'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "DetOFASupernetTrainer" in out.stdout


def test_shim_only_covers_the_missing_folder_and_explains_itself():
    from nnabla_nas_detofa.compat import missing_ofa_networks
    from nnabla_nas_detofa.compat.nnabla_nas_wheel import NETWORKS, PACKAGE
    import nnabla_nas.contrib as contrib
    if missing_ofa_networks():
        mod = sys.modules[PACKAGE + ".ofa_resnet50"]
        try:
            mod.SearchNet
        except AttributeError as err:
            assert "0.15.0" in str(err) and "detofa_resnet50" in str(err)
        else:
            raise AssertionError("stand-in must not pretend to have SearchNet")
    assert all(hasattr(contrib, n) for n in NETWORKS)


def test_without_shim_the_wheel_is_broken():
    # documents why the shim exists: with it disabled, nnabla_nas.contrib fails to import
    from nnabla_nas_detofa.compat import missing_ofa_networks
    if not missing_ofa_networks():
        return
    code = "import nnabla_nas.contrib"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr


def test_registration_into_nnabla_nas_tables():
    import nnabla_nas.contrib as contrib
    import nnabla_nas.dataset as dataset
    import nnabla_nas.runner as runner
    assert hasattr(contrib.__dict__["detofa_resnet50"], "SearchNet")
    assert hasattr(contrib.__dict__["detofa_resnet50"], "TrainNet")
    assert "DetOFASupernetTrainer" in runner.__all__
    from nnabla_nas.runner.runner import Runner
    assert issubclass(runner.__dict__["DetOFASupernetTrainer"], Runner)
    for name in ("detofa_voc", "detofa_coco"):
        assert name in dataset.__all__ and hasattr(dataset.__dict__[name], "DataLoader")


def test_fast_absent_imports_keep_outcome_and_skip_the_file_system():
    import importlib

    import nnabla as nn
    import nnabla.functions as F
    import numpy as np

    from nnabla_nas_detofa.compat.nnabla_imports import NAMES
    absent = [n for n in NAMES if n in sys.modules and sys.modules[n] is None]
    assert "nnabla.gc" in absent and "nnabla.nnabla" in absent
    for name in absent:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError(f"{name} must stay unimportable")
    # nnabla still computes the same, and its per-call imports no longer stat the disk
    stats = []
    ext = importlib._bootstrap_external  # the import system's own stat, not os.stat
    real_stat = ext._path_stat

    def counting_stat(path):
        stats.append(path)
        return real_stat(path)

    x = nn.Variable.from_numpy_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    ext._path_stat = counting_stat
    try:
        y = F.reshape(F.mul_scalar(x, 2.0), (3, 2))
    finally:
        ext._path_stat = real_stat
    y.forward()
    assert np.array_equal(y.d, (np.arange(6).reshape(3, 2) * 2).astype(np.float32))
    assert not [p for p in stats if "nnabla" in str(p)], stats[:5]
