"""Evaluation results: per-sample errors, the paper's aggregates and their files.

``EvalReport`` holds one :class:`SampleErrors` per dataset and derives the summary rows:
the whole dataset, for 3DPW the "3DPW-Test" subset (the 24 official test sequences: the
numbers of the paper's table) and the "occluded" subset, and every sequence. Each sample
(person crop) has equal weight; a sample's MPJPE / PA-MPJPE is the mean of its 14 joint errors.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from pare_studio.analysis.datasets import GENDERED_DATASETS
from pare_studio.analysis.pw3d_sequences import is_occluded_sequence, is_test_sequence
from pare_studio.atomic import atomic_output, prepare_folder
from pare_studio.core.constants import J14_NAMES

#: Names of the 3DPW subsets in the summary.
SUBSET_TEST = "3DPW-Test"
SUBSET_OCCLUDED = "occluded"

#: Summary-row groups, in table order.
GROUP_ALL, GROUP_SUBSET, GROUP_SEQUENCE = "all", "subset", "sequence"

RESULTS_JSON = "eval_results.json"
RESULTS_CSV = "eval_results.csv"


def errors_file_name(dataset: str) -> str:
    """File name of a dataset's per-sample errors: ``errors_<dataset>.npz``."""
    return f"errors_{dataset}.npz"


@dataclass(frozen=True)
class SampleErrors:
    """Per-sample results of one dataset (N samples, in the dataset's order).

    Attributes
    ----------
    dataset : dataset name.
    imgname : (N,) str, image path relative to the dataset's image folder.
    sequence : (N,) str, sequence of each sample (second-to-last path component of imgname).
    mpjpe : (N, 14) float64, per-joint error after pelvis alignment, millimetres.
    pampjpe : (N, 14) float64, per-joint error after Procrustes alignment, millimetres.
    v2v : (N,) float64, mean vertex error without alignment, millimetres.
    pose : (N, 24, 3, 3) float32, predicted rotation matrices.
    shape : (N, 10) float32, predicted betas.
    cam : (N, 3) float32, predicted weak-perspective camera (s, tx, ty).
    gt_model : 'neutral' or 'gendered' (which SMPL models gave the ground truth).
    vertices : (N, 6890, 3) float32 predicted meshes, metres, or None when not kept.
    """

    dataset: str
    imgname: np.ndarray
    sequence: np.ndarray
    mpjpe: np.ndarray
    pampjpe: np.ndarray
    v2v: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    cam: np.ndarray
    gt_model: str = "neutral"
    vertices: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.imgname.shape[0])

    def to_npz_dict(self, with_vertices: bool = False) -> dict[str, np.ndarray]:
        """Arrays as written to ``errors_<dataset>.npz`` (errors in mm)."""
        out = {
            "imgname": self.imgname.astype(str),
            "sequence": self.sequence.astype(str),
            "dataset_name": np.array(self.dataset),
            "gt_model": np.array(self.gt_model),
            "joint_names": np.array(J14_NAMES),
            "units": np.array("mm"),
            "mpjpe": self.mpjpe,
            "pampjpe": self.pampjpe,
            "v2v": self.v2v,
            "pose": self.pose,
            "shape": self.shape,
            "cam": self.cam,
        }
        if with_vertices and self.vertices is not None:
            out["vertices"] = self.vertices
        return out


@dataclass(frozen=True)
class MetricSummary:
    """Mean errors of a group of samples, millimetres (NaN when ``n`` is 0)."""

    dataset: str
    group: str
    name: str
    n: int
    mpjpe: float
    pampjpe: float
    v2v: float

    def values(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "n": self.n,
            "mpjpe": clean(self.mpjpe),
            "pampjpe": clean(self.pampjpe),
            "v2v": clean(self.v2v),
        }


def summarize(errors: SampleErrors, mask: np.ndarray, group: str, name: str) -> MetricSummary:
    """Mean MPJPE / PA-MPJPE / V2V (mm) over the samples selected by boolean ``mask``."""
    n = int(mask.sum())
    if n == 0:
        nan = float("nan")
        return MetricSummary(errors.dataset, group, name, 0, nan, nan, nan)
    return MetricSummary(
        dataset=errors.dataset,
        group=group,
        name=name,
        n=n,
        mpjpe=float(errors.mpjpe[mask].mean(axis=1).mean()),
        pampjpe=float(errors.pampjpe[mask].mean(axis=1).mean()),
        v2v=float(errors.v2v[mask].mean()),
    )


