"""Supernet training by sampling one path per step (DetOFA §4, Eq. 1).

With ``"space": "ofa"`` this is the paper's "OFA w/o PS" baseline (uniform sampling), with
``"compofa"`` the CompOFA* baseline, and with ``"space_schedule"`` progressive shrinking
(e.g. ``[["ps1", 70], ["ps2", 5], ["ps3", 65], ["ps4", 5], ["ps5", 65]]``). Every rank samples the
same path each step (the generator is seeded by the global step), so gradients all-reduce over
one path. Checkpoints are atomic and a killed run resumes from the output folder.
"""
import os
import random
import time

import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..space import Arch, SearchSpace, flops_range, mflops, space_from_spec
from .base import VALID_ARCHS, DetOFARunner, space_spec
from .checkpoint import find_checkpoint, load_checkpoint_info, save_checkpoint
from .schema import Bool, Choice, Custom, Int, epochs_spec

def _space_schedule(v, where):
    if not isinstance(v, list) or not v:
        raise ValueError(f"{where}: expected a list of [space, epochs] pairs")
    for i, item in enumerate(v):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], int)
                and not isinstance(item[1], bool) and item[1] >= 1):
            raise ValueError(f"{where}[{i}]={item!r}: expected [space, epochs >= 1]")
        space_from_spec(item[0], f"{where}[{i}][0]")
    return [list(item) for item in v]


HPARAMS = {
    "epoch": epochs_spec(),                      # required: the length of the training
    "space": space_spec(),
    "space_schedule": Custom(_space_schedule, "a list of [space, epochs] pairs", nullable=True, default=None),
    "sampling": Choice(("decision", "path"), default="decision"),   # path: uniform over distinct networks
    "checkpoint_every": Int(0, default=0),       # steps; 0 = at the end of each epoch only
    "valid_archs": VALID_ARCHS,
    "final_eval": Bool(default=True),            # AP of the valid_archs paths on the test split at the end
}


def step_rng(seed: int, step: int) -> random.Random:
    """The path generator of one global step: the same on every rank, and after a resume."""
    return random.Random(seed * 1_000_003 + step)


