"""PARE Studio's exception types.

Every error a user can cause (a wrong file, a missing asset, a cancelled run) is one of these,
with a message that says what is wrong and what to do. The CLI prints the message and exits
with ``exit_code``; the window shows it in a dialog. A traceback is never the only explanation.
"""

from __future__ import annotations


class PareStudioError(Exception):
    """Base class of every error PARE Studio raises on purpose."""

    exit_code: int = 1


class ConfigError(PareStudioError):
    """A PARE yaml configuration that cannot be read or asks for an unsupported network."""

    exit_code = 2


class CheckpointError(PareStudioError):
    """A checkpoint file that is missing, truncated, unsafe or of another architecture."""

    exit_code = 3


class SmplModelError(PareStudioError):
    """A missing or malformed SMPL model file, joint regressor or mean-parameter file."""

    exit_code = 4


class AssetError(PareStudioError):
    """A missing or damaged asset in the asset store (PARE data, YOLO weights, SMPL)."""

    exit_code = 4


class VideoReadError(PareStudioError):
    """A video or image folder that cannot be opened or decoded."""

    exit_code = 5


class NoPersonFound(PareStudioError):
    """Detection and tracking found nobody to run PARE on."""

    exit_code = 6


class DetectorError(PareStudioError):
    """Detector weights missing or malformed, or a boxes file that cannot be parsed."""

    exit_code = 7


class OutputError(PareStudioError):
    """An output file or folder that cannot be written."""

    exit_code = 8


class UnsafePickleError(PareStudioError):
    """A pickle that references code we do not allow to run (a pickle from a stranger)."""

    exit_code = 9


class ResultFileError(PareStudioError):
    """A results file (pare_output.pkl, project file) with the wrong layout."""

    exit_code = 9


class DatasetError(PareStudioError):
    """An evaluation dataset with a missing file, key or image."""

    exit_code = 10


class Cancelled(PareStudioError):
    """The user cancelled a run. Nothing partial was written."""

    exit_code = 130


class InputArrayError(PareStudioError, ValueError):
    """Input arrays (or the file holding them, e.g. a crops ``.npz``) with a missing key or the
    wrong shape, dtype or values. Also a ``ValueError`` so library callers can catch it as one."""

    exit_code = 11


class RenderError(PareStudioError):
    """The overlay renderer cannot start (no usable OpenGL: EGL/Mesa missing) or failed mid-video.
    Results already written (pare_output.pkl) are kept."""

    exit_code = 12


class ArchiveError(AssetError):
    """A data archive (PARE's ``pare-github-data.zip``) that is truncated, corrupted or not the
    expected archive. Nothing of it was installed."""

    exit_code = 4


class TrackEditError(PareStudioError, ValueError):
    """A track edit that cannot be applied (merging tracks that share frames, splitting at a
    frame outside the track, an unknown track id). Nothing was changed. Also a ``ValueError``."""

    exit_code = 13
