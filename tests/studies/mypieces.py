"""Training pieces of a user's own, for tests/test_pieces.py: a loss with a factor, an
optimizer, a schedule, a whole step, metrics, and pieces that are wrong on purpose."""

import torch
import torch.nn.functional as F


def smoothed(output, targets, config):
    """Cross-entropy with label smoothing from the study's factor (0: the built-in nll)."""
    return F.cross_entropy(output, targets, label_smoothing=config.factors["ls"])


def sign_sgd(params, config):
    """A tiny optimizer of the user's: steps by the gradient's sign (Lion's update, no EMA)."""
    return SignSGD(params, lr=config.lr)


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


def frozen(step, total_steps, config):
    """A schedule that never lets the weights move."""
    return 0.0


def halfway(step, total_steps, config):
    return 1.0 if step < total_steps // 2 else 0.5


def mixup(net, x, y, optimizer, config, generator):
    """Mixup as a whole step: convex mixes of shuffled pairs, with their mixed losses."""
    lam = float(torch.rand((), generator=generator, device=x.device))
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    out = net(lam * x + (1 - lam) * x[perm]).float()
    loss = lam * F.nll_loss(out, y) + (1 - lam) * F.nll_loss(out, y[perm])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def ece(net, data, config):
    """Expected calibration error (10 bins), and the mean confidence."""
    with torch.no_grad():
        probs = net(data.test_x).float().exp()
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == data.test_y).float()
    edges = torch.linspace(0, 1, 11)
    total = torch.zeros(())
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.float().mean() * (confidence[inside].mean()
                                              - correct[inside].mean()).abs()
    return {"ece": float(total), "confidence": confidence.mean()}


# ---- wrong on purpose


def vector_loss(output, targets, config):
    return F.nll_loss(output, targets, reduction="none")


def raising_loss(output, targets, config):
    raise RuntimeError("my loss is broken")


def late_raising_loss(output, targets, config):
    """Right at the check (a batch of 4), wrong in the job (batches of 32)."""
    if len(targets) > 4:
        raise RuntimeError("my loss fails on a real batch")
    return F.nll_loss(output, targets)


def not_an_optimizer(params, config):
    return "adam"


def list_metric(net, data, config):
    return [0.5]


def text_metric(net, data, config):
    return {"ece": "low"}


def shadowing_metric(net, data, config):
    return {"test_accuracy": 1.0}


def exploding_loss(output, targets, config):
    """Finite at the check, infinite in the job: a divergence, not an error."""
    loss = F.nll_loss(output, targets)
    return loss if len(targets) <= 4 else loss * float("inf")


def two_argument_loss(output, targets):
    return F.nll_loss(output, targets)


def accuracy_metric(net, data, config):
    return {"accuracy": 0.5}


def lr_metric(net, data, config):
    return {"lr": 0.5}
