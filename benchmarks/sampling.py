"""Microseconds per sampled action batch of a diffusion policy, for K x batch size.

    python benchmarks/sampling.py                   # CPU, and CUDA when available
    python benchmarks/sampling.py --json            # one JSON object instead of tables
    python benchmarks/sampling.py --device cpu --threads 2 --obs-dim 17 --action-dim 6

One "sample" is a whole chain a^K -> a^0 plus the squash: K control-network evaluations on
the batch, exactly what a rollout does per env step. The control network has the official
size (3 x 256, GELU). Times are medians over repeats within one process; the Gaussian policy
(K = 1 by construction) is listed as a reference row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from damdp_lite import DiffusionConfig, DiffusionPolicy, GaussianConfig, GaussianPolicy

KS = (1, 4, 8, 16)
BATCHES = (1, 8, 64, 1024)


def time_us(fn, device: str, min_time: float, min_reps: int = 5) -> float:
    """Median wall-clock microseconds of `fn()` over repeats lasting at least `min_time` s."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):  # warm-up
        fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def bench_device(device: str, obs_dim: int, action_dim: int, min_time: float) -> dict:
    """`{"diffusion": {K: {batch: us}}, "gaussian": {batch: us}}` on one device."""
    gen = torch.Generator(device=device).manual_seed(0)
    res: dict = {"diffusion": {}, "gaussian": {}}
    with torch.no_grad():
        for K in KS:
            pol = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=action_dim,
                                                  num_steps=K, device=device))
            res["diffusion"][K] = {}
            for B in BATCHES:
                obs = torch.randn(B, obs_dim, device=device, generator=gen)
                res["diffusion"][K][B] = time_us(
                    lambda p=pol, o=obs: p.sample_chain(o, generator=gen), device, min_time)
        g = GaussianPolicy(GaussianConfig(obs_dim=obs_dim, action_dim=action_dim,
                                          hidden_sizes=(256, 256, 256), device=device))
        for B in BATCHES:
            obs = torch.randn(B, obs_dim, device=device, generator=gen)
            res["gaussian"][B] = time_us(lambda o=obs: g.sample_chain(o, generator=gen),
                                         device, min_time)
    return res


def print_table(device: str, res: dict) -> None:
    print(f"\n{device}: microseconds per sampled action batch (median)")
    print("policy            " + "".join(f"{'B=' + str(b):>12s}" for b in BATCHES))
    for K in KS:
        print(f"diffusion K={K:<4d} " + "".join(f"{res['diffusion'][K][b]:12.1f}" for b in BATCHES))
    print("gaussian (K=1)    " + "".join(f"{res['gaussian'][b]:12.1f}" for b in BATCHES))
    k8 = res["diffusion"][8]
    print("K=8 per-action cost at B=1024 vs B=1: "
          f"{k8[1024] / 1024:.2f} us vs {k8[1]:.1f} us (batching across envs)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                    help="'all' = CPU, plus CUDA when available")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's)")
    ap.add_argument("--obs-dim", type=int, default=17, help="observation size (HalfCheetah: 17)")
    ap.add_argument("--action-dim", type=int, default=6, help="action size (HalfCheetah: 6)")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds of repeats per cell")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads={args.threads} must be >= 1")
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else \
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "obs_dim": args.obs_dim, "action_dim": args.action_dim, "unit": "us per batch",
           "results": {}}
    for dev in devices:
        out["results"][dev] = bench_device(dev, args.obs_dim, args.action_dim, args.min_time)
        if dev == "cuda":
            out["cuda_device"] = torch.cuda.get_device_name()
    if args.json:
        print(json.dumps(out))
        return
    print(f"torch {out['torch']}, {out['threads']} CPU threads, obs_dim {args.obs_dim}, "
          f"action_dim {args.action_dim}")
    for dev in devices:
        print_table(dev, out["results"][dev])
    if "cuda" not in devices:
        print("\n(CUDA not available: CPU only)")


if __name__ == "__main__":
    main()
