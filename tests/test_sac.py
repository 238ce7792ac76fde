"""DiffSAC / SAC (method.md §5.4, a reconstruction): the critic target, tiny runs that resume
exactly, with either policy."""

import pytest
import torch
from conftest import assert_resumes_exactly

from damdp_lite.algos.sac import SAC, SACConfig, sac_target


def test_sac_target_formula():
    y = sac_target(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 1.0]),
                   torch.tensor([0.9, 0.9, 0.9]), torch.tensor([10.0, 5.0, 7.0]),
                   torch.tensor([2.0, -1.0, 3.0]), 0.5)
    assert torch.allclose(y, torch.tensor([1 + 0.9 * (10 - 1.0), 0.9 * (5 + 0.5), 2.0]))


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_sac_runs_and_resumes_exactly(policy):
    kind = {"num_steps": 2} if policy == "diffusion" else {}
    cfg = SACConfig.build(policy=policy, num_envs=2, num_env_steps=4, total_env_steps=32,
                          learning_starts=16, batch_size=16, hidden_sizes=(16,),
                          critic_hidden_sizes=(16,), gradient_steps_per_env_step=0.5, **kind)
    K = cfg.policy.num_steps
    assert K == (2 if policy == "diffusion" else 1)
    rows_a = assert_resumes_exactly(SAC, cfg)
    assert rows_a[-1]["buffer_size"] == 4 * 2 * 4 * K
    assert rows_a[0]["critic_loss"] != rows_a[0]["critic_loss"]  # nan before learning_starts
    assert rows_a[-1]["critic_loss"] == rows_a[-1]["critic_loss"]
