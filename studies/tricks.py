"""Training pieces of our own for studies/own_pieces.py: a label-smoothing loss, the Lion
optimizer, mixup as a whole training step, and expected calibration error as a metric.

Each is a plain function cnnbench calls with the job's `config` (its factors included);
see benchmark/pieces.py for the contracts. Editing this file makes the jobs that use one
of its pieces new jobs (its source is hashed into their keys); the others keep theirs.
"""

import numpy as np
import torch
import torch.nn.functional as F


def smoothed(output, targets, config):
    """Cross-entropy against targets smoothed by the factor `label_smoothing` (0: the
    built-in NLL exactly, since the nets output log-probabilities)."""
    return F.cross_entropy(output, targets, label_smoothing=config.factors["label_smoothing"])


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign
    of an interpolation of the gradient and its momentum, with decoupled weight decay."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(m * beta1 + p.grad * (1 - beta1)), alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)


def lion(params, config):
    return Lion(params, lr=config.lr, weight_decay=config.weight_decay)


def mixup(net, x, y, optimizer, config, generator):
    """One mixup step (Zhang et al. 2018): train on convex mixes of the batch with a
    shuffled copy of itself, against the same mix of their labels' losses. The mixing
    weight is drawn from Beta(alpha, alpha), alpha the factor `mixup_alpha`; every draw
    comes from the job's own generator, so a rerun and a resumed run are identical."""
    alpha = config.factors["mixup_alpha"]
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=generator, device=generator.device).to(x.device)
    out = net(lam * x + (1 - lam) * x[perm]).float()
    loss = lam * F.nll_loss(out, y) + (1 - lam) * F.nll_loss(out, y[perm])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def ece(net, data, config, bins=15):
    """Expected calibration error (Guo et al. 2017): the test samples binned by the
    confidence of their predicted class (15 equal bins), the mean |accuracy - confidence|
    weighted by the bins' sizes, in [0, 1] (lower is better); and the mean confidence."""
    confidences, hits = [], []
    for i in range(0, len(data.test_y), 1000):
        probs = net(data.test_x[i:i + 1000]).float().exp()
        confidence, predicted = probs.max(dim=1)
        confidences.append(confidence)
        hits.append((predicted == data.test_y[i:i + 1000]).float())
    confidence, hit = torch.cat(confidences), torch.cat(hits)
    which = torch.clamp((confidence * bins).long(), max=bins - 1)
    total = torch.zeros((), device=confidence.device)
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.float().mean() * (hit[inside].mean() - confidence[inside].mean()).abs()
    return {"ece": float(total), "confidence": float(confidence.mean())}
