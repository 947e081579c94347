"""Supernet training by sampling one path per step (DetOFA §4, Eq. 1).

With ``"space": "ofa"`` this is the paper's "OFA w/o PS" baseline (uniform sampling), with
``"compofa"`` the CompOFA* baseline, and with ``"space_schedule"`` progressive shrinking as
once-for-all runs it, e.g. ``[["ps1", 70], ["ps2", 5], ["ps3", 65], ["ps4", 5], ["ps5", 65]]``:
the stage epochs add up to ``epoch``, every stage runs its own learning-rate schedule (the
``train`` optimizer's, sized to the stage; ``[space, epochs, lr]`` sets the stage's lr) from a
fresh optimizer state, and when a stage makes narrower widths or expand ratios trainable the
channels are first sorted by importance (``nets.reorganize``).

The path of each step comes from a *sampler* (``sample_step(seed, step) -> Arch``); the DetOFA pipeline
swaps in the pruned-space sampler after its warm-up (``set_stages``). Every rank draws the same
path each step (the generator is seeded by the global step), so gradients all-reduce over one
path. Checkpoints are atomic and a killed run resumes from the output folder, to the same end.
"""
import os
import random
import time
from typing import List, Optional

import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..nets.reorganize import reorganize_middle, reorganize_width
from ..space import Arch, SearchSpace, flops_range, mflops, space_from_spec
from ..space.arch import N_STAGES
from .base import VALID_ARCHS, DetOFARunner, space_spec
from .checkpoint import find_checkpoint, load_checkpoint_info, save_checkpoint
from .schema import Bool, Choice, Custom, Int, SchemaError, epochs_spec


def _lr_ok(lr) -> bool:
    """A stage's learning rate: what an optimizer's ``lr`` may be (``optim.LR``)."""
    from .optim import LR
    try:
        LR(lr, "lr")
        return True
    except SchemaError:
        return False


def _space_schedule(v, where):
    if not isinstance(v, list) or not v:
        raise ValueError(f"{where}: expected a list of [space, epochs] or [space, epochs, lr] items")
    for i, item in enumerate(v):
        ok = isinstance(item, (list, tuple)) and len(item) in (2, 3) and isinstance(item[1], int) \
            and not isinstance(item[1], bool) and item[1] >= 1
        if ok and len(item) == 3:
            lr = item[2]
            ok = lr is None or _lr_ok(lr)
        if not ok:
            raise ValueError(f"{where}[{i}]={item!r}: expected [space, epochs >= 1] or [space, epochs, lr > 0]")
        space_from_spec(item[0], f"{where}[{i}][0]")
    return [list(item) for item in v]


HPARAMS = {
    "epoch": epochs_spec(),                      # required: the length of the training
    "space": space_spec(),
    "space_schedule": Custom(_space_schedule, "a list of [space, epochs(, lr)] items", nullable=True, default=None),
    "reorganize_channels": Bool(default=True),   # progressive shrinking: sort channels when a stage widens
    "sampling": Choice(("decision", "path"), default="decision"),   # path: uniform over distinct networks
    "checkpoint_every": Int(0, default=0),       # steps; 0 = at the end of each epoch only
    "valid_archs": VALID_ARCHS,
    "final_eval": Bool(default=True),            # AP of the valid_archs paths on the test split at the end
}


def step_rng(seed: int, step: int) -> random.Random:
    """The path generator of one global step: the same on every rank, and after a resume."""
    return random.Random(seed * 1_000_003 + step)


class UniformSampler:
    """Paths of a search space: uniform per decision (once-for-all) or per distinct network."""

    def __init__(self, space: SearchSpace, mode: str = "decision"):
        self.space, self.mode = space, mode
        self.name = space.name

    def sample_step(self, seed: int, step: int) -> Arch:
        """The path of global step ``step`` (the same on every rank and after a resume)."""
        return self.space.sample(step_rng(seed, step), mode=self.mode)

    def extreme(self, largest: bool) -> Arch:
        return self.space.extreme(largest)

    def flops_range(self, cfg, size):
        return flops_range(self.space, cfg, size)

    def describe(self) -> dict:
        return {"name": self.space.name, "size": self.space.size(), "sampling": self.mode,
                "space": self.space.to_dict()}


