"""Classification pre-training of the supernet's backbone on object crops (the demo's ImageNet).

The paper starts from a supernet pre-trained on ImageNet classification (§4.1: transfer is worth
+6.55 AP on VOC). The CPU demo cannot use ImageNet, so this runner shows the same machinery at
demo scale: the backbone of the detection supernet plus a classifier head (``nets.classifier``)
is trained on crops of the training split's objects (``data.crops``), one uniformly sampled path
of ``hparams.space`` per step (once-for-all's elastic supernet training without progressive
shrinking; the path of step ``t`` is ``space.sample(step_rng(seed, t))``, as the detection
trainer draws it), and the backbone is
written as ``backbone.h5``, the file format ``import-weights`` writes, so a detection run takes it
through ``"pretrained"`` like any ImageNet supernet. Outputs: ``backbone.h5``, ``summary.json``
(top-1 accuracy of the smallest and largest paths on the test split's crops, BN re-calibrated on
training crops, and the spread of the paths trained), ``log.txt``, ``checkpoint/`` (atomic; a
killed run resumes to the same end). An epoch is ``len(crops) // batch_size_train`` steps; the
optimizer's learning-rate schedule (given in epochs) is sized to those steps, not to the
detection split's images.
"""
import os
import time

import nnabla as nn
import nnabla.functions as F

from ..atomic import write_json_atomic
from ..data.crops import CropSet
from ..evaluation.path_eval import inference_context
from ..nets.classifier import ClassifierHead, classification_logits
from ..space import ConfigError, mflops, space_from_spec
from .base import DetOFARunner, space_spec
from .checkpoint import find_checkpoint, load_checkpoint_info, save_checkpoint
from .optim import LR_KEYS, make_scheduler
from .schema import Choice, Int, Num
from .supernet_trainer import step_rng

HPARAMS = {
    "epoch": Int(1),
    "space": space_spec(),
    "sampling": Choice(("decision", "path"), default="decision"),
    "crop_size": Int(32, default=64),
    "crop_context": Num(0, 2, default=0.25),
    "checkpoint_every": Int(0, default=0),
    "bn_calib_crops": Int(1, default=512),
}


