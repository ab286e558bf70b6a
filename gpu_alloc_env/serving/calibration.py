"""Efficiencies of the serving model, fitted to the bundled profiles by ``calibration/fit.py``.

Do not edit: regenerate with ``python calibration/fit.py``. Errors of the fit
(model / measured - 1), as that command printed them:

| data | points | median abs. error | p90 abs. error | worst |
|---|---|---|---|---|
| llama-2-70b h100-80gb prefill (fitted) | 38 | 14.6% | 42.6% | -51.7% |
| llama-2-70b h100-80gb decode (fitted) | 56 | 11.5% | 14.0% | -17.0% |
| bloom-176b h100-80gb prefill (held out) | 13 | 18.5% | 28.8% | -32.8% |
| bloom-176b h100-80gb decode (held out) | 19 | 11.0% | 12.9% | -13.4% |
| llama-2-70b a100-80gb prefill (fitted) | 38 | 14.5% | 35.6% | -50.1% |
| llama-2-70b a100-80gb decode (fitted) | 57 | 10.0% | 16.7% | +33.3% |
| bloom-176b a100-80gb prefill (held out) | 13 | 15.3% | 30.6% | -31.5% |
| bloom-176b a100-80gb decode (held out) | 19 | 2.0% | 4.1% | -16.2% |
| all-reduce, H100 DGX, 2-8 GPUs (fitted) | 2979 | 7.0% | 19.8% | +325.0% |
| llama-2-7b linear operators per layer, H100 TP1-8 (held out) | 1044 | 37.1% | 64.4% | +76.3% |
| llama-2-70b linear operators per layer, H100 TP1-8 (held out) | 1044 | 44.9% | 64.7% | +75.1% |
| qwen-72b linear operators per layer, H100 TP1-8 (held out) | 1044 | 43.7% | 64.3% | +81.3% |

Left out as not monotone in the batch (see ``anomalies``):
- llama-2-70b a100-80gb TP2 prefill (batch 64, prompt 512): 794.2 ms
- llama-2-70b h100-80gb TP2 prefill (batch 64, prompt 512): 360.6 ms
- llama-2-70b h100-80gb TP2 decode (batch 64, prompt 512, output 128): 42.3 ms
"""

H100 = {
    "memory_efficiency": 1.0,
    "compute_efficiency": 0.4401,
    "layer_overhead_s": 0.0002027,
    "sequence_overhead_s": 0.0003159,
    "allreduce_latency_s": 2.967e-05,
    "allreduce_efficiency": 0.7841,
}
"""Fitted to the h100-80gb rows of the profiles."""

A100 = {
    "memory_efficiency": 1.0,
    "compute_efficiency": 0.5344,
    "layer_overhead_s": 0.0003149,
    "sequence_overhead_s": 0.0003444,
    "allreduce_latency_s": 2.967e-05,
    "allreduce_efficiency": 0.7841,
}
"""Fitted to the a100-80gb rows of the profiles."""
