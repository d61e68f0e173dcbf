"""BVH export of the SMPL skeleton (one track per file) and a small BVH parser.

File layout
    ``HIERARCHY``: the 24 SMPL joints under their SMPL names (``pelvis``, ``left_hip``, ...),
    depth first with children in ascending joint order. ``ROOT pelvis`` has ``OFFSET 0 0 0``
    and six channels ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``; its
    position channels hold the *absolute* world position of the pelvis (the convention of the
    CMU files and of Blender's importer, which both tools agree on only when the root offset is
    zero). Every other joint has ``OFFSET = J_k − J_parent(k)`` — the rest joints of the track's
    body shape (mean betas by default, :mod:`pare_studio.export.common`) — and three channels
    ``Zrotation Xrotation Yrotation``. The five leaves (feet, head, hands) end in an ``End Site``
    placed along the incoming bone, as far as the mesh the leaf's own joint carries reaches (half
    the bone's length when the joint carries none).

Rotations
    A joint's channel values ``(z, x, y)`` degrees mean the local rotation
    ``R = Rz(z)·Rx(x)·Ry(y)`` (channels compose in the order listed, as every BVH reader does).
    The rest pose has all joint frames aligned with the world, exactly like SMPL's, so ``R`` is
    SMPL's local rotation of that joint; the root's is the world orientation ``U·R_0``. Each
    angle is unwrapped over time (an Euler angle may change by 360° without changing the
    rotation), so players that interpolate between frames do not spin.

Units and frames
    Offsets and positions are in metres times ``scale`` (1 = metres, 100 = centimetres). The
    world is PARE Studio's export world (y up, camera at the origin looking down −z, see
    :mod:`pare_studio.export.common`). BVH has no gaps: frame 0 is the track's first video frame,
    frames the track misses are interpolated (slerp), and ``Frame Time = 1 / fps``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pare_studio.atomic import write_text_atomic
from pare_studio.core.constants import SMPL_JOINT_NAMES
from pare_studio.errors import ResultFileError
from pare_studio.export.common import (
    ExportOptions,
    PreparedTrack,
    fill_gaps,
    per_track_paths,
    prepare_track,
    select_tracks,
)
from pare_studio.export.rig import SmplRig
from pare_studio.results import VideoResult

ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
#: Euler order of the rotation channels for scipy (upper case = intrinsic: R = Rz·Rx·Ry).
EULER_ORDER = "ZXY"


def depth_first_order(parents: Sequence[int]) -> list[int]:
    """Joint ids depth first from the root, children in ascending order."""
    children: dict[int, list[int]] = {k: [] for k in range(len(parents))}
    roots = []
    for k, p in enumerate(parents):
        if p < 0:
            roots.append(k)
        else:
            children[int(p)].append(k)
    order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        k = stack.pop()
        order.append(k)
        stack.extend(reversed(children[k]))
    return order


def end_site_offsets(rig: SmplRig, betas: np.ndarray) -> dict[int, np.ndarray]:
    """``{leaf joint: (3,) offset}`` of the End Sites (module docstring), metres."""
    v = rig.shaped_vertices(betas)
    joints = rig.j_regressor @ v
    owner = rig.weights.argmax(axis=1)
    is_parent = np.zeros(len(rig.parents), bool)
    is_parent[rig.parents[rig.parents >= 0]] = True
    out = {}
    for k in np.flatnonzero(~is_parent):
        bone = joints[k] - joints[rig.parents[k]]
        length = float(np.linalg.norm(bone))
        d = bone / length if length > 0 else np.array([0.0, 1.0, 0.0])
        reach = (v[owner == k] - joints[k]) @ d
        far = float(reach.max()) if reach.size else 0.0
        out[int(k)] = d * (far if far > 1e-4 else 0.5 * length)
    return out


def euler_channels(rotations: np.ndarray) -> np.ndarray:
    """(n, J, 3) degrees ``(z, x, y)`` with ``R = Rz·Rx·Ry``, unwrapped along the frames."""
    from scipy.spatial.transform import Rotation

    n, j = rotations.shape[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: still the same rotation
        eul = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    return np.unwrap(eul.reshape(n, j, 3), period=360.0, axis=0)


def bvh_text(prepared: PreparedTrack, rig: SmplRig, scale: float = 1.0) -> str:
    """The BVH file of one prepared, gap-free track (module docstring).

    Parameters
    ----------
    prepared : from :func:`~pare_studio.export.common.prepare_track` then
        :func:`~pare_studio.export.common.fill_gaps`.
    rig : the SMPL rig (for the End Sites).
    scale : units per metre (1 = metres, 100 = centimetres).
    """
    if not (scale > 0 and np.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale}")
    frames = prepared.frame_ids
    if len(frames) and np.any(np.diff(frames) != 1):
        raise ValueError("bvh_text needs a track without gaps (use fill_gaps first)")
    parents = [int(p) for p in rig.parents]
    order = depth_first_order(parents)
    offsets = prepared.rest_joints.copy()
    offsets[1:] -= prepared.rest_joints[parents[1:]]
    offsets[0] = 0.0
    ends = end_site_offsets(rig, prepared.betas)
    children = {k: [c for c in order if parents[c] == k] for k in order}

    def fmt3(v: np.ndarray) -> str:
        return " ".join(f"{float(x) * scale:.6f}" for x in v)

    lines = ["HIERARCHY"]

    def emit(k: int, depth: int) -> None:
        pad = "\t" * depth
        head = "ROOT" if parents[k] < 0 else "JOINT"
        chans = ROOT_CHANNELS if parents[k] < 0 else JOINT_CHANNELS
        lines.append(f"{pad}{head} {SMPL_JOINT_NAMES[k]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {fmt3(offsets[k])}")
        lines.append(f"{pad}\tCHANNELS {len(chans)} {' '.join(chans)}")
        for c in children[k]:
            emit(c, depth + 1)
        if not children[k]:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {fmt3(ends.get(k, np.zeros(3)))}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(order[0], 0)
    eul = euler_channels(prepared.rotations)  # (n, 24, 3)
    cols = [prepared.root_positions * scale, eul[:, order[0]]]
    cols += [eul[:, k] for k in order[1:]]
    motion = np.concatenate(cols, axis=1)
    lines.append("MOTION")
    lines.append(f"Frames: {len(frames)}")
    lines.append(f"Frame Time: {1.0 / prepared.fps:.8f}")
    row_fmt = " ".join(["%.6f"] * motion.shape[1])
    lines.extend(row_fmt % tuple(row) for row in motion)
    return "\n".join(lines) + "\n"


def write_bvh(
    path: str | os.PathLike[str], prepared: PreparedTrack, rig: SmplRig, scale: float = 1.0
) -> Path:
    """Write one track's BVH atomically (gaps are filled here). Returns the path."""
    return write_text_atomic(path, bvh_text(fill_gaps(prepared), rig, scale))


