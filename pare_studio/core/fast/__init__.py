"""The fast CPU inference path: PARE's network in ONNX Runtime, exported once and cached.

- :mod:`pare_studio.core.fast.onnx_runner`: export of the network (head outputs only; SMPL and
  projection stay in torch, see ``ParePredictor.outputs_from_heads``) with a dynamic batch
  axis, the ONNX Runtime session runner, and the ``"onnx"`` / ``"auto"`` runner factories
  registered in :data:`pare_studio.core.predictor.RUNNER_FACTORIES`.
- :mod:`pare_studio.core.fast.cache`: the on-disk export cache keyed by the checkpoint's sha256,
  the configuration and the library versions.
- :mod:`pare_studio.core.fast.fold`: batch-norm folding + channels_last for the PyTorch fallback.

Nothing here is imported by ``pare_studio.core.predictor`` at module level; the factories import
this package when a predictor is built.
"""

from __future__ import annotations
