"""H.264 writer: frames round-trip, odd sizes, atomic publish, clean abort, unwritable folders."""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np
import pytest

from pare_studio.errors import OutputError
from pare_studio.render.video_writer import VideoWriter


def frames(n: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """Frame i: grey level 10 + 20·i over the whole image, a white square at column 4·i."""
    out = []
    for i in range(n):
        img = np.full((height, width, 3), 10 + 20 * i, np.uint8)
        img[20:36, 4 * i : 4 * i + 16] = 255
        out.append(img)
    return out


def decode_all(path: Path) -> tuple[list[np.ndarray], str, float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        imgs = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return imgs, s.codec_context.name, float(s.average_rate)


def only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_round_trip(tmp_path: Path) -> None:
    src = frames(12)
    out = tmp_path / "result.mp4"
    with VideoWriter(out, fps=24) as w:
        for f in src:
            w.write(f)
    assert w.frames_written == 12 and w.size == (96, 64)
    assert only_file(tmp_path) == ["result.mp4"]  # the temp file was renamed, nothing left over
    imgs, codec, fps = decode_all(out)
    assert codec == "h264" and fps == pytest.approx(24.0)
    assert len(imgs) == 12
    for a, b in zip(imgs, src, strict=True):
        assert a.shape == b.shape
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_keyframes_every_two_seconds(tmp_path: Path) -> None:
    out = tmp_path / "gop.mp4"
    with VideoWriter(out, fps=5) as w:
        for f in frames(12):
            w.write(f)
    with av.open(str(out)) as c:
        packets = [(p.pts, p.is_keyframe) for p in c.demux(c.streams.video[0]) if p.size]
    order = sorted(pts for pts, _ in packets)
    keys = {order.index(pts) for pts, key in packets if key}
    assert {0, 10} <= keys  # 2 s at 5 fps (x264's default interval would be 250 frames)


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    src = frames(3, width=95, height=63)
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=25) as w:
        for f in src:
            w.write(f)
    imgs, _, _ = decode_all(out)
    assert len(imgs) == 3 and imgs[0].shape == (64, 96, 3)
    assert np.abs(imgs[1][:63, :95].astype(int) - src[1].astype(int)).mean() < 4


def test_ntsc_rate(tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mp4"
    with VideoWriter(out, fps=30000 / 1001) as w:
        for f in frames(4):
            w.write(f)
    _, _, fps = decode_all(out)
    assert fps == pytest.approx(30000 / 1001, abs=1e-4)


def test_error_midway_removes_the_partial_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "result.mp4"
    out.write_bytes(b"previous good video")
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, fps=25) as w:
        for i, f in enumerate(frames(6)):
            if i == 3:
                raise RuntimeError("boom")
            w.write(f)
    assert out.read_bytes() == b"previous good video"
    assert only_file(tmp_path) == ["result.mp4"]


def test_abort_and_wrong_frame_size(tmp_path: Path) -> None:
    out = tmp_path / "cancelled.mp4"
    w = VideoWriter(out, fps=25)
    w.write(frames(1)[0])
    w.abort()
    assert only_file(tmp_path) == []
    w2 = VideoWriter(out, fps=25)
    w2.write(frames(1)[0])
    with pytest.raises(ValueError, match="96x64"):
        w2.write(frames(1, width=64)[0])
    assert only_file(tmp_path) == []  # a failed write aborts


def test_no_frames_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "empty.mp4"
    with pytest.raises(OutputError, match="No frames"):
        VideoWriter(out, fps=25).close()
    assert only_file(tmp_path) == []


def test_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(OutputError, match="not_a_folder"):
        VideoWriter(blocker / "out.mp4", fps=25)
    with pytest.raises(OutputError, match="folder"):
        VideoWriter(tmp_path, fps=25)  # the target is a folder

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    # a read-only folder (as root, chmod does not stop writes: simulate the OS refusing)
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied"):
        VideoWriter(tmp_path / "ro" / "out.mp4", fps=25)


def test_missing_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "v.mp4"
    with VideoWriter(out, fps=10) as w:
        w.write(frames(1)[0])
    assert out.is_file()


def test_bad_fps() -> None:
    with pytest.raises(ValueError, match="fps"):
        VideoWriter("x.mp4", fps=0)
