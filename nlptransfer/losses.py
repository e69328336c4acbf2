"""Losses of the transfer methods, in plain torch (no Trainer): domain adaptation, distillation, few-shot.

Domain adaptation (`trainers.adaptation`, and `selection.mmd` as a domain distance):
- `GradientReversal` / `grad_reverse`: identity forward, gradient times -lambda backward (DANN), with
  `dann_lambda`, the schedule of its coefficient.
- `coral_loss`: CORAL (Sun & Saenko 2016), distance between the feature covariances.
- `mmd_loss`: squared multi-kernel MMD (Long et al. 2015, DAN).

Distillation (`trainers.distillation`):
- `logit_distillation_loss`: KL between temperature-softened teacher and student outputs, times T**2
  (Hinton et al. 2015).
- `rkd_distance_loss`, `rkd_angle_loss` (with `pairwise_distances`, `triplet_angles`): relational
  knowledge distillation (Park et al., CVPR 2019) on pooled representations (`pooled`).

Contrastive few-shot (`trainers.contrastive`): `cosine_similarity_loss`, SetFit's pair loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# domain adaptation


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -lambda (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.lambd * grad_output, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, lambd)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The DANN schedule 2 / (1 + exp(-gamma * p)) - 1: 0 at the start, -> 1 at the end of training."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CORAL: ||C_s - C_t||_F^2 / (4 d^2) between the feature covariances ([n, d] each)."""
    d = source.size(1)

    def cov(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(0, keepdim=True)
        return x.T @ x / max(x.size(0) - 1, 1)

    return ((cov(source) - cov(target)) ** 2).sum() / (4 * d * d)


def mmd_loss(
    source: torch.Tensor, target: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5
) -> torch.Tensor:
    """Squared multi-kernel MMD (biased estimate) with a family of Gaussian kernels (DAN, Long et al. 2015).

    Bandwidths: the mean pairwise squared distance of the pooled sample times kernel_mul**k,
    k = -(kernel_num // 2) ... kernel_num // 2; the kernel is their sum. 0 for identical samples.
    """
    n = source.size(0)
    x = torch.cat([source, target])
    x = x if x.dtype == torch.float64 else x.float()  # float64 in: the distance estimate keeps it
    d2 = torch.cdist(x, x).pow(2)  # [n+m, n+m]
    m_all = x.size(0)
    bandwidth = d2.detach().sum() / max(m_all * m_all - m_all, 1)
    bandwidth = bandwidth.clamp(min=1e-8)
    k = torch.zeros_like(d2)
    for i in range(kernel_num):
        k = k + torch.exp(-d2 / (bandwidth * kernel_mul ** (i - kernel_num // 2)))
    kss, ktt, kst = k[:n, :n], k[n:, n:], k[:n, n:]
    return (kss.mean() + ktt.mean() - 2 * kst.mean()).clamp(min=0.0)


# ----------------------------------------------------------------------------------------------
# distillation


def logit_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, times T**2 (batch mean)."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """[n, n] Euclidean distances with a zero diagonal (the paper's `pdist`; differentiable at i == j)."""
    squared = e.pow(2).sum(1)
    d = (squared.unsqueeze(1) + squared.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=e.dtype))


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance-wise RKD: Huber loss between the mean-normalised pairwise distance matrices."""
    with torch.no_grad():
        t = pairwise_distances(teacher.float())
        t = t / t[t > 0].mean()
    s = pairwise_distances(student.float())
    s = s / s[s > 0].mean()
    return F.smooth_l1_loss(s, t)


def triplet_angles(e: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j of every triplet (i, j, k): <e_i - e_j, e_k - e_j> of unit vectors, [n**3]."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # [j, i, dim]: e_i - e_j, unit length
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD: Huber loss between the triplet-angle cosines."""
    with torch.no_grad():
        t = triplet_angles(teacher.float())
    return F.smooth_l1_loss(triplet_angles(student.float()), t)


def pooled(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """[batch, hidden] from last hidden states [batch, tokens, hidden]: "cls" (the first attended token's
    state: the first token with right padding, also right with left padding), "mean" or "max" (over the
    attended tokens). The one pooling function of nlptransfer (heads, features, RKD)."""
    mask = attention_mask
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    if how == "cls":
        first = mask.to(torch.long).argmax(dim=1)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), first]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if how == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(1).values
    if how != "mean":
        raise ValueError(f"unknown pooling {how!r}; choose cls, mean or max")
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


# ----------------------------------------------------------------------------------------------
# contrastive few-shot


def cosine_similarity_loss(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' CosineSimilarityLoss (SetFit): MSE between cos(a_i, b_i) and the pair's
    label (1.0 = same class, 0.0 = different), over [batch, dim] embeddings."""
    return F.mse_loss(F.cosine_similarity(a.float(), b.float(), dim=-1), labels.float())
