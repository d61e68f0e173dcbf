"""Video input: frame-accurate seeking, counts, image folders, and clear errors on bad input."""

from __future__ import annotations

import random
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pare_studio.errors import VideoReadError
from pare_studio.pipeline import video as video_mod
from pare_studio.pipeline.video import natural_sort_key, open_source

W, H, N, GOP = 160, 96, 60, 12
BITS = 6  # 60 frames fit in 6 bits


def frame_image(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame ``i``: the index as 6 black/white bars in the lower 3/4, a red block top-left."""
    img = np.zeros((height, width, 3), np.uint8)
    bar = width // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            img[height // 4 :, b * bar : (b + 1) * bar] = 255
    img[: height // 4, : width // 4] = (255, 0, 0)
    return img


def decode_index(img: np.ndarray) -> int:
    height, width = img.shape[:2]
    bar = width // BITS
    lower = img[height // 4 + 4 :, :, :].astype(np.float64)
    return sum(
        1 << b for b in range(BITS) if lower[:, b * bar + 3 : (b + 1) * bar - 3].mean() > 127
    )


def make_video(
    path: Path,
    codec: str = "libx264",
    n: int = N,
    rate: Fraction | int = 25,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    with av.open(str(path), "w", format=container_format) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.gop_size = GOP
        if options:
            s.options = options
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_image(i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


# x264 with B-frames and a fixed GOP (no scene-cut keyframes): presentation order != decode order
X264 = {"x264-params": "scenecut=0:bframes=3"}
FORMATS = {
    "mp4": ("libx264", X264),
    "mkv": ("libx264", X264),  # the container stores no frame count
    "mov": ("libx264", X264),
    "avi": ("mpeg4", None),
    "webm": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        ext: make_video(d / f"clip.{ext}", codec, options=opts)
        for ext, (codec, opts) in FORMATS.items()
    }


@pytest.mark.parametrize("ext", list(FORMATS))
def test_random_access_is_frame_accurate(videos: dict[str, Path], ext: str) -> None:
    order = list(range(N)) * 2
    random.Random(ext).shuffle(order)
    with open_source(videos[ext], cache_bytes=0) as src:
        assert len(src) == N
        assert src.size == (W, H)
        assert src.fps == pytest.approx(25.0)
        got = [decode_index(src.read(i)) for i in order]
    assert got == order


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("clip.ts", "mpegts"),  # seeks land only approximately (after the keyframe asked for)
        ("clip.h264", "h264"),  # a raw stream: packets carry no timestamps at all
    ],
)
def test_random_access_without_reliable_seeking(tmp_path: Path, name: str, fmt: str) -> None:
    path = make_video(tmp_path / name, options=X264, container_format=fmt)
    order = list(range(N))
    random.Random(fmt).shuffle(order)
    with open_source(path, cache_bytes=0) as src:
        assert len(src) == N
        assert [decode_index(src.read(i)) for i in order[:20]] == order[:20]
        assert [decode_index(f) for _, f in src.iter_frames(40)] == list(range(40, N))


def test_count_is_exact_when_the_container_has_none(videos: dict[str, Path]) -> None:
    with av.open(str(videos["mkv"])) as c:
        assert c.streams.video[0].frames == 0  # mkv does not store it
    with open_source(videos["mkv"]) as src:
        assert len(src) == N
        assert decode_index(src.read(N - 1)) == N - 1


def test_frames_are_rgb_uint8(videos: dict[str, Path]) -> None:
    with open_source(videos["mp4"]) as src:
        img = src.read(7)
    assert img.dtype == np.uint8 and img.shape == (H, W, 3) and img.flags.c_contiguous
    r, g, b = img[5:15, 5:30].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def test_sequential_reads_do_not_reseek(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = video_mod.VideoFileSource._restart

    def counting(self, key_index: int) -> None:  # type: ignore[no-untyped-def]
        calls.append(key_index)
        original(self, key_index)

    monkeypatch.setattr(video_mod.VideoFileSource, "_restart", counting)
    with open_source(videos["mp4"], cache_bytes=0) as src:
        calls.clear()
        assert [decode_index(f) for _, f in src.iter_frames()] == list(range(N))
        assert len(calls) <= 1
        calls.clear()
        for i in range(20, 40):
            assert decode_index(src.read(i)) == i
        assert len(calls) == 1  # one seek to frame 20's keyframe, then straight decoding
        calls.clear()
        assert decode_index(src.read(5)) == 5  # backwards: needs a seek
        assert len(calls) == 1


def test_lru_cache_serves_scrubbing_and_returns_copies(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_source(videos["mp4"]) as src:
        a = src.read(30)
        src.read(45)
        calls: list[int] = []
        monkeypatch.setattr(src, "_read_uncached", lambda i: calls.append(i) or np.zeros(1))
        b = src.read(30)
        src.read(45)
        assert calls == []
        np.testing.assert_array_equal(a, b)
        b[:] = 0  # the caller's array is theirs: the cache is not affected
        assert decode_index(src.read(30)) == 30


def test_iter_frames_range_and_negative_index(videos: dict[str, Path]) -> None:
    with open_source(videos["mkv"]) as src:
        got = [(i, decode_index(f)) for i, f in src.iter_frames(50, 70)]
        assert got == [(i, i) for i in range(50, N)]
        assert decode_index(src.read(-1)) == N - 1
        with pytest.raises(IndexError):
            src.read(N)


def test_ntsc_frame_rate(tmp_path: Path) -> None:
    path = make_video(tmp_path / "ntsc.mp4", n=8, rate=Fraction(30000, 1001), options=X264)
    with open_source(path) as src:
        assert src.fps == pytest.approx(29.97, abs=1e-3)
        assert len(src) == 8
        assert src.timestamp(3) == pytest.approx(3 * 1001 / 30000, abs=1e-3)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    path = make_video(tmp_path / "phone.mp4", n=4, rotation=90, options=X264)
    with open_source(path) as src:
        assert src.size == (H, W)
        img = src.read(2)
    assert img.shape == (W, H, 3)
    # a 90° counter-clockwise turn moves the top-left red block to the bottom-left
    np.testing.assert_allclose(img.astype(int), np.rot90(frame_image(2)).astype(int), atol=40)


def test_two_sources_on_one_file_in_two_threads(videos: dict[str, Path]) -> None:
    errors: list[str] = []

    def worker(seed: int) -> None:
        order = list(range(N))
        random.Random(seed).shuffle(order)
        with open_source(videos["mp4"]) as src:
            for i in order[:25]:
                if decode_index(src.read(i)) != i:
                    errors.append(f"thread {seed}: frame {i}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_closed_source_refuses_reads(videos: dict[str, Path]) -> None:
    src = open_source(videos["mp4"])
    src.close()
    src.close()
    with pytest.raises(VideoReadError, match="closed"):
        src.read(3)


# -- bad input ------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="does not exist"):
        open_source(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoReadError, match="not a video"):
        open_source(text)
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="noise.avi"):
        open_source(noise)
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        open_source(empty)


def test_truncated_mp4(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: it is gone
    with pytest.raises(VideoReadError, match="cut.mp4"):
        open_source(cut)


def test_truncated_mkv_reads_the_frames_that_are_there(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    data = videos["mkv"].read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut) as src:
        n = len(src)
        assert 0 < n < N
        streamed = [decode_index(f) for _, f in src.iter_frames()]
        # every listed frame decodes, in presentation order (B-frames whose packets were cut off
        # are missing, so the indices may skip), and random reads agree with streaming
        assert len(streamed) == n
        assert streamed == sorted(set(streamed)) and streamed[0] == 0
        for i in random.Random(1).sample(range(n), 10):
            assert decode_index(src.read(i)) == streamed[i]


def test_corrupt_payload(videos: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(videos["mp4"].read_bytes())
    start = data.find(b"mdat") + 4
    data[start : start + 3000] = bytes(3000)  # the first frames' bitstream zeroed
    bad = tmp_path / "zeroed.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoReadError, match="zeroed.mp4"):
        open_source(bad)


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_zero_frame_video(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"zero.{ext}"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    assert path.stat().st_size > 0
    with pytest.raises(VideoReadError, match=f"zero.{ext}"):
        open_source(path)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 44100
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    with pytest.raises(VideoReadError, match="no video"):
        open_source(path)


# -- image folders --------------------------------------------------------------------------


def _write_png(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def test_natural_sort_key() -> None:
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame_b.png", "frame1a.png", "img.png"]
    assert sorted(names, key=natural_sort_key) == [
        "Frame1.png", "frame1a.png", "frame2.png", "frame10.png", "frame_b.png", "img.png",
    ]  # fmt: skip


def test_image_folder_natural_order_and_junk_ignored(tmp_path: Path) -> None:
    order = [0, 1, 2, 9, 10, 11]  # written as frame0 .. frame11 with mixed extensions/case
    for i in order:
        ext = {0: ".png", 1: ".PNG", 2: ".bmp", 9: ".png", 10: ".png", 11: ".png"}[i]
        if i == 11:
            cv2.imwrite(
                str(tmp_path / f"frame{i}.jpg"),
                frame_image(i)[:, :, ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
        else:
            _write_png(tmp_path / f"frame{i}{ext}", frame_image(i))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0\1\2")
    (tmp_path / "._frame1.png").write_bytes(b"AppleDouble junk, not a png")
    (tmp_path / "sub").mkdir()
    _write_png(tmp_path / "sub" / "frame5.png", frame_image(5))
    with open_source(tmp_path, folder_fps=12.5) as src:
        assert len(src) == len(order)
        assert src.size == (W, H)
        assert src.fps == 12.5
        assert [p.name for p in src.files][:5] == [
            "frame0.png", "frame1.PNG", "frame2.bmp", "frame9.png", "frame10.png",
        ]  # fmt: skip
        assert [decode_index(f) for _, f in src.iter_frames()] == order
        assert decode_index(src.read(4)) == 10
        r, g, b = src.read(3)[5:15, 5:30].reshape(-1, 3).mean(axis=0)
        assert r > 200 and g < 40 and b < 40  # RGB, not BGR
    with open_source(tmp_path) as src:
        assert src.fps == 0.0  # unknown unless given


def test_image_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(VideoReadError, match="no images"):
        open_source(tmp_path)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    for i in range(3):
        _write_png(tmp_path / f"{i:06d}.png", frame_image(i))
    (tmp_path / "000003.png").write_bytes(b"\x89PNG but not really")
    with open_source(tmp_path) as src:
        assert len(src) == 4
        assert decode_index(src.read(2)) == 2
        with pytest.raises(VideoReadError, match="000003.png"):
            src.read(3)


def test_image_of_another_size_is_named(tmp_path: Path) -> None:
    _write_png(tmp_path / "a1.png", frame_image(1))
    _write_png(tmp_path / "a2.png", frame_image(2, width=W + 2))
    with open_source(tmp_path) as src, pytest.raises(VideoReadError, match="a2.png"):
        src.read(1)


def test_grey_image_becomes_rgb(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "g.png"), np.full((10, 12), 77, np.uint8))
    with open_source(tmp_path) as src:
        img = src.read(0)
    assert img.shape == (10, 12, 3) and (img == 77).all()


def test_single_image_file_is_refused(tmp_path: Path) -> None:
    _write_png(tmp_path / "one.png", frame_image(0))
    with pytest.raises(VideoReadError, match="folder"):
        open_source(tmp_path / "one.png")
