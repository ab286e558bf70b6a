"""Efficiencies of the serving model, fitted to the bundled profiles by ``calibration/fit.py``.

Do not edit: regenerate with ``python calibration/fit.py``. Errors of the fit
(model / measured - 1), as that command printed them:

| data | points | median abs. error | p90 abs. error | worst |
|---|---|---|---|---|
| llama-2-70b h100-80gb prefill (fitted) | 38 | 14.6% | 42.6% | -51.8% |
| llama-2-70b h100-80gb decode (fitted) | 56 | 11.5% | 14.1% | -17.1% |
| bloom-176b h100-80gb prefill (held out) | 13 | 18.4% | 28.9% | -32.7% |
| bloom-176b h100-80gb decode (held out) | 19 | 11.1% | 13.0% | -13.5% |
| llama-2-70b a100-80gb prefill (fitted) | 38 | 14.5% | 35.6% | -50.1% |
| llama-2-70b a100-80gb decode (fitted) | 57 | 10.1% | 16.9% | +33.4% |
| bloom-176b a100-80gb prefill (held out) | 13 | 15.2% | 30.6% | -31.5% |
| bloom-176b a100-80gb decode (held out) | 19 | 2.1% | 4.2% | -16.3% |
| all-reduce, H100 DGX, 2-8 GPUs (fitted) | 2979 | 7.0% | 19.8% | +325.0% |
| llama-2-7b linear operators per layer, H100 TP1-8 (held out) | 1044 | 37.1% | 64.5% | +76.3% |
| llama-2-70b linear operators per layer, H100 TP1-8 (held out) | 1044 | 45.0% | 64.7% | +75.2% |
| qwen-72b linear operators per layer, H100 TP1-8 (held out) | 1044 | 43.7% | 64.3% | +81.3% |

Left out as not monotone in the batch (see ``anomalies``):
- llama-2-70b a100-80gb TP2 prefill (batch 64, prompt 512): 794.2 ms
- llama-2-70b h100-80gb TP2 prefill (batch 64, prompt 512): 360.6 ms
- llama-2-70b h100-80gb TP2 decode (batch 64, prompt 512, output 128): 42.3 ms
"""

H100 = {
    "memory_efficiency": 1.0,
    "compute_efficiency": 0.44,
    "layer_overhead_s": 0.0002023,
    "sequence_overhead_s": 0.000316,
    "allreduce_latency_s": 2.967e-05,
    "allreduce_efficiency": 0.7841,
}
"""Fitted to the h100-80gb rows of the profiles."""

A100 = {
    "memory_efficiency": 1.0,
    "compute_efficiency": 0.5342,
    "layer_overhead_s": 0.0003141,
    "sequence_overhead_s": 0.0003444,
    "allreduce_latency_s": 2.967e-05,
    "allreduce_efficiency": 0.7841,
}
"""Fitted to the a100-80gb rows of the profiles."""