def export_bvh(
    result: VideoResult,
    out: str | os.PathLike[str],
    rig: SmplRig,
    options: ExportOptions | None = None,
    track_ids: Sequence[int] | None = None,
    scale: float = 1.0,
) -> list[Path]:
    """One BVH per track (``out`` for one track, ``<stem>_track<id>.bvh`` for several).

    Parameters
    ----------
    result : the (edited) tracks; ``fps`` / ``width`` / ``height`` are used when set.
    out : output file. rig : the SMPL rig. options : :class:`ExportOptions`.
    track_ids : tracks to write (None = all). scale : units per metre.

    Returns
    -------
    The written paths, in track order.
    """
    options = options or ExportOptions()
    tracks = select_tracks(result, track_ids)
    fps = options.resolve_fps(result)
    camera = options.camera(result)
    paths = per_track_paths(out, [t.track_id for t in tracks])
    written = []
    for track in tracks:
        prepared = prepare_track(track, rig, options, fps, camera)
        written.append(write_bvh(paths[track.track_id], prepared, rig, scale))
    return written


# --------------------------------------------------------------------------------------------
# Parser


@dataclass
class BvhData:
    """A parsed BVH file.

    Attributes
    ----------
    names : joint names in file (depth-first) order.
    parents : parent index of each joint in that order (-1 for the root).
    offsets : (J, 3) OFFSET of each joint, file units.
    channels : the channel names of each joint.
    end_sites : ``{joint index: (3,) End Site offset}``.
    frame_time : seconds per frame.
    motion : (n_frames, total channels) float64 values as written.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)
    frame_time: float = 0.0
    motion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def _columns(self) -> list[int]:
        starts, c = [], 0
        for ch in self.channels:
            starts.append(c)
            c += len(ch)
        return starts

    def channel_values(self, joint: int) -> dict[str, np.ndarray]:
        """``{channel name: (n_frames,) values}`` of one joint."""
        start = self._columns()[joint]
        return {name: self.motion[:, start + i] for i, name in enumerate(self.channels[joint])}

    def local_rotations(self) -> np.ndarray:
        """(n_frames, J, 3, 3) local rotations: the rotation channels composed in file order."""
        n = self.motion.shape[0]
        out = np.tile(np.eye(3), (n, len(self.names), 1, 1))
        for j in range(len(self.names)):
            for name, values in self.channel_values(j).items():
                if name.endswith("rotation"):
                    out[:, j] = out[:, j] @ axis_rotation(name[0], values)
        return out

    def root_positions(self) -> np.ndarray:
        """(n_frames, 3) the root's position channels (zeros for a missing axis)."""
        values = self.channel_values(self.parents.index(-1))
        n = self.motion.shape[0]
        return np.stack([values.get(f"{a}position", np.zeros(n)) for a in "XYZ"], axis=1)


def axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations by ``degrees`` (n,) about the axis "X", "Y" or "Z" (right-handed)."""
    a = np.radians(np.asarray(degrees, np.float64))
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    i = "XYZ".index(axis.upper())
    j, k = (i + 1) % 3, (i + 2) % 3
    out[:, i, i] = 1.0
    out[:, j, j] = c
    out[:, k, k] = c
    out[:, j, k] = -s
    out[:, k, j] = s
    return out


def parse_bvh(text: str, label: str = "BVH") -> BvhData:
    """Parse BVH text (module docstring's subset: one ROOT, rotation/position channels).

    Raises
    ------
    ResultFileError
        The text is not a BVH file of that kind (the message says where it went wrong).
    """
    tokens = text.split()
    pos = 0

    def fail(msg: str) -> ResultFileError:
        return ResultFileError(f"{label} is not a readable BVH file: {msg} (token {pos})")

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("unexpected end of file")
        tok = tokens[pos]
        pos += 1
        return tok

    def expect(word: str) -> None:
        tok = take()
        if tok != word:
            raise fail(f"expected {word!r}, found {tok!r}")

    def number() -> float:
        tok = take()
        try:
            return float(tok)
        except ValueError:
            raise fail(f"expected a number, found {tok!r}") from None

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    ends: dict[int, np.ndarray] = {}

    def joint(parent: int) -> None:
        idx = len(names)
        names.append(take())
        parents.append(parent)
        expect("{")
        expect("OFFSET")
        offsets.append([number(), number(), number()])
        expect("CHANNELS")
        count = number()
        if count != int(count) or not 0 <= count <= 6:
            raise fail(f"bad channel count {count}")
        chans = [take() for _ in range(int(count))]
        valid = {f"{a}{k}" for a in "XYZ" for k in ("rotation", "position")}
        if any(c not in valid for c in chans):
            raise fail(f"unknown channel in {chans}")
        channels.append(chans)
        while True:
            tok = take()
            if tok == "}":
                return
            if tok == "JOINT":
                joint(idx)
            elif tok == "End":
                expect("Site")
                expect("{")
                expect("OFFSET")
                ends[idx] = np.array([number(), number(), number()])
                expect("}")
            else:
                raise fail(f"unexpected {tok!r} in joint {names[idx]!r}")

    expect("HIERARCHY")
    expect("ROOT")
    try:
        joint(-1)
    except RecursionError:
        raise fail("the joint hierarchy is nested too deeply") from None
    expect("MOTION")
    expect("Frames:")
    n_frames = number()
    expect("Frame")
    expect("Time:")
    frame_time = number()
    n_chan = sum(len(c) for c in channels)
    rest = tokens[pos:]
    if n_frames != int(n_frames) or n_frames < 0 or len(rest) != int(n_frames) * n_chan:
        raise ResultFileError(
            f"{label}: MOTION says {n_frames:g} frames of {n_chan} channels but holds "
            f"{len(rest)} values"
        )
    try:
        motion = np.array(rest, dtype=np.float64).reshape(int(n_frames), n_chan)
    except ValueError as exc:
        raise ResultFileError(f"{label}: MOTION holds a value that is not a number") from exc
    return BvhData(
        names=names,
        parents=parents,
        offsets=np.array(offsets, np.float64),
        channels=channels,
        end_sites=ends,
        frame_time=float(frame_time),
        motion=motion,
    )


def read_bvh(path: str | os.PathLike[str]) -> BvhData:
    """Parse a BVH file (:func:`parse_bvh`); ``ResultFileError`` when unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"cannot read {path}: {exc}") from exc
    return parse_bvh(text, str(path))
