"""PARE Studio: run and inspect PARE 3D human mesh recovery on video.

This module imports nothing heavy: torch, OpenCV and Qt load only when a command needs them.
"""

__version__ = "0.1.0"
