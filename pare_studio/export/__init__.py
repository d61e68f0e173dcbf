"""Exports of PARE results to animation and mesh formats (no Qt; numpy, scipy).

Modules: :mod:`~pare_studio.export.dispatch` (one entry point for every format),
:mod:`~pare_studio.export.bvh`, :mod:`~pare_studio.export.gltf`, :mod:`~pare_studio.export.npz`,
:mod:`~pare_studio.export.obj`, :mod:`~pare_studio.export.translation` (root translation from
the camera), :mod:`~pare_studio.export.common` (options, export world frame),
:mod:`~pare_studio.export.rig` (SMPL rig in numpy), :mod:`~pare_studio.export.jitter` (per-joint
acceleration). Files are written through :mod:`pare_studio.atomic`. See ``docs/export.md``.
Nothing is imported here, so importing one exporter stays cheap.
"""
