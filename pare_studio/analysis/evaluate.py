"""The paper's evaluation loop (spec §6): crops -> PARE -> meshes vs SMPL ground truth.

:func:`iter_evaluate` is a generator: it yields a :class:`~pare_studio.results.Progress` per
batch and returns an :class:`~pare_studio.analysis.eval_report.EvalReport`. The CLI drives it
with a progress bar; ``cancel`` stops it between batches (nothing is written by it at all).

Per sample (spec §6.4):

* ground truth mesh: SMPL with the npz pose (axis-angle) and betas, no translation; the neutral
  model, or the male / female model by the sample's gender when gendered models are given and
  the dataset is a 3DPW one (the reference's ``DATASET.USE_GENDER``);
* 14 joints of both meshes from ``J_regressor_h36m``, pelvis-aligned;
* MPJPE and PA-MPJPE per joint, V2V (no alignment), in mm.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from pare_studio.analysis.datasets import GENDERED_DATASETS, EvalDataset
from pare_studio.analysis.eval_crop import eval_crop
from pare_studio.analysis.eval_report import EvalReport, SampleErrors
from pare_studio.analysis.metrics import (
    joints14_from_vertices,
    mpjpe_per_joint,
    pa_mpjpe_per_joint,
    v2v,
)
from pare_studio.cancel import CancelToken
from pare_studio.results import Progress

if TYPE_CHECKING:
    from pare_studio.core.predictor import ParePredictor
    from pare_studio.core.smpl import SmplBody

log = logging.getLogger(__name__)

#: Progress stage name of a dataset: ``"eval:<dataset>"``.
STAGE_PREFIX = "eval:"


def load_crops(
    dataset: EvalDataset, indices: Sequence[int], pool: ThreadPoolExecutor | None = None
) -> np.ndarray:
    """Evaluation crops of the samples at ``indices``: (B, 3, 224, 224) float32, normalised."""

    def one(i: int) -> np.ndarray:
        return eval_crop(dataset.image_path(i), dataset.center[i], float(dataset.scale[i]))

    crops = list(pool.map(one, indices)) if pool is not None else [one(i) for i in indices]
    return np.stack(crops).astype(np.float32, copy=False)


def ground_truth_vertices(
    dataset: EvalDataset,
    indices: np.ndarray,
    smpl_neutral: SmplBody,
    smpl_gendered: tuple[SmplBody, SmplBody] | None,
) -> np.ndarray:
    """Ground-truth meshes of the samples at ``indices``: (B, 6890, 3) float32, metres.

    Pose and betas go into SMPL as float32 (as the reference's data loader gives them). With
    ``smpl_gendered = (male, female)`` and a 3DPW dataset, samples with gender 1 use the female
    model and all others (0 and unknown, -1) the male model, as the reference; otherwise the
    neutral model.
    """
    import torch

    def run(body: SmplBody) -> np.ndarray:
        dev = body.device
        pose = torch.as_tensor(dataset.pose[indices], dtype=torch.float32, device=dev)
        betas = torch.as_tensor(dataset.betas[indices], dtype=torch.float32, device=dev)
        with torch.inference_mode():
            verts, _ = body.forward_axis_angle(pose, betas)
        return verts.detach().cpu().numpy()

    if smpl_gendered is None or dataset.name not in GENDERED_DATASETS:
        return run(smpl_neutral)
    male, female = smpl_gendered
    is_female = dataset.gender[indices] == 1
    verts = run(male)
    if is_female.any():
        verts[is_female] = run(female)[is_female]
    return verts


def iter_evaluate(
    predictor: ParePredictor,
    datasets: EvalDataset | Sequence[EvalDataset],
    smpl_neutral: SmplBody,
    smpl_gendered: tuple[SmplBody, SmplBody] | None,
    j_regressor_h36m: np.ndarray,
    batch_size: int = 16,
    cancel: CancelToken | None = None,
    keep_vertices: bool = False,
    workers: int = 2,
    meta: dict[str, Any] | None = None,
) -> Generator[Progress, None, EvalReport]:
    """Evaluate ``predictor`` on each dataset, batch by batch.

    Parameters
    ----------
    predictor : a loaded ``ParePredictor`` (``predict(images, batch_size) -> PareOutput``).
    datasets : one dataset or several, evaluated in order.
    smpl_neutral : neutral SMPL body for the ground truth (e.g. ``predictor.smpl``).
    smpl_gendered : ``(male, female)`` SMPL bodies, or None; used only for 3DPW datasets
        (the caller passes them when ``DATASET.USE_GENDER`` is on and the models exist).
    j_regressor_h36m : (17, 6890) regressor of the evaluation joints.
    batch_size : crops per forward pass (does not change the numbers).
    cancel : checked before every batch; a cancel raises :class:`~pare_studio.errors.Cancelled`.
    keep_vertices : keep the predicted meshes in the report (N x 6890 x 3 float32 per dataset).
    workers : threads that read and crop images while the network runs.
    meta : run details copied into the report.

    Yields
    ------
    Progress : stage ``"eval:<dataset>"``, samples done / total; once with ``done = 0`` when a
        dataset starts, then after every batch.

    Returns
    -------
    EvalReport

    Raises
    ------
    DatasetError : a listed image is missing (checked for every dataset before any work) or
        cannot be decoded, or a crop box is empty.
    Cancelled : ``cancel`` was set.
    """
    if isinstance(datasets, EvalDataset):
        datasets = [datasets]
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    cancel = cancel or CancelToken()
    reg = np.asarray(j_regressor_h36m, dtype=np.float64)
    for ds in datasets:
        ds.check_images()

    report = EvalReport(meta=dict(meta or {}))
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        ThreadPoolExecutor(max_workers=1) as loader,
    ):
        for ds in datasets:
            stage = STAGE_PREFIX + ds.name
            n = len(ds)
            yield Progress(stage, 0, n)
            batches = [np.arange(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]
            parts: dict[str, list[np.ndarray]] = {
                k: [] for k in ("mpjpe", "pampjpe", "v2v", "pose", "shape", "cam", "vertices")
            }
            nxt: Future[np.ndarray] | None = None
            try:
                if batches:
                    nxt = loader.submit(load_crops, ds, batches[0], pool)
                for b, idx in enumerate(batches):
                    cancel.check()
                    images = nxt.result() if nxt is not None else load_crops(ds, idx, pool)
                    nxt = None
                    if b + 1 < len(batches):
                        nxt = loader.submit(load_crops, ds, batches[b + 1], pool)
                    out = predictor.predict(images, batch_size=batch_size)
                    pred_verts = out.smpl_vertices
                    gt_verts = ground_truth_vertices(ds, idx, smpl_neutral, smpl_gendered)
                    pred_j = joints14_from_vertices(pred_verts, reg)
                    gt_j = joints14_from_vertices(gt_verts, reg)
                    parts["mpjpe"].append(mpjpe_per_joint(pred_j, gt_j))
                    parts["pampjpe"].append(pa_mpjpe_per_joint(pred_j, gt_j))
                    parts["v2v"].append(v2v(pred_verts, gt_verts))
                    parts["pose"].append(out.pred_pose)
                    parts["shape"].append(out.pred_shape)
                    parts["cam"].append(out.pred_cam)
                    if keep_vertices:
                        parts["vertices"].append(pred_verts.astype(np.float32, copy=False))
                    yield Progress(stage, int(idx[-1]) + 1, n)
            finally:
                if nxt is not None:
                    nxt.cancel()
            gendered = smpl_gendered is not None and ds.name in GENDERED_DATASETS
            report.results[ds.name] = SampleErrors(
                dataset=ds.name,
                imgname=ds.imgname.copy(),
                sequence=ds.sequences,
                mpjpe=_concat(parts["mpjpe"], (14,), np.float64),
                pampjpe=_concat(parts["pampjpe"], (14,), np.float64),
                v2v=_concat(parts["v2v"], (), np.float64),
                pose=_concat(parts["pose"], (24, 3, 3), np.float32),
                shape=_concat(parts["shape"], (10,), np.float32),
                cam=_concat(parts["cam"], (3,), np.float32),
                gt_model="gendered" if gendered else "neutral",
                vertices=_concat(parts["vertices"], (6890, 3), np.float32)
                if keep_vertices
                else None,
            )
            log.info("%s: %d samples evaluated", ds.name, n)
    return report


def _concat(chunks: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Batches joined along axis 0; an empty (0, *shape) array when there are none."""
    return np.concatenate(chunks) if chunks else np.zeros((0, *shape), dtype)


def evaluate(*args: Any, **kwargs: Any) -> EvalReport:
    """Run :func:`iter_evaluate` to the end (same arguments) and return its report."""
    gen = iter_evaluate(*args, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