class Stage:
    """Epochs ``[start, start + epochs)`` sample from ``sampler``; ``lr``: the stage's own initial
    learning rate when the stage restarts the schedule (``restart``). A restarting stage, or one
    with ``reorganize`` (the schedule runs on), begins with the channels it makes trainable sorted
    by importance (``reorganize_channels``) and a fresh solver state."""

    def __init__(self, start: int, epochs: int, sampler, restart: bool = False, lr: Optional[float] = None,
                 reorganize: bool = False):
        self.start, self.epochs, self.sampler, self.restart, self.lr = start, epochs, sampler, restart, lr
        self.reorganize = bool(restart or reorganize)

    @property
    def end(self) -> int:
        return self.start + self.epochs


def _grows(prev: SearchSpace, new: SearchSpace, kind: str) -> bool:
    keys = [k for k in new.choices if k[0] == kind]
    return any(set(new.choices[k]) - set(prev.choices[k]) for k in keys)


class DetOFASupernetTrainer(DetOFARunner):
    """NNablaNAS runner: trains a DetOFA supernet one sampled path per step."""

    HPARAMS = HPARAMS

    @classmethod
    def check_hparams(cls, hparams, where="hparams"):
        hp = super().check_hparams(hparams, where)
        sched = hp.get("space_schedule")
        if sched and sum(item[1] for item in sched) != hp["epoch"]:
            raise SchemaError(f"{where}.space_schedule: the stage epochs add up to {sum(i[1] for i in sched)} "
                              f"but {where}.epoch is {hp['epoch']}; they must agree (each stage runs its own "
                              f"schedule, so the whole training is their sum)")
        return hp

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        self.seed = int(self.hparams["seed"])
        self.global_step = 0
        self.start_step = 0
        self.history = []
        self._started = False
        self.stages: List[Stage] = self._default_stages(self.hparams)

    # --- stages ------------------------------------------------------------------------------
    def _default_stages(self, hp) -> List[Stage]:
        mode = hp["sampling"]
        if hp.get("space_schedule"):
            out, start = [], 0
            for i, item in enumerate(hp["space_schedule"]):
                space = space_from_spec(item[0], f"hparams.space_schedule[{i}]")
                out.append(Stage(start, item[1], UniformSampler(space, mode), restart=True,
                                 lr=item[2] if len(item) > 2 else None))
                start += item[1]
            return out
        return [Stage(0, int(hp["epoch"]), UniformSampler(space_from_spec(hp["space"], "hparams.space"), mode))]

    def set_stages(self, stages: List[Stage]):
        """Replace the stages (the DetOFA pipeline: warm-up over A, then the pruned space)."""
        self.stages = list(stages)

    def stage_at(self, epoch: int) -> Stage:
        current = self.stages[0]
        for st in self.stages:
            if epoch >= st.start:
                current = st
        return current

    def sampler_at(self, epoch: int):
        return self.stage_at(epoch).sampler

    def valid_archs(self):
        sampler = self.sampler_at(min(self.cur_epoch, max(int(self.hparams["epoch"]) - 1, 0)))
        out = {}
        for v in self.hparams["valid_archs"]:
            if v in ("min", "max"):
                out[v] = sampler.extreme(v == "max")
            else:
                a = Arch.from_dict(v, "hparams.valid_archs")
                out[a.to_json()] = a
        return out

    def _install_schedule(self):
        """Progressive shrinking: every stage its own schedule (``optim.staged_scheduler``)."""
        if not any(st.restart for st in self.stages):
            return
        from .optim import staged_scheduler
        opt = self.optimizer["train"]
        spec = getattr(opt, "detofa_spec", None)
        if spec is None:
            return
        opt._lr_scheduler = staged_scheduler(spec, [st.epochs for st in self.stages], opt.detofa_iters_per_epoch,
                                             "optimizer.train", [st.lr for st in self.stages])

    def _begin_stage(self, stage: Stage):
        """At the first step of a restarting stage: a fresh optimizer state and, when the stage makes
        narrower widths or expand ratios trainable, channels sorted by importance."""
        k = self.stages.index(stage)
        if k == 0 or not stage.reorganize:
            return
        prev, new = self.stages[k - 1].sampler.space, stage.sampler.space
        if self.hparams["reorganize_channels"]:
            cfg = self.model.config
            if _grows(prev, new, "e"):
                trained = sorted({e for key, v in prev.choices.items() if key[0] == "e" for e in v})
                # once-for-all: the middle widths of the expand ratios trained so far (at the stage's
                # full width) keep their channels; with one trained ratio everything is sorted
                bands = {s: [cfg.mid_channels(max(cfg.stage_out_list(s)), e) for e in trained]
                         for s in range(N_STAGES)} if len(trained) > 1 else None
                reorganize_middle(self.model, bands=bands)
                self.log(f"Stage {new.name}: middle channels re-organised by importance")
            if _grows(prev, new, "w"):
                trained = sorted({w for key, v in prev.choices.items() if key[0] == "w" for w in v})
                bands = None
                if len(trained) > 1:
                    bands = {"stem_mid": [cfg.stem_mid_list()[w] for w in trained],
                             "stem_out": [cfg.stem_out_list()[w] for w in trained],
                             **{f"stage{s}": [cfg.stage_out_list(s)[w] for w in trained] for s in range(N_STAGES)}}
                reorganize_width(self.model, bands=bands)
                self.log(f"Stage {new.name}: stem and stage channels re-organised by importance")
        opt = self.optimizer["train"]
        opt._solver.set_parameters(self.model.get_net_parameters(grad_only=True), reset=True, retain_state=False)

    # --- NNablaNAS runner hooks ---------------------------------------------------------------
    def callback_on_start(self):
        if self._started:
            return
        self._started = True
        self.model.set_arch(self.sampler_at(0).extreme(True))
        params = self.model.get_net_parameters(grad_only=True)
        self.optimizer["train"].set_parameters(params)
        self._grads = [p.grad for p in params.values()]
        self._install_schedule()
        self.log_splits()
        ckpt = find_checkpoint(self.out)
        if ckpt:
            self._resume(ckpt)
        n = sum(int(np.prod(p.shape)) for p in params.values())
        self.log(f"Supernet parameters: {n / 1e6:.3f} M; stages: "
                 + ", ".join(f"{st.sampler.name} epochs {st.start}-{st.end - 1}" for st in self.stages))

    def _resume(self, path):
        info = load_checkpoint_info(path)
        self.model.load_parameters(os.path.join(path, "weights.h5"))
        opt = self.optimizer["train"]
        opt._solver.load_states(os.path.join(path, "optim_train.h5"))
        opt._iter = int(info["optimizer_iter"])
        self.cur_epoch = int(info["epoch"])
        self.start_step = int(info["step_in_epoch"])
        self.global_step = int(info["global_step"])
        self.history = info.get("history", [])
        stream = getattr(self.dataloader["train"], "loader", None)
        if stream is not None and "train_batches" in info:
            stream.reset(int(info["train_batches"]))  # the same batches an uninterrupted run would see
        self.log(f"Resumed from {path}: epoch {self.cur_epoch}, step {self.start_step}")

    def _train_batches_consumed(self):
        """Batches taken from the training stream so far."""
        stream = getattr(self.dataloader["train"], "loader", None)
        if stream is None:
            return None
        return stream.position

    def save(self, epoch: int, step_in_epoch: int):
        if self.comm.rank != 0:
            return
        self.model.commit_bn_statistics()
        opt = self.optimizer["train"]
        info = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
                "optimizer_iter": opt._iter, "history": self.history,
                "train_batches": self._train_batches_consumed()}
        save_checkpoint(self.out, info, {
            "weights.h5": self.model.save_weights,
            "optim_train.h5": lambda p: opt._solver.save_states(p),
        })

    def train_until(self, until_epoch: int):
        """Train (resuming from the output folder) until ``until_epoch`` epochs are done."""
        self.callback_on_start()
        every = int(self.hparams["checkpoint_every"])
        while self.cur_epoch < until_epoch:
            self.monitor.reset()
            t0 = time.time()
            stage = self.stage_at(self.cur_epoch)
            if self.cur_epoch == stage.start and self.start_step == 0:
                self._begin_stage(stage)
            lr = self.optimizer["train"].get_learning_rate()
            self.log(f"epoch {self.cur_epoch}  space {stage.sampler.name}  lr {lr:.3g}")
            sample_s = 0.0
            for i in range(self.start_step, self.one_epoch_train):
                ts = time.perf_counter()
                arch = stage.sampler.sample_step(self.seed, self.global_step)
                sample_s += time.perf_counter() - ts
                self.model.set_arch(arch)
                self.update_graph("train")
                self.train_on_batch()
                self.global_step += 1
                if i % int(self.hparams["print_frequency"]) == 0:
                    self.monitor.display(i, [k for k in self.monitor.meters if k.endswith("/train")])
                if every and self.global_step % every == 0 and i + 1 < self.one_epoch_train:
                    self.save(self.cur_epoch, i + 1)
            steps = self.one_epoch_train - self.start_step
            self.start_step = 0
            self.callback_on_epoch_end(time.time() - t0, sample_s, steps, stage)
        return self.history

    def run(self):
        self.train_until(int(self.hparams["epoch"]))
        self.callback_on_finish()
        return self.history

    def train_on_batch(self, key="train"):
        p = self.placeholder["train"]
        opt = self.optimizer[key]
        opt.zero_grad()
        for _ in range(self.accum_train):
            self._load_data(p, self.dataloader["train"].next())
            p["loss"].forward(clear_no_need_grad=True)
            p["loss"].backward(clear_buffer=True)
            self.model.commit_bn_statistics()  # running statistics of sliced BatchNorms (ElasticBN)
            self.monitor.update("loss/train", float(p["loss"].d) * self.accum_train, self.mbs_train)
            for k, m in p["metrics"].items():
                if k != "loss":
                    m.forward(clear_buffer=True)
                    self.monitor.update(f"{k}/train", float(m.d), self.mbs_train)
        if self.comm.n_procs > 1:
            self.event.default_stream_synchronize()
            self.comm.all_reduce(self._grads, division=True, inplace=False)
            self.event.add_default_stream_event()
        opt.update()

    def _per_reference_path(self, measure, archs=None) -> dict:
        """``{name: measure(arch)}`` over the reference paths (``valid_archs``), each distinct path
        measured once (min == max while one path trains alone)."""
        done = {}
        out = {}
        for name, arch in (self.valid_archs() if archs is None else archs).items():
            key = arch.to_json()
            if key not in done:
                done[key] = measure(arch)
            out[name] = done[key]
        return out

    def path_valid_loss(self, arch) -> float:
        """Validation loss of one path on the run's validation set, BN re-calibrated on its calibration set."""
        return self.evaluator.validation_loss(arch)

    def callback_on_epoch_end(self, seconds=0.0, sample_seconds=0.0, steps=0, stage=None):
        valid = self._per_reference_path(self.path_valid_loss)
        meters = {k: m.avg for k, m in self.monitor.meters.items()}
        entry = {"epoch": self.cur_epoch, "lr": float(self.optimizer["train"].get_learning_rate()),
                 "train": meters, "valid_loss": valid, "seconds": round(seconds, 2), "steps": steps,
                 "sampling_seconds": round(sample_seconds, 4),
                 "space": stage.sampler.name if stage is not None else None}
        stats = getattr(stage.sampler, "stats", None) if stage is not None else None
        if callable(stats):
            entry["sampler"] = stats()
        self.history.append(entry)
        for k, v in valid.items():
            self.monitor.update(f"valid_loss/{k}", v, 1)
        self.log(f"epoch {self.cur_epoch} done in {seconds:.1f}s: train loss "
                 f"{meters.get('loss/train', float('nan')):.4f}; valid loss "
                 + ", ".join(f"{k} {v:.4f}" for k, v in valid.items()))
        self.monitor.write(self.cur_epoch)
        self.cur_epoch += 1
        self.save(self.cur_epoch, 0)

    def final_evaluation(self):
        """AP of the reference paths on the test split (``test`` loader), BN re-calibrated."""
        if not self.hparams["final_eval"]:
            return {}
        archs = self.valid_archs()
        per_name = self._per_reference_path(lambda a: self.evaluator.evaluate(self.dataloader["test"], "test", a),
                                            archs)
        out = {}
        for name, arch in archs.items():
            metrics = per_name[name]
            out[name] = {"arch": arch.to_dict(), "mflops": mflops(arch, self.model.config, self.input_size), **metrics}
            if self.comm.rank == 0:
                main = {k: v for k, v in metrics.items() if k in ("mAP", "AP", "AP50")}
                self.log(f"test {name} path ({out[name]['mflops']:.1f} MFLOPs): "
                         + ", ".join(f"{k} {v:.2f}" for k, v in main.items()) + " (%)")
        return out

    def export_paths(self):
        """``--save-nnp``: the reference paths as static .nnp networks (BN re-calibrated, checked)."""
        from ..export import export_path
        files = {}
        for name, arch in self.valid_archs().items():
            label = name if name in ("min", "max") else f"path{len(files)}"
            files[name] = export_path(self.model, os.path.join(self.out, f"{label}.nnp"), "nnp", self.input_size,
                                      arch=arch, evaluator=self.evaluator, name=f"detofa_{label}")["path"]
            self.log(f"Saved {files[name]}")
        return files

    def summary(self, final) -> dict:
        sampler = self.sampler_at(max(self.cur_epoch - 1, 0))
        cfg, size = self.model.config, self.input_size
        return {"epochs": self.cur_epoch, "steps": self.global_step, "space": sampler.describe(),
                "input_size": size, "network": cfg.to_dict(),
                "flops_range_mflops": list(sampler.flops_range(cfg, size)),
                "stages": [{"start": st.start, "epochs": st.epochs, "space": st.sampler.name} for st in self.stages],
                "test": final, "history": self.history}

    def callback_on_finish(self):
        final = self.final_evaluation()
        if self.comm.rank == 0:
            with atomic_path(os.path.join(self.out, "supernet.h5"), suffix=".h5") as tmp:
                self.model.save_weights(tmp)
            summary = self.summary(final)
            if self.args.get("save_nnp"):
                summary["nnp"] = self.export_paths()
            write_json_atomic(os.path.join(self.out, "summary.json"), summary, indent=1)
            self._plot()
        self.monitor.close()

    def _plot(self):
        if not self.history:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        ep = [h["epoch"] for h in self.history]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(ep, [h["train"].get("loss/train", np.nan) for h in self.history], label="train (sampled paths)")
        for k in self.history[-1]["valid_loss"]:
            ax.plot(ep, [h["valid_loss"].get(k, np.nan) for h in self.history], label=f"valid ({k} path)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("CenterNet loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(self.out, "loss.png"), dpi=100)
        plt.close(fig)

