"""DA-MDP WPO (method.md §5.2): REPPO's machinery with a Wasserstein-flow actor update.

Everything but the actor loss is `reppo.REPPO` (rollout, HL-Gauss critic, TD(lambda), KL trust
region, temperature). With a `GaussianPolicy` it is ME-WPO, with a `DiffusionPolicy` DA-MDP WPO.

The update (official code, no inverse-Fisher preconditioning, D10): with a = sg(x_hat),
g_Q = grad_a Q(s~, a) (stop-gradient) and g_ell(theta) = grad_a ell_theta(s~, a),

    L_WPO(s~) = sum_i sg(T g_ell,i - g_Q,i) g_ell,i(theta),

whose gradient (grad_theta g_ell)^T (T g_ell - g_Q) is a WPO step on Q - T ell. It uses grad_a Q
without reparameterising through the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .reppo import REPPO, REPPOConfig


@dataclass
class WPOConfig(REPPOConfig):
    """DA-MDP WPO: REPPO's fields with WPO's official values (method.md §6)."""

    @classmethod
    def mujoco(cls, policy: str = "diffusion", **overrides) -> WPOConfig:
        """`REPPOConfig.mujoco` with WPO's entropy target (m = 8), KL bound 0.02, multiplier
        lr 6e-4 and action clip 1.0 (method.md §6)."""
        wpo = dict(entropy_target_mult=8.0, kl_bound=0.02, lr_multipliers=6e-4,
                   action_clip=1.0)
        return super().mujoco(policy, **{**wpo, **overrides})


def wpo_surrogate(grad_ell: torch.Tensor, grad_q: torch.Tensor, temperature: torch.Tensor
                  ) -> torch.Tensor:
    """L_WPO per state, `(B,)`: sum_i sg(T g_ell - g_Q)_i g_ell_i; inputs `(B, d)` (§5.2)."""
    return ((temperature.detach() * grad_ell - grad_q).detach() * grad_ell).sum(-1)


def action_gradients(policy, critic, obs: torch.Tensor, a_k: torch.Tensor, k: torch.Tensor,
                     action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g_ell(theta) with graph, g_Q without, Q) at a = sg(action), each `(B, d)` / `(B,)`.

    Sample b's ell and Q depend on a_b only, so one `autograd.grad` of the sums gives every
    per-sample gradient.
    """
    a = action.detach().requires_grad_(True)
    q = critic(obs, a_k, k, a)
    grad_q = torch.autograd.grad(q.sum(), a)[0].detach()
    ell = policy.log_ratio(obs, a_k, k, a)
    grad_ell = torch.autograd.grad(ell.sum(), a, create_graph=True)[0]
    return grad_ell, grad_q, q.detach()


class WPO(REPPO):
    """DA-MDP WPO learner: `REPPO` with `wpo_surrogate` as the actor loss."""

    def actor_loss(self, mb, x_hat, ell_hat, kl, temperature, lagrangian):
        grad_ell, grad_q, q = action_gradients(self.policy, self.critic, mb["obs"], mb["a_k"],
                                               mb["k"], x_hat)
        inside = kl.detach() < self.config.kl_bound
        loss = torch.where(inside, wpo_surrogate(grad_ell, grad_q, temperature),
                           lagrangian.detach() * kl).mean()
        return loss, q
