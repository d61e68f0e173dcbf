"""Plain-numpy result types shared by every layer (no torch, no Qt).

``PareOutput`` is what the predictor returns for a batch of crops; ``TrackResult`` and
``VideoResult`` are what the video pipeline returns, laid out exactly like the reference's
``pare_output.pkl`` (spec §5.6) through :meth:`VideoResult.to_reference_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

#: Reference key names of the predictor outputs, in the order ``pare-studio predict`` writes them.
PREDICT_KEYS = (
    "pred_pose",
    "pred_shape",
    "pred_cam",
    "pred_cam_t",
    "smpl_vertices",
    "smpl_joints3d",
    "smpl_joints2d",
    "pred_segm_mask",
)


@dataclass(frozen=True)
class PareOutput:
    """PARE outputs for N crops, float32 numpy arrays.

    Attributes
    ----------
    pred_pose : (N, 24, 3, 3) rotation matrices, index 0 = global orientation.
    pred_shape : (N, 10) SMPL betas.
    pred_cam : (N, 3) weak-perspective camera ``(s, tx, ty)`` in 224-crop space.
    pred_cam_t : (N, 3) perspective translation ``(tx, ty, 2*5000/(224*s + 1e-9))``, metres.
    smpl_vertices : (N, 6890, 3) posed mesh in the SMPL model frame, metres, no translation.
    smpl_joints3d : (N, 49, 3) the 49 PARE joints (25 OpenPose + 24 "GT" joints), metres.
    smpl_joints2d : (N, 49, 2) joints projected into the crop, normalised to [-1, 1]
        (x 112 + 112 = px).
    pred_segm_mask : (N, 25, 56, 56) part-segmentation logits; channel 0 is background.
    """

    pred_pose: np.ndarray
    pred_shape: np.ndarray
    pred_cam: np.ndarray
    pred_cam_t: np.ndarray
    smpl_vertices: np.ndarray
    smpl_joints3d: np.ndarray
    smpl_joints2d: np.ndarray
    pred_segm_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.pred_cam.shape[0])

    def to_reference_dict(self) -> dict[str, np.ndarray]:
        """The outputs under the reference's key names."""
        return {k: getattr(self, k) for k in PREDICT_KEYS}

    def attention_maps(self) -> np.ndarray:
        """PARE's 24 part-attention maps: spatial softmax of channels 1..24, (N, 24, 56, 56)."""
        logits = self.pred_segm_mask[:, 1:].astype(np.float64)
        n, j, h, w = logits.shape
        flat = logits.reshape(n, j, h * w)
        flat = np.exp(flat - flat.max(axis=2, keepdims=True))
        flat /= flat.sum(axis=2, keepdims=True)
        return flat.reshape(n, j, h, w).astype(np.float32)

    def __getitem__(self, index: Any) -> PareOutput:
        """Select crops (an int keeps the batch axis, as ``out[[i]]``)."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return PareOutput(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list[PareOutput]) -> PareOutput:
        """Join batches in order along the crop axis."""
        if not parts:
            raise ValueError("cannot concatenate an empty list of PareOutput")
        return PareOutput(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(PareOutput)
            }
        )


@dataclass
class TrackResult:
    """One tracked person over the frames where they were seen (n frames), reference layout.

    Attributes
    ----------
    track_id : int >= 1
    pred_cam : (n, 3) float32, crop-space weak-perspective camera (s, tx, ty).
    orig_cam : (n, 4) float64, original-image camera (sx, sy, tx, ty).
    verts : (n, 6890, 3) float32, metres.
    pose : (n, 24, 3, 3) float32 rotation matrices.
    betas : (n, 10) float32.
    joints3d : (n, 49, 3) float32, metres.
    joints2d : None (bbox tracking; the reference stores STAF keypoints here only in pose mode).
    smpl_joints2d : (n, 49, 2) float32, original-image pixels.
    bboxes : (n, 4) float64 ``[cx, cy, w, h]`` with ``w == h``, pixels.
    frame_ids : (n,) int64, 0-based frame indices.
    """

    track_id: int
    pred_cam: np.ndarray
    orig_cam: np.ndarray
    verts: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray | None
    smpl_joints2d: np.ndarray
    bboxes: np.ndarray
    frame_ids: np.ndarray

    #: Keys of one track's dict in ``pare_output.pkl``, in the reference's order.
    REFERENCE_KEYS = (
        "pred_cam",
        "orig_cam",
        "verts",
        "pose",
        "betas",
        "joints3d",
        "joints2d",
        "smpl_joints2d",
        "bboxes",
        "frame_ids",
    )

    def __len__(self) -> int:
        return int(self.frame_ids.shape[0])

    def index_of(self, frame: int) -> int | None:
        """Row of ``frame`` in this track's arrays, or None when the track is absent there."""
        i = int(np.searchsorted(self.frame_ids, frame))
        if i < len(self.frame_ids) and int(self.frame_ids[i]) == frame:
            return i
        return None

    def to_reference_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.REFERENCE_KEYS}

    @classmethod
    def from_reference_dict(cls, track_id: int, d: dict[str, Any]) -> TrackResult:
        return cls(track_id=int(track_id), **{k: d.get(k) for k in cls.REFERENCE_KEYS})


@dataclass
class VideoResult:
    """All tracks of one video plus the video's geometry.

    Attributes
    ----------
    tracks : {track_id: TrackResult}, ids >= 1, in ascending order.
    n_frames : number of frames of the source.
    width, height : frame size in pixels.
    fps : frames per second of the source (0 when unknown, e.g. an image folder).
    source : path of the video or image folder, '' when unknown.
    """

    tracks: dict[int, TrackResult] = field(default_factory=dict)
    n_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    source: str = ""

    def to_reference_dict(self) -> dict[int, dict[str, Any]]:
        """The ``pare_output.pkl`` payload: ``{track_id: {key: array}}``."""
        return {tid: self.tracks[tid].to_reference_dict() for tid in sorted(self.tracks)}

    def tracks_at(self, frame: int) -> list[tuple[TrackResult, int]]:
        """(track, row) of every track present at ``frame``."""
        out = []
        for tid in sorted(self.tracks):
            row = self.tracks[tid].index_of(frame)
            if row is not None:
                out.append((self.tracks[tid], row))
        return out


@dataclass(frozen=True)
class Progress:
    """One progress report of a pipeline generator.

    stage : short name, e.g. ``"detect"``, ``"track"``, ``"infer"``, ``"render"``.
    done, total : units of work finished / planned in this stage (frames or crops).
    track : a finished track, when this report announces one (the GUI shows it at once).
    """

    stage: str
    done: int
    total: int
    track: TrackResult | None = None
