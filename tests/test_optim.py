import pytest

from nnabla_nas_detofa.runners.optim import OptimizerConfigError, make_optimizer


def test_step_schedule_in_epochs():
    opt = make_optimizer({"name": "Adam", "lr": 5e-4, "lr_scheduler": {"name": "StepScheduler", "steps": [45, 60],
                                                                        "gamma": 0.1}}, 70, 10, "optimizer.train")
    s = opt._lr_scheduler
    assert s.get_learning_rate(449) == pytest.approx(5e-4)
    assert s.get_learning_rate(450) == pytest.approx(5e-5)
    assert s.get_learning_rate(600) == pytest.approx(5e-6)
    assert opt._solver.name == "Adam"


def test_cosine_and_constant():
    opt = make_optimizer({"name": "Adam", "lr": 1e-3, "lr_scheduler": "CosineScheduler"}, 10, 10, "o")
    assert opt._lr_scheduler.get_learning_rate(0) == pytest.approx(1e-3)
    assert opt._lr_scheduler.get_learning_rate(50) == pytest.approx(5e-4)
    opt = make_optimizer({"name": "Momentum", "lr": 0.1, "momentum": 0.9}, 10, 10, "o")
    assert opt.get_learning_rate() == pytest.approx(0.1)


@pytest.mark.parametrize("spec,msg", [
    ({"name": "Adamm", "lr": 1}, r"optimizer.train.name='Adamm'"),
    ({"name": "Adam"}, "missing key 'lr'"),
    ({"name": "Adam", "lr": 1, "betaa": 2}, r"unknown key\(s\) \['betaa'\]"),
    ({"name": "Adam", "lr": 1, "lr_scheduler": {"name": "StepScheduler", "steps": 45}}, "steps"),
    ({"name": "Adam", "lr": 1, "lr_scheduler": {"name": "Foo"}}, "Foo"),
])
def test_errors_name_the_key(spec, msg):
    with pytest.raises(OptimizerConfigError, match=msg):
        make_optimizer(spec, 10, 10, "optimizer.train")
