"""Video input: video files (PyAV) and image folders as one frame-accurate :class:`FrameSource`.

``open_source(path)`` returns a source with an exact frame count, the frame rate, the frame size,
frame-accurate random access (``read(i)`` is exactly frame ``i`` of the presentation order) and
streaming iteration (``iter_frames``) that never holds the whole video in memory. For constant
frame-rate videos frame ``i`` is the reference's ``{i+1:06d}.png`` (``ffmpeg -i video %06d.png``);
for variable frame-rate videos ffmpeg's image2 output duplicates or drops frames to a constant
rate, we index the decoded frames as they are.

Video files
    Opened with PyAV. At open time the video stream's packets are demuxed once (no decoding; a few
    milliseconds per thousand frames) to build an index of presentation timestamps and keyframes, so
    the frame count is exact even when the container's count is missing (mkv, webm) or wrong. The
    first frame is decoded at open time, so a file that does not decode fails at once. A random
    read seeks to the keyframe at or before the wanted frame and decodes forward, matching
    timestamps; the decoder position is kept, so sequential reads never re-seek, and a small LRU
    cache of decoded frames makes scrubbing back and forth cheap. A display-rotation tag (phone
    videos) is applied as ffmpeg applies it by default (rotation only; flips are ignored).
    Streams whose packets lack timestamps, or repeat them, are read in decode order instead
    (correct, but a backward seek then decodes from the first frame).

Image folders
    Files ending in .png/.jpg/.jpeg/.bmp (any case), natural sort (``frame2.png`` before
    ``frame10.png``); other files, sub-folders and hidden files (``.DS_Store``, ``._frame1.png``)
    are ignored. Images are decoded lazily with OpenCV; an image that does not decode, or whose size
    differs from the first image's, raises :class:`VideoReadError` naming the file. ``fps`` is
    ``folder_fps`` (default 0.0 = unknown, as :class:`pare_studio.results.VideoResult` stores it);
    writers fall back to :data:`DEFAULT_FOLDER_FPS` (25, ffmpeg's default for image sequences,
    which is what the reference's result video gets).

Threads
    One source serialises its own calls with a lock, but its decoder position is shared: a GUI
    that scrubs while a pipeline worker streams the same file must open one source per thread
    (``open_source`` twice), or each would keep moving the other's decoder.
"""

from __future__ import annotations

import bisect
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from pare_studio.errors import VideoReadError