class ClassificationPretrainer(DetOFARunner):
    """NNablaNAS runner: the supernet's backbone as a classifier of object crops (see module doc)."""

    HPARAMS = HPARAMS

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        hp = self.hparams
        self.space = space_from_spec(hp["space"], "hparams.space")
        ds = self.dataloader["train"].dataset
        self.num_classes = ds.num_classes
        self.crops = CropSet(ds.records, hp["crop_size"], hp["mini_batch_train"], True, hp["seed"],
                             hp["crop_context"], name=f"{ds.split} crops")
        calib_recs = ds.records
        self.calib = CropSet(calib_recs, hp["crop_size"], hp["mini_batch_valid"], False, hp["seed"],
                             hp["crop_context"], name=f"{ds.split} crops")
        self.calib.objects = self.calib.objects[:hp["bn_calib_crops"]]
        test = self.dataloader["test"].dataset
        self.test = CropSet(test.records, hp["crop_size"], hp["mini_batch_valid"], False, hp["seed"],
                            hp["crop_context"], name=f"{test.split} crops")
        cfg = self.model.config
        self.head = ClassifierHead(max(cfg.stage_out_list(3)), self.num_classes)
        self.steps_per_epoch = max(1, len(self.crops) // hp["batch_size_train"])
        self.global_step = 0
        self.history = []
        self._epoch_loss = [0.0, 0]          # running (sum, count) of the epoch's cross-entropy
        self._sampled = []                   # backbone MFLOPs of the paths trained this epoch
        self._check_paths_in_network_space()

    def sample(self, step: int):
        """The path trained at global step ``step`` (the same after a resume)."""
        return self.space.sample(step_rng(self.hparams["seed"], step), mode=self.hparams["sampling"])

    def _check_paths_in_network_space(self):
        """Every path the run will train or measure is one the supernet can run (its ``space``):
        one line before the first step, not an error in the middle of the run."""
        net_space = getattr(self.model, "space", None)
        if net_space is None:
            return
        steps = int(self.hparams["epoch"]) * self.steps_per_epoch
        archs = [self.space.extreme(False), self.space.extreme(True)]
        for arch in archs + [self.sample(t) for t in range(steps)]:
            if not net_space.contains(arch):
                raise ConfigError(f"hparams.space={self.space.name!r} holds paths outside the network's space "
                                  f"{net_space.name!r} (network.detofa_resnet50.space), e.g. {arch.to_json()}: give "
                                  f"the network a space that holds hparams.space (e.g. the same)")

    def trainable(self):
        """The backbone's and the head's parameters (the neck and heads get no gradient here)."""
        params = self.model.get_net_parameters(grad_only=True)
        out = {k: v for k, v in params.items() if k.startswith(("stem/", "stages/"))}
        out.update({f"classifier/{k}": v for k, v in self.head.get_parameters(grad_only=True).items()})
        return out

    def _graph(self, bs: int, training: bool):
        x = nn.Variable((bs, 3, self.hparams["crop_size"], self.hparams["crop_size"]))
        t = nn.Variable((bs, 1))
        self.model.apply(training=training)
        self.head.apply(training=training)
        logits = classification_logits(self.model, self.head, x)
        loss = F.mean(F.softmax_cross_entropy(logits, t))
        return x, t, logits, loss

    def save(self):
        if self.comm.rank != 0:
            return
        self.model.commit_bn_statistics()
        opt = self.optimizer["train"]
        info = {"epoch": self.cur_epoch, "global_step": self.global_step, "optimizer_iter": opt._iter,
                "crops": self.crops.position, "history": self.history, "epoch_loss": self._epoch_loss,
                "sampled_mflops": self._sampled}

        def weights(path):
            params = dict(self.model.get_parameters())
            params.update({f"classifier/{k}": v for k, v in self.head.get_parameters().items()})
            nn.save_parameters(path, params)
        save_checkpoint(self.out, info, {"weights.h5": weights, "optim_train.h5": opt._solver.save_states})

    def _resume(self, path):
        from ..nets.detector import read_parameters
        info = load_checkpoint_info(path)
        arrays = read_parameters(os.path.join(path, "weights.h5"))
        self.model.set_parameter_arrays({k: v for k, v in arrays.items() if not k.startswith("classifier/")},
                                        where=path)
        for k, p in self.head.get_parameters().items():
            p.d = arrays[f"classifier/{k}"]
        opt = self.optimizer["train"]
        opt._solver.load_states(os.path.join(path, "optim_train.h5"))
        opt._iter = int(info["optimizer_iter"])
        self.cur_epoch, self.global_step = int(info["epoch"]), int(info["global_step"])
        self.crops.reset(int(info["crops"]))
        self.history = info["history"]
        self._epoch_loss = list(info.get("epoch_loss", [0.0, 0]))
        self._sampled = list(info.get("sampled_mflops", []))
        self.log(f"Resumed from {path}: epoch {self.cur_epoch}, step {self.global_step}")

    def accuracy(self, arch) -> float:
        """Top-1 accuracy (%) of a path on the test crops, its BatchNorms re-calibrated on training crops."""
        with inference_context(self.model):
            self.model.set_arch(arch)
            self.model.recalibrate_bn(imgs for imgs, _ in self.calib.batches())
            self.model.apply(training=False)
            correct = total = 0
            graphs = {}
            for imgs, labels in self.test.batches():
                g = graphs.get(len(imgs))
                if g is None:
                    with nn.no_grad():
                        g = graphs[len(imgs)] = self._graph(len(imgs), False)
                x, _, logits, _ = g
                x.d = imgs
                logits.forward(clear_buffer=True)
                correct += int((logits.d.argmax(1) == labels).sum())
                total += len(labels)
        return 100.0 * correct / max(total, 1)

    def _install_schedule(self, opt):
        """The ``train`` optimizer's schedule over this run's steps (``steps_per_epoch`` crop
        batches per epoch; the launcher sized it to the detection split's images)."""
        spec = getattr(opt, "detofa_spec", None)
        if spec is None:
            return
        lr = next((spec[k] for k in LR_KEYS if k in spec), None)
        if lr is not None:
            opt._lr_scheduler = make_scheduler(spec.get("lr_scheduler"), float(lr), int(self.hparams["epoch"]),
                                               self.steps_per_epoch, "optimizer.train.lr_scheduler")

    def run(self):
        hp = self.hparams
        params = self.trainable()
        opt = self.optimizer["train"]
        opt.set_parameters(params)
        self._install_schedule(opt)
        grads = [p.grad for p in params.values()]
        ckpt = find_checkpoint(self.out)
        if ckpt:
            self._resume(ckpt)
        self.log(f"Classification pre-training on {len(self.crops)} crops of {self.num_classes} classes "
                 f"({hp['crop_size']} px), {self.steps_per_epoch} steps per epoch; test: {len(self.test)} crops")
        bs = hp["mini_batch_train"]
        accum = hp["batch_size_train"] // self.comm.n_procs // bs
        every = hp["checkpoint_every"]
        cfg, size = self.model.config, hp["crop_size"]
        while self.cur_epoch < hp["epoch"]:
            t0 = time.time()
            for i in range(self.global_step - self.cur_epoch * self.steps_per_epoch, self.steps_per_epoch):
                arch = self.sample(self.global_step)
                self.model.set_arch(arch)
                self._sampled.append(round(mflops(arch, cfg, size, "backbone"), 4))
                x, t, _, loss = self._graph(bs, True)
                opt.zero_grad()
                for _ in range(accum):
                    imgs, labels = self.crops.next()
                    x.d, t.d = imgs, labels.reshape(-1, 1)
                    loss.forward(clear_no_need_grad=True)
                    loss.backward(clear_buffer=True)
                    self.model.commit_bn_statistics()
                    self._epoch_loss[0] += float(loss.d)
                    self._epoch_loss[1] += 1
                if self.comm.n_procs > 1:
                    self.comm.all_reduce(grads, division=True, inplace=False)
                opt.update()
                self.global_step += 1
                if i % hp["print_frequency"] == 0:
                    self.log(f"[{i}/{self.steps_per_epoch}] cross-entropy {float(loss.d):.4f}")
                if every and self.global_step % every == 0:
                    self.save()
            acc = {k: self.accuracy(self.space.extreme(k == "max")) for k in ("min", "max")}
            total, n = self._epoch_loss
            lo, hi = (min(self._sampled), max(self._sampled)) if self._sampled else (None, None)
            self.history.append({"epoch": self.cur_epoch, "loss": total / max(n, 1), "top1": acc,
                                 "lr": float(opt.get_learning_rate()), "paths": len(self._sampled),
                                 "sampled_mflops": [lo, hi], "seconds": round(time.time() - t0, 2)})
            self.log(f"epoch {self.cur_epoch}: cross-entropy {total / max(n, 1):.4f}; test top-1 min path "
                     f"{acc['min']:.1f} %, max path {acc['max']:.1f} %; paths trained {lo}-{hi} backbone MFLOPs "
                     f"at {size} px ({time.time() - t0:.1f}s)")
            self._epoch_loss, self._sampled = [0.0, 0], []
            self.cur_epoch += 1
            self.save()
        self.finish()
        return self.history

    def finish(self):
        if self.comm.rank != 0:
            return
        from ..transfer import save_backbone
        from ..transfer.names import backbone_shapes
        cfg = self.model.config
        params = self.model.get_parameters()
        arrays = {k: params[k].d.copy() for k in backbone_shapes(cfg)}
        report = {"config": cfg.to_dict(), "source_stem_activation": cfg.stem_activation}
        save_backbone(os.path.join(self.out, "backbone.h5"), arrays, report)
        size = self.hparams["crop_size"]
        summary = {"epochs": self.cur_epoch, "steps": self.global_step, "crops": len(self.crops),
                   "test_crops": len(self.test), "crop_size": size, "network": cfg.to_dict(),
                   "space": self.space.to_dict(), "history": self.history,
                   "top1": self.history[-1]["top1"] if self.history else None,
                   "backbone": os.path.join(self.out, "backbone.h5"),
                   "mflops_at_crop_size": {k: mflops(self.space.extreme(k == "max"), cfg, size, "backbone")
                                           for k in ("min", "max")}}
        write_json_atomic(os.path.join(self.out, "summary.json"), summary, indent=1)
        self.monitor.close()

    def train_on_batch(self, key="train"):
        raise RuntimeError("ClassificationPretrainer trains in run()")