class DetOFASupernetTrainer(DetOFARunner):
    """NNablaNAS runner: trains a DetOFA supernet one sampled path per step."""

    HPARAMS = HPARAMS

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        self.schedule = self._space_schedule(self.hparams)
        self.seed = int(self.hparams["seed"])
        self.global_step = 0
        self.start_step = 0
        self.history = []

    # --- spaces ------------------------------------------------------------------------------
    @staticmethod
    def _space_schedule(hp):
        if hp.get("space_schedule"):
            sched, start = [], 0
            for i, item in enumerate(hp["space_schedule"]):
                sched.append((start, space_from_spec(item[0], f"hparams.space_schedule[{i}]")))
                start += item[1]
            return sched
        return [(0, space_from_spec(hp["space"], "hparams.space"))]

    def space_at(self, epoch: int) -> SearchSpace:
        current = self.schedule[0][1]
        for start, space in self.schedule:
            if epoch >= start:
                current = space
        return current

    def valid_archs(self):
        space = self.space_at(self.cur_epoch)
        out = {}
        for v in self.hparams["valid_archs"]:
            if v in ("min", "max"):
                out[v] = space.extreme(v == "max")
            else:
                a = Arch.from_dict(v, "hparams.valid_archs")
                out[a.to_json()] = a
        return out

    # --- NNablaNAS runner hooks ---------------------------------------------------------------
    def callback_on_start(self):
        self.model.set_arch(self.space_at(0).extreme(True))
        params = self.model.get_net_parameters(grad_only=True)
        self.optimizer["train"].set_parameters(params)
        self._grads = [p.grad for p in params.values()]
        self.log_splits()
        ckpt = find_checkpoint(self.out)
        if ckpt:
            self._resume(ckpt)
        n = sum(int(np.prod(p.shape)) for p in params.values())
        self.monitor.info(f"Supernet parameters: {n / 1e6:.3f} M; space(s): "
                          f"{', '.join(f'{s.name} from epoch {e}' for e, s in self.schedule)}\n")

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
        self.monitor.info(f"Resumed from {path}: epoch {self.cur_epoch}, step {self.start_step}\n")

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

    def run(self):
        self.callback_on_start()
        epochs = int(self.hparams["epoch"])
        every = int(self.hparams["checkpoint_every"])
        while self.cur_epoch < epochs:
            self.monitor.reset()
            t0 = time.time()
            space = self.space_at(self.cur_epoch)
            lr = self.optimizer["train"].get_learning_rate()
            self.monitor.info(f"epoch {self.cur_epoch}  space {space.name}  lr {lr:.3g}\n")
            for i in range(self.start_step, self.one_epoch_train):
                arch = space.sample(step_rng(self.seed, self.global_step), mode=self.hparams["sampling"])
                self.model.set_arch(arch)
                self.update_graph("train")
                self.train_on_batch()
                self.global_step += 1
                if i % int(self.hparams["print_frequency"]) == 0:
                    self.monitor.display(i, [k for k in self.monitor.meters if k.endswith("/train")])
                if every and self.global_step % every == 0 and i + 1 < self.one_epoch_train:
                    self.save(self.cur_epoch, i + 1)
            self.start_step = 0
            self.callback_on_epoch_end(time.time() - t0)
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

    def path_valid_loss(self, arch) -> float:
        """Validation loss of one path on the run's validation set, BN re-calibrated on its calibration set."""
        return self.evaluator.validation_loss(arch)

    def callback_on_epoch_end(self, seconds=0.0):
        valid = {name: self.path_valid_loss(a) for name, a in self.valid_archs().items()}
        meters = {k: m.avg for k, m in self.monitor.meters.items()}
        entry = {"epoch": self.cur_epoch, "lr": float(self.optimizer["train"].get_learning_rate()),
                 "train": meters, "valid_loss": valid, "seconds": round(seconds, 2)}
        self.history.append(entry)
        for k, v in valid.items():
            self.monitor.update(f"valid_loss/{k}", v, 1)
        self.monitor.info(f"epoch {self.cur_epoch} done in {seconds:.1f}s: train loss "
                          f"{meters.get('loss/train', float('nan')):.4f}; valid loss "
                          + ", ".join(f"{k} {v:.4f}" for k, v in valid.items()) + "\n")
        self.monitor.write(self.cur_epoch)
        self.cur_epoch += 1
        self.save(self.cur_epoch, 0)

    def final_evaluation(self):
        """AP of the reference paths on the test split (``test`` loader), BN re-calibrated."""
        if not self.hparams["final_eval"]:
            return {}
        size = self.input_size
        out = {}
        for name, arch in self.valid_archs().items():
            metrics = self.evaluator.evaluate(self.dataloader["test"], "test", arch)
            out[name] = {"arch": arch.to_dict(), "mflops": mflops(arch, self.model.config, size), **metrics}
            if self.comm.rank == 0:
                main = {k: v for k, v in metrics.items() if k in ("mAP", "AP", "AP50")}
                self.monitor.info(f"test {name} path ({out[name]['mflops']:.1f} MFLOPs): "
                                  + ", ".join(f"{k} {v:.2f}" for k, v in main.items()) + " (%)\n")
        return out

    def export_paths(self):
        """``--save-nnp``: the reference paths as static .nnp networks (BN re-calibrated)."""
        from ..export import export_nnp
        from ..nets.static import extract
        size = self.hparams["input_shapes"][0][-1]
        files = {}
        for name, arch in self.valid_archs().items():
            label = name if name in ("min", "max") else f"path{len(files)}"
            with self.evaluator.path(arch):
                net = extract(self.model, arch)  # BN statistics re-calibrated for this path
            files[name] = export_nnp(net, os.path.join(self.out, f"{label}.nnp"), size, name=f"detofa_{label}")
            self.monitor.info(f"Saved {files[name]}\n")
        return files

    def callback_on_finish(self):
        final = self.final_evaluation()
        if self.comm.rank == 0:
            with atomic_path(os.path.join(self.out, "supernet.h5"), suffix=".h5") as tmp:
                self.model.save_weights(tmp)
            space = self.space_at(max(self.cur_epoch - 1, 0))
            cfg, size = self.model.config, self.hparams["input_shapes"][0][-1]
            summary = {"epochs": self.cur_epoch, "steps": self.global_step, "space": space.to_dict(),
                       "space_size": space.size(), "input_size": size, "network": cfg.to_dict(),
                       "flops_range_mflops": list(flops_range(space, cfg, size)),
                       "test": final, "history": self.history}
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