#: Image file suffixes read from an image folder (compared in lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: Video file suffixes offered by file dialogs. Any file FFmpeg can decode is accepted.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv")
#: Frame rate to write an image folder's overlay video with (ffmpeg's image2 default).
DEFAULT_FOLDER_FPS = 25.0
#: Default budget of the decoded-frame LRU cache of one source, bytes.
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs by value: ``frame2.png`` < ``frame10.png``.

    Case-insensitive; the name itself breaks ties so the order is total.
    """
    parts = re.split(r"(\d+)", name)
    key = tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))
    return (key, name)


class _FrameCache:
    """A small LRU of decoded frames, bounded in bytes (at least one frame is kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, i: int) -> np.ndarray | None:
        arr = self._items.get(i)
        if arr is not None:
            self._items.move_to_end(i)
        return arr

    def put(self, i: int, arr: np.ndarray) -> None:
        if self.max_bytes <= 0:
            return
        old = self._items.pop(i, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._items[i] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.nbytes

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


class FrameSource(ABC):
    """Frames of a video file or image folder, RGB uint8, frame-accurate.

    Attributes
    ----------
    path : the video file or image folder.
    fps : frames per second (float; 0.0 when unknown, e.g. an image folder without ``folder_fps``).
    size : (width, height) in pixels of every frame (after display rotation).
    """

    path: Path
    fps: float
    size: tuple[int, int]

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._cache = _FrameCache(cache_bytes)
        self._lock = threading.RLock()
        self._closed = False

    # -- public API ---------------------------------------------------------------------------

    @abstractmethod
    def __len__(self) -> int:
        """Exact number of frames."""

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` (0-based, presentation order), (H, W, 3) uint8 RGB, a fresh array.

        Raises
        ------
        IndexError
            ``i`` outside ``[-len, len)`` (negative indices count from the end).
        VideoReadError
            The frame cannot be decoded, or the source is closed.
        """
        with self._lock:
            i = self._check_index(i)
            hit = self._cache.get(i)
            if hit is not None:
                return hit.copy()
            arr = self._read_uncached(i)
            self._cache.put(i, arr)
            return arr.copy()

    def iter_frames(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Stream ``(index, frame)`` for frames ``start <= index < stop`` in order.

        Frames are (H, W, 3) uint8 RGB. One frame is decoded at a time (nothing else is kept), so
        memory does not grow with the video's length. ``stop=None`` means the end.
        """
        n = len(self)
        stop = n if stop is None else min(int(stop), n)
        start = max(int(start), 0)
        for i in range(start, stop):
            with self._lock:
                self._ensure_open()
                hit = self._cache.get(i)
                frame = hit.copy() if hit is not None else self._read_uncached(i)
            yield i, frame

    def close(self) -> None:
        """Release the file handle and the cache. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._cache.clear()
                self._close_impl()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        name = type(self).__name__
        return f"{name}({str(self.path)!r}, frames={len(self)}, size={w}x{h}, fps={self.fps:g})"

    # -- for subclasses -----------------------------------------------------------------------

    @abstractmethod
    def _read_uncached(self, i: int) -> np.ndarray:
        """Decode frame ``i`` (already range-checked) into a new (H, W, 3) uint8 RGB array."""

    def _close_impl(self) -> None:  # noqa: B027 (optional hook, nothing to release by default)
        """Release resources (subclasses)."""

    def _ensure_open(self) -> None:
        if self._closed:
            raise VideoReadError(f"{self.path} was closed; open it again to read frames.")

    def _check_index(self, i: int) -> int:
        self._ensure_open()
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range: {self.path} has {n} frames (0..{n - 1})")
        return i


# ---------------------------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` (not recursive) in natural order; see module docstring."""
    files = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    ]
    files.sort(key=lambda p: natural_sort_key(p.name))
    return files


def _decode_image(path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB (grey, 16-bit and alpha images are converted)."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise VideoReadError(f"Cannot read image {path}: {exc.strerror or exc}.") from exc
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise VideoReadError(
            f"Cannot decode image {path}: the file is empty, damaged or not a "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} image. Replace or remove it."
        )
    return np.ascontiguousarray(bgr[:, :, ::-1])


class ImageFolderSource(FrameSource):
    """The images of a folder as frames (natural sort). See the module docstring."""

    def __init__(self, folder: Path, *, fps: float = 0.0, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(cache_bytes)
        self.path = folder
        self.files = list_images(folder)
        if not self.files:
            raise VideoReadError(
                f"{folder} contains no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "point to a folder of frames or to a video file."
            )
        self.fps = float(fps)
        first = _decode_image(self.files[0])
        self.size = (int(first.shape[1]), int(first.shape[0]))
        self._cache.put(0, first)

    def __len__(self) -> int:
        return len(self.files)

    def _read_uncached(self, i: int) -> np.ndarray:
        path = self.files[i]
        img = _decode_image(path)
        if (img.shape[1], img.shape[0]) != self.size:
            raise VideoReadError(
                f"Image {path} is {img.shape[1]}x{img.shape[0]} but the folder's first image "
                f"{self.files[0].name} is {self.size[0]}x{self.size[1]}; all frames must have "
                "the same size."
            )
        return img


# ---------------------------------------------------------------------------------------------
# video files
# ---------------------------------------------------------------------------------------------


def _av_error_text(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().rstrip(".")


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV, frame-accurate. See the module docstring."""

    def __init__(self, path: Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        super().__init__(cache_bytes)
        import av

        self.path = path
        self._av = av
        try:
            self._container = av.open(str(path), mode="r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
            raise VideoReadError(
                f"Cannot open {path} as a video: {_av_error_text(exc)}. The file is damaged, "
                "truncated or not a video (supported: "
                f"{', '.join(VIDEO_EXTENSIONS)} and anything FFmpeg decodes)."
            ) from exc
        try:
            self._setup()
        except BaseException:
            self._container.close()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _setup(self) -> None:
        av = self._av
        if not self._container.streams.video:
            raise VideoReadError(
                f"{self.path} contains no video frames (no video stream: an empty recording, "
                "audio only, or not a video)."
            )
        self._stream = self._container.streams.video[0]
        self._time_base = self._stream.time_base
        try:
            self._build_index()
        except av.error.FFmpegError as exc:
            raise VideoReadError(
                f"Cannot read {self.path}: {_av_error_text(exc)}. The file is damaged or truncated."
            ) from exc
        if self._n == 0:
            raise VideoReadError(f"{self.path} contains no video frames.")
        self.fps = self._frame_rate()
        self._rot_k = 0
        self._frames: Iterator[Any] | None = None
        self._next = 0  # index of the frame the decoder yields next (when _frames is not None)
        self._pending: tuple[int, Any] | None = None
        # decode frame 0 now: a file that does not decode fails at open, and the display rotation
        # (and so the size) is known
        frame0 = self._decode_to(0, open_check=True)
        rot = getattr(frame0, "rotation", 0) or 0
        self._rot_k = int(round(rot / 90.0)) % 4
        arr = self._to_rgb(frame0)
        self.size = (int(arr.shape[1]), int(arr.shape[0]))
        self._cache.put(0, arr)

    def _build_index(self) -> None:
        """Demux the stream once: presentation timestamps and keyframes, in presentation order."""
        pts: list[int] = []
        keys: list[int] = []
        exact = True
        count = 0
        for packet in self._container.demux(self._stream):
            if packet.size == 0 or getattr(packet, "is_discard", False):
                continue
            count += 1
            if packet.pts is None:
                exact = False
                continue
            pts.append(int(packet.pts))
            if packet.is_keyframe:
                keys.append(int(packet.pts))
        if exact and len(set(pts)) != len(pts):
            exact = False
        self._n = count
        self._exact = exact
        if exact:
            pts.sort()
            self._pts = pts
            self._index_of_pts = {p: i for i, p in enumerate(pts)}
            key_idx = sorted({self._index_of_pts[p] for p in keys})
            if not key_idx or key_idx[0] != 0:
                key_idx = [0, *key_idx]
            self._key_idx = key_idx
        else:
            self._pts = []
            self._index_of_pts = {}
            self._key_idx = [0]

    def _frame_rate(self) -> float:
        s = self._stream
        for rate in (s.average_rate, s.guessed_rate, s.base_rate):
            if rate:
                value = float(rate)
                if value > 0:
                    return value
        if self._exact and self._n > 1 and self._time_base:
            span = (self._pts[-1] - self._pts[0]) * float(self._time_base)
            if span > 0:
                return (self._n - 1) / span
        return 0.0

    # -- public extras ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def codec(self) -> str:
        """Name of the video codec (e.g. ``'h264'``)."""
        return str(self._stream.codec_context.name)

    def timestamp(self, i: int) -> float:
        """Presentation time of frame ``i`` in seconds from the first frame (``i / fps`` when the
        stream has no usable timestamps)."""
        i = self._check_index(i)
        if self._exact and self._time_base:
            return float((self._pts[i] - self._pts[0]) * self._time_base)
        return i / self.fps if self.fps else 0.0

    # -- decoding -----------------------------------------------------------------------------

    def _close_impl(self) -> None:
        self._frames = None
        self._pending = None
        self._container.close()

    def _to_rgb(self, frame: Any) -> np.ndarray:
        arr = frame.to_ndarray(format="rgb24")
        if self._rot_k:
            arr = np.rot90(arr, self._rot_k)
        return np.ascontiguousarray(arr)

    def _read_uncached(self, i: int) -> np.ndarray:
        return self._to_rgb(self._decode_to(i))

    def _keyframe_before(self, i: int) -> int:
        return self._key_idx[bisect.bisect_right(self._key_idx, i) - 1]

    def _reopen(self) -> None:
        """Open the file again (a fresh demuxer and decoder at the first frame)."""
        av = self._av
        self._container.close()
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoReadError(f"Cannot reopen {self.path}: {_av_error_text(exc)}.") from exc
        self._stream = self._container.streams.video[0]

    def _restart(self, key_index: int | None) -> None:
        """Put the decoder at the keyframe with presentation index ``key_index``; None = reopen
        the file and start from its first frame (the fallback when seeking is unreliable)."""
        av = self._av
        self._pending = None
        self._frames = None
        if key_index is None or not self._exact:
            self._reopen()
            key_index = 0
        else:
            try:
                self._container.seek(
                    self._pts[key_index], stream=self._stream, backward=True, any_frame=False
                )
                flush = getattr(self._stream.codec_context, "flush_buffers", None)
                if flush is not None:
                    flush()
            except av.error.FFmpegError:
                self._reopen()
                key_index = 0
        self._frames = self._container.decode(self._stream)
        self._next = key_index

    def _next_frame(self) -> tuple[int, Any] | None:
        """The decoder's next (index, frame), or None at the end of the stream."""
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        if self._frames is None:
            return None
        try:
            frame = next(self._frames)
        except StopIteration:
            self._frames = None
            return None
        if self._exact:
            ts = frame.pts if frame.pts is not None else frame.dts
            idx = self._index_of_pts.get(ts) if ts is not None else None
            if idx is None:
                # a timestamp the demuxer did not list: place it at the nearest listed one
                idx = min(bisect.bisect_left(self._pts, ts if ts is not None else 0), self._n - 1)
        else:
            idx = self._next
        self._next = idx + 1
        return idx, frame

    def _can_continue(self, i: int, key: int) -> bool:
        """Whether decoding on from the current position reaches ``i`` no slower than a seek."""
        if self._pending is not None:
            pos = self._pending[0]
        elif self._frames is not None:
            pos = self._next
        else:
            return False
        return key <= pos <= i

    def _scan_to(self, i: int, *, after_seek: bool) -> tuple[str, Any]:
        """Decode forward to frame ``i``: ("found", frame), ("late", None) when the first frame
        after a seek is already past ``i``, ("missing", None) when ``i`` was skipped or the stream
        ended."""
        first = after_seek
        while True:
            item = self._next_frame()
            if item is None:
                return "missing", None
            idx, frame = item
            if idx == i:
                return "found", frame
            if idx > i:
                self._pending = item
                self._next = idx
                return ("late" if first else "missing"), None
            first = False

    def _decode_to(self, i: int, *, open_check: bool = False) -> Any:
        """The decoded ``av.VideoFrame`` of presentation index ``i``."""
        av = self._av
        key = self._keyframe_before(i)
        # keyframes to seek to, nearest first, then reopening the file (some demuxers, e.g.
        # MPEG-TS, seek only approximately and may land after the keyframe asked for)
        candidates: list[int | None] = [k for k in reversed(self._key_idx) if k <= key][:3]
        if self._exact:
            candidates.append(None)
        try:
            if self._can_continue(i, key):
                status, frame = self._scan_to(i, after_seek=False)
                if status == "found":
                    return frame
            for k in candidates:
                self._restart(k)
                status, frame = self._scan_to(i, after_seek=True)
                if status == "found":
                    return frame
        except av.error.FFmpegError as exc:
            self._frames = None
            self._pending = None
            raise VideoReadError(
                f"Cannot decode frame {i} of {self.path}: {_av_error_text(exc)}. "
                "The file is damaged or truncated."
            ) from exc
        self._frames = None
        self._pending = None
        what = "the first frame" if open_check else f"frame {i}"
        raise VideoReadError(
            f"Cannot decode {what} of {self.path} (the file lists {self._n} frames): "
            "it is damaged or truncated."
        )


# ---------------------------------------------------------------------------------------------


def open_source(
    path: str | Path,
    *,
    folder_fps: float = 0.0,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> FrameSource:
    """Open a video file or an image folder as a :class:`FrameSource`.

    Parameters
    ----------
    path : a video file (mp4/avi/mov/webm/mkv or anything FFmpeg decodes) or a folder of
        png/jpg/jpeg/bmp images.
    folder_fps : frame rate reported for an image folder (default 0.0 = unknown).
    cache_bytes : budget of the decoded-frame LRU cache (default 64 MiB; 0 disables it).

    Raises
    ------
    VideoReadError
        Missing path, unreadable/corrupt/truncated/zero-frame file, not a video, a folder
        without images.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise VideoReadError(f"{p} does not exist; give a video file or a folder of images.")
    if p.is_dir():
        try:
            return ImageFolderSource(p, fps=folder_fps, cache_bytes=cache_bytes)
        except PermissionError as exc:
            raise VideoReadError(f"Cannot list {p}: permission denied.") from exc
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        raise VideoReadError(
            f"{p} is a single image; give the folder that holds the frames, or a video file."
        )
    try:
        with open(p, "rb") as fh:
            head = fh.read(1)
    except OSError as exc:
        raise VideoReadError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    if not head:
        raise VideoReadError(f"{p} is empty (0 bytes); it is not a video.")
    return VideoFileSource(p, cache_bytes=cache_bytes)
