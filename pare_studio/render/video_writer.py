"""H.264 mp4 writing with PyAV (libx264), atomically: a temp file in the target folder, renamed.

The reference writes its result video with ``ffmpeg -c:v libx264 -pix_fmt yuv420p`` (spec §5.8);
OpenCV's wheels cannot write H.264, PyAV carries libx264. Until :meth:`VideoWriter.close` succeeds
the frames go to ``.<name>.<random>.tmp`` next to the target; an error, a cancel or
:meth:`VideoWriter.abort` removes that file and leaves an existing output untouched.

yuv420p needs even dimensions: frames with an odd width or height are padded by one pixel
(the last row / column repeated), so the video is ``ceil2(W) x ceil2(H)``.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from pare_studio.atomic import discard, publish, temp_beside
from pare_studio.errors import OutputError

#: x264 settings: visually lossless enough for overlays, fast on a laptop CPU.
DEFAULT_CRF = 20
DEFAULT_PRESET = "veryfast"
#: Keyframe interval of written videos, seconds.
KEYFRAME_SECONDS = 2.0


def _rate(fps: float) -> Fraction:
    """fps as the exact NTSC-style fraction when it is one (29.97 -> 30000/1001)."""
    return Fraction(float(fps)).limit_denominator(1001)


def even_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded up to even numbers (what yuv420p needs)."""
    return width + (width & 1), height + (height & 1)


class VideoWriter:
    """Write RGB frames to an H.264 (libx264, yuv420p) mp4 file, atomically.

    Parameters
    ----------
    path : the mp4 to create (replaced on :meth:`close` if it exists).
    fps : frames per second (> 0).
    crf, preset : x264 quality (lower crf = better) and speed preset.

    The frame size is taken from the first frame; every frame must have it.
    Use as a context manager: a normal exit closes (publishes) the file, an exception aborts it.

    Raises
    ------
    OutputError
        The folder cannot be created or written, or the path is a folder.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        *,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
    ) -> None:
        import av

        self._av = av
        self.path = Path(path)
        if not fps or fps <= 0 or not np.isfinite(fps):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = str(preset)
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) as written (even)
        self._stream = None
        self._done = False
        self._tmp = temp_beside(self.path)
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
        except Exception as exc:
            self._remove_tmp()
            raise OutputError(f"Cannot create {self.path}: {exc}") from exc

    def _open_stream(self, width: int, height: int) -> None:
        stream = self._container.add_stream("libx264", rate=_rate(self.fps))
        stream.width, stream.height = even_size(width, height)
        stream.pix_fmt = "yuv420p"
        # a keyframe every ~2 s (x264's default is 250 frames): cheap frame-accurate scrubbing
        stream.gop_size = max(1, round(KEYFRAME_SECONDS * self.fps))
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        self._frame_shape = (height, width, 3)
        self.size = (stream.width, stream.height)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame, (H, W, 3) uint8 RGB."""
        if self._done:
            raise OutputError(f"{self.path}: the writer is already closed.")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        try:
            if self._stream is None:
                self._open_stream(frame.shape[1], frame.shape[0])
            if frame.shape != self._frame_shape:
                raise ValueError(
                    f"frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]} but the "
                    f"video is {self._frame_shape[1]}x{self._frame_shape[0]}"
                )
            h, w = frame.shape[:2]
            if (w, h) != self.size:
                frame = np.pad(
                    frame, ((0, self.size[1] - h), (0, self.size[0] - w), (0, 0)), mode="edge"
                )
            vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = self.frames_written
            vf.time_base = Fraction(1) / _rate(self.fps)
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except ValueError:
            self.abort()
            raise
        except self._av.error.FFmpegError as exc:
            self.abort()
            raise OutputError(
                f"Cannot encode frame {self.frames_written} of {self.path}: {exc}"
            ) from exc
        except OSError as exc:
            self.abort()
            raise OutputError(f"Cannot write {self.path}: {exc.strerror or exc}") from exc
        self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it into place. Returns the path.

        With no frame written, nothing is published (OutputError).
        """
        if self._done:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"No frames were written; {self.path} was not created.")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except (self._av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"Cannot finish {self.path}: {exc}") from exc
        self._done = True
        return publish(self._tmp, self.path)  # removes the temp file if it fails

    def abort(self) -> None:
        """Drop everything written so far; an existing output file is left as it was."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._container.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        discard(self._tmp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
