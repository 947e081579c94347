"""The trainer's per-epoch validation and final test measure each distinct reference path once."""
from types import SimpleNamespace

from nnabla_nas_detofa.runners.supernet_trainer import DetOFASupernetTrainer
from nnabla_nas_detofa.space import get_space


class _Meter:
    avg = 3.0


class _Monitor:
    def __init__(self):
        self.meters, self.updates, self.written = {"loss/train": _Meter()}, [], []

    def update(self, key, value, n):
        self.updates.append((key, value))

    def write(self, epoch):
        self.written.append(epoch)


def _trainer(archs, calls):
    def measure(arch):
        calls.append(arch.to_json())
        return 2.0 + 0.01 * len(calls)

    ns = SimpleNamespace(valid_archs=lambda: archs, path_valid_loss=measure, monitor=_Monitor(), history=[],
                         optimizer={"train": SimpleNamespace(get_learning_rate=lambda: 1e-3)}, cur_epoch=0,
                         log=lambda msg: None, save=lambda epoch, step: None)
    ns._per_reference_path = lambda m, archs=None: DetOFASupernetTrainer._per_reference_path(ns, m, archs)
    return ns


def test_identical_reference_paths_are_validated_once():
    space = get_space("ofa")
    big, small = space.extreme(True), space.extreme(False)
    calls = []
    t = _trainer({"min": big, "max": big}, calls)          # one path trains: min and max are the same
    DetOFASupernetTrainer.callback_on_epoch_end(t, 1.0, 0.0, 10, None)
    assert len(calls) == 1
    assert t.history[0]["valid_loss"] == {"min": 2.01, "max": 2.01}
    calls.clear()
    t = _trainer({"min": small, "max": big}, calls)        # distinct paths: each measured
    DetOFASupernetTrainer.callback_on_epoch_end(t, 1.0, 0.0, 10, None)
    assert calls == [small.to_json(), big.to_json()]
    assert t.history[0]["valid_loss"] == {"min": 2.01, "max": 2.02} and t.cur_epoch == 1


def test_identical_reference_paths_are_tested_once(monkeypatch):
    space = get_space("ofa")
    big = space.extreme(True)
    calls = []

    def evaluate(loader, split, arch):
        calls.append(arch.to_json())
        return {"mAP": 12.5}

    t = SimpleNamespace(hparams={"final_eval": True}, valid_archs=lambda: {"min": big, "max": big},
                        evaluator=SimpleNamespace(evaluate=evaluate), dataloader={"test": None},
                        model=SimpleNamespace(config=None), input_size=96, comm=SimpleNamespace(rank=1))
    t._per_reference_path = lambda m, archs=None: DetOFASupernetTrainer._per_reference_path(t, m, archs)
    monkeypatch.setattr("nnabla_nas_detofa.runners.supernet_trainer.mflops", lambda arch, cfg, size: 100.0)
    out = DetOFASupernetTrainer.final_evaluation(t)
    assert len(calls) == 1 and out["min"]["mAP"] == out["max"]["mAP"] == 12.5