def dataset_summaries(errors: SampleErrors) -> list[MetricSummary]:
    """Rows of one dataset: all samples, the 3DPW subsets (non-empty ones, for 3DPW
    datasets only), then every sequence in order of first appearance."""
    rows = [summarize(errors, np.ones(len(errors), dtype=bool), GROUP_ALL, "all")]
    seqs = errors.sequence
    if errors.dataset in GENDERED_DATASETS:  # the 3DPW family
        test = np.array([is_test_sequence(s) for s in seqs], dtype=bool)
        occ = np.array([is_occluded_sequence(s) for s in seqs], dtype=bool)
        for mask, name in ((test, SUBSET_TEST), (occ, SUBSET_OCCLUDED)):
            if mask.any():
                rows.append(summarize(errors, mask, GROUP_SUBSET, name))
    _, first = np.unique(seqs, return_index=True)
    for seq in seqs[np.sort(first)]:
        rows.append(summarize(errors, seqs == seq, GROUP_SEQUENCE, str(seq)))
    return rows


@dataclass
class EvalReport:
    """Results of ``pare-studio eval``: per-sample errors of each dataset plus run details.

    Attributes
    ----------
    results : {dataset name: SampleErrors}, in evaluation order.
    meta : run details written into the JSON (config, checkpoint, options).
    """

    results: dict[str, SampleErrors] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def summaries(self) -> list[MetricSummary]:
        """All summary rows: per dataset, its 'all' row, subsets, then sequences."""
        rows: list[MetricSummary] = []
        for errors in self.results.values():
            rows.extend(dataset_summaries(errors))
        return rows

    def row(self, dataset: str, name: str = "all") -> MetricSummary:
        """The summary row ``name`` ('all', '3DPW-Test', 'occluded' or a sequence) of a dataset."""
        for r in dataset_summaries(self.results[dataset]):
            if r.name == name:
                return r
        raise KeyError(f"{dataset}: no summary row {name!r}")

    def table(self, sequences: bool = False) -> str:
        """The results as an aligned text table (mm); per-sequence rows only when asked."""
        rows = [r for r in self.summaries() if sequences or r.group != GROUP_SEQUENCE]
        header = ("dataset", "subset", "samples", "MPJPE", "PA-MPJPE", "V2V")
        cells = [header]
        for r in rows:
            cells.append(
                (
                    r.dataset,
                    r.name,
                    str(r.n),
                    *("-" if math.isnan(v) else f"{v:.1f}" for v in (r.mpjpe, r.pampjpe, r.v2v)),
                )
            )
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        lines = []
        for k, c in enumerate(cells):
            left = [c[0].ljust(widths[0]), c[1].ljust(widths[1])]
            right = [c[i].rjust(widths[i]) for i in range(2, len(header))]
            lines.append("  ".join(left + right).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n(errors in mm; 3DPW-Test is the paper's 3DPW number)"

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document: units, meta, and per dataset overall / subsets / sequences."""
        datasets: dict[str, Any] = {}
        for name, errors in self.results.items():
            rows = dataset_summaries(errors)
            datasets[name] = {
                "gt_model": errors.gt_model,
                "overall": next(r.values() for r in rows if r.group == GROUP_ALL),
                "subsets": {r.name: r.values() for r in rows if r.group == GROUP_SUBSET},
                "sequences": {r.name: r.values() for r in rows if r.group == GROUP_SEQUENCE},
            }
        return {"units": "mm", "meta": self.meta, "datasets": datasets}

    def csv_text(self) -> str:
        """Every summary row as CSV: dataset, group, name, n, mpjpe_mm, pampjpe_mm, v2v_mm."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dataset", "group", "name", "n", "mpjpe_mm", "pampjpe_mm", "v2v_mm"])
        for r in self.summaries():
            w.writerow(
                [r.dataset, r.group, r.name, r.n]
                + ["" if math.isnan(v) else f"{v:.6f}" for v in (r.mpjpe, r.pampjpe, r.v2v)]
            )
        return buf.getvalue()

    def write(self, out_dir: str | os.PathLike[str], save_vertices: bool = False) -> list[Path]:
        """Write ``eval_results.json``, ``eval_results.csv`` and ``errors_<dataset>.npz``.

        Every file is first written to a temporary file in ``out_dir``; only when all of them
        are complete are they renamed into place, so an interrupted write leaves no partial
        result file behind. Returns the written paths.

        Raises :class:`OutputError` when the folder or a file cannot be written.
        """
        out = prepare_folder(out_dir)
        jobs: list[tuple[Path, Callable[[IO[bytes]], object]]] = [
            (
                out / RESULTS_JSON,
                lambda f: f.write(
                    (json.dumps(self.to_json_dict(), indent=2, allow_nan=False) + "\n").encode()
                ),
            ),
            (out / RESULTS_CSV, lambda f: f.write(self.csv_text().encode())),
        ]
        for name, errors in self.results.items():
            arrays = errors.to_npz_dict(with_vertices=save_vertices)
            jobs.append((out / errors_file_name(name), lambda f, a=arrays: np.savez(f, **a)))
        # every file is complete in its temp file before the first one is renamed into place
        with contextlib.ExitStack() as stack:
            for target, writer in jobs:
                writer(stack.enter_context(atomic_output(target)))
        return [target for target, _writer in jobs]
