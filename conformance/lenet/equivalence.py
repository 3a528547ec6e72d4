"""Comparing a backend's LeNet-5 training run with the float64 reference run.

Both runs start from the same weights and see the same minibatches with the same learning rate (see
train.py), so any difference comes from what the backend's ops compute. Reported per run:

- the per-step relative loss difference |L_b(t) - L_ref(t)| / L_ref(t) and the FIRST step where it
  exceeds the dtype's tolerance LOSS_RTOL (None: never);
- the final relative weight difference ||W_b - W_ref|| / ||W_ref|| over all parameters;
- both test accuracies.

How the bounds were chosen
--------------------------
Floor: one forward pass of LeNet-5 sums at most n = 401 products per output (F5: 400 inputs + bias),
so a correct backend's logits, and with them the loss, are within about gamma_n = n*u of the exact
values at step 1 (Higham's bound): 2.4e-5 for float32 (u = 2^-24), 4.5e-14 for float64. Typical
errors are far smaller (random rounding errors add like sqrt(n), not n).

Measured (digits, seed 0, batch 32, lr 0.05, 270 steps; float32 NumPy and PyTorch CPU against the
float64 reference): the relative loss difference stays at 1e-8 .. 1.6e-6 for the first 110 steps;
then, as in any float32 training, a near-tie (a max-pool window or a ReLU input within float32 rounding
of a tie) resolves differently from float64 and the trajectory leaves the reference: 1e-5 at step 115,
1e-4 at step 149, 1e-2 by step 170, and the final weights differ by 1.7e-2. Both float32 backends
leave the reference at the same steps and stay within 2.5e-5 of EACH OTHER over the whole run: the
divergence is float32's, not a backend's. float64 NumPy and PyTorch stay within 7e-14 of the reference
(weights 7e-16) for the whole run.

Hence:
- LOSS_RTOL: float32 1e-4 (60x the largest difference measured before divergence, ~4x gamma_n;
  a wrong gradient or tie rule shows up at >= 1e-3 within a few steps), float64 1e-10.
- float32 is held to it for the first TRACK_STEPS = 100 steps (before the measured divergence), float64
  for every step; after TRACK_STEPS the first exceedance of a float32 run is reported, not failed.
- WEIGHT_RTOL (final weights): float64 1e-10 on any run; float32 1e-4, applied to runs of at most
  TRACK_STEPS steps (a longer float32 run's weight difference is reported).
- float16 (CUDA only; not measured here, no GPU was available): u = 2^-11 makes gamma_n ~ 0.2, so the
  bounds are provisional (2e-2 over 20 steps) and should be re-measured on a GPU. bfloat16 has no
  entry: NumPy cannot hold the initial weights in it.
- a run longer than TRACK_STEPS must end within ACCURACY_TOL = 0.02 (7 of 359 digits test images) of
  the reference's test accuracy.
"""

from __future__ import annotations

import numpy as np

LOSS_RTOL = {"float64": 1e-10, "float32": 1e-4, "float16": 2e-2}
WEIGHT_RTOL = {"float64": 1e-10, "float32": 1e-4, "float16": 2e-2}
TRACK_STEPS = {"float64": None, "float32": 100, "float16": 20}  # None: every step
ACCURACY_TOL = 0.02


def flat_weights(params: dict) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for p in params.values() for v in p.values()])


def track_steps(dtype: str, n: int, table: dict | None = None) -> int:
    """How many of the first steps must stay within LOSS_RTOL."""
    h = (table or TRACK_STEPS)[dtype]
    return n if h is None else min(h, n)


#: the small ResNet (conformance/blocks/resnet_small.py): batch norm puts relu inputs near 0, so float32
#: rounding flips a relu every few steps and an accurate float32 run (torch-cpu, numpy) leaves LOSS_RTOL
#: from step ~40 at batch 8 (measured over 1080 steps: torch-cpu 41, numpy 99); the first 12 steps stay
#: at ~1e-7. float32 runs are held to LOSS_RTOL for those 12 steps, then to the final accuracy.
RESNET_TRACK_STEPS = {"float64": None, "float32": 12, "float16": 4}


def compare(run, reference, *, track: dict | None = None) -> dict:
    """Equivalence figures of `run` (a TrainResult) against the float64 `reference` TrainResult. track: the
    steps held to LOSS_RTOL per dtype (default TRACK_STEPS, LeNet-5's)."""
    n = min(run.steps, reference.steps)
    dtype = run.dtype
    got = np.asarray(run.losses[:n], dtype=np.float64)
    ref = np.asarray(reference.losses[:n], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(got - ref) / np.abs(ref)
    rel = np.where(np.isnan(rel) & ~(np.isnan(got) & np.isnan(ref)), np.inf, np.nan_to_num(rel, nan=0.0))
    over = np.flatnonzero(rel > LOSS_RTOL[dtype])
    first = int(over[0]) + 1 if over.size else None
    h = track_steps(dtype, n, track)
    w, w_ref = flat_weights(run.params), flat_weights(reference.params)
    weight_diff = float(np.linalg.norm(w - w_ref) / np.linalg.norm(w_ref)) if w.shape == w_ref.shape else float("inf")
    failures = []
    if first is not None and first <= h:
        failures.append(
            f"loss differs by {rel[first - 1]:.2e} (> {LOSS_RTOL[dtype]:g}) at step {first}, within the first {h} steps"
        )
    if n <= h and not weight_diff <= WEIGHT_RTOL[dtype]:
        failures.append(f"final weights differ by {weight_diff:.2e} (> {WEIGHT_RTOL[dtype]:g})")
    acc_diff = None
    if run.test_accuracy is not None and reference.test_accuracy is not None:
        acc_diff = abs(run.test_accuracy - reference.test_accuracy)
        if n > h and not acc_diff <= ACCURACY_TOL:
            failures.append(
                f"test accuracy {run.test_accuracy:.4f} is {acc_diff:.4f} from "
                f"the reference's {reference.test_accuracy:.4f} (> {ACCURACY_TOL})"
            )
    return {
        "backend": run.backend,
        "dtype": dtype,
        "steps": int(n),
        "track_steps": int(h),
        "loss_rtol": LOSS_RTOL[dtype],
        "first_exceed_step": first,
        "max_loss_rel_diff_tracked": float(rel[:h].max()) if h else 0.0,
        "max_loss_rel_diff": float(rel.max()) if n else 0.0,
        "loss_rel_diff_at": {str(s): float(rel[s - 1]) for s in sorted({1, 10, 100, n}) if 1 <= s <= n},
        "final_weight_rel_diff": weight_diff,
        "weight_rtol": WEIGHT_RTOL[dtype],
        "weight_checked": n <= h,
        "test_accuracy": run.test_accuracy,
        "reference_accuracy": reference.test_accuracy,
        "accuracy_diff": acc_diff,
        "equivalent": not failures,
        "failures": failures,
    }
