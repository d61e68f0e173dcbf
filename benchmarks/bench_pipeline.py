#!/usr/bin/env python3
"""Video pipeline benchmark: overhead over the predictor, and peak memory.

(a) overhead — a synthetic 640×360 clip (default 300 frames) with one person and a MOTChallenge
    boxes file. Times the demo's work without rendering (``iter_video`` + ``save_pare_output``:
    decode, boxes → tracks, crops, PARE, post-processing, pkl) with the predictor already loaded,
    then the predictor alone on the very same crops (already in memory, batches of 16). Target:
    end-to-end ≤ 1.25 × predictor.

(b) peak RSS (``--rss``) — ``pare-studio demo --no_render`` in a child process on a synthetic
    3,000-frame two-person clip; the child's peak resident memory from ``wait4``. Target ≤ 1.5 GB.
    Slow on CPU (about 5,000 crops); ``--rss-real-every N`` runs the real network on every N-th
    batch only (see benchmarks/README.md).

    python benchmarks/bench_pipeline.py --cfg CFG --ckpt CKPT --smpl-dir DIR [--frames 300]
        [--threads N] [--device cpu] [--rss [--rss-frames 3000] [--rss-real-every N]]
        [--skip-overhead] [--workdir DIR]

The clips come from ``shared/parity/make_demo_fixture.py`` (``--fixture-script``) and are kept in
``--workdir`` (default: a temp folder) so a second run skips making them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_FIXTURE = REPO.parent / "shared" / "parity" / "make_demo_fixture.py"


def make_clip(
    script: Path, out: Path, frames: int, size: str, one_person: bool
) -> tuple[Path, Path]:
    """The synthetic clip and its boxes file (only track 1 with ``one_person``)."""
    if not (out / "clip.mp4").is_file():
        subprocess.run(
            [sys.executable, str(script), str(out), "--frames", str(frames), "--size", size],
            check=True,
            capture_output=True,
        )
    boxes = out / "boxes.txt"
    if one_person:
        one = out / "boxes_one.txt"
        lines = [ln for ln in boxes.read_text().splitlines() if ln.split(",")[1] == "1"]
        one.write_text("\n".join(lines) + "\n")
        boxes = one
    return out / "clip.mp4", boxes


def bench_overhead(args: argparse.Namespace, workdir: Path) -> list[tuple[str, str]]:
    import numpy as np

    from pare_studio.core.predictor import load_predictor
    from pare_studio.pipeline.crops import crop_boxes
    from pare_studio.pipeline.pkl_io import save_pare_output
    from pare_studio.pipeline.run import RunOptions, RunTimings, run_video
    from pare_studio.pipeline.video import open_source

    clip, boxes = make_clip(
        args.fixture_script, workdir / f"one_{args.frames}", args.frames, "640x360", one_person=True
    )
    t0 = time.perf_counter()
    predictor = load_predictor(
        args.cfg, args.ckpt, args.smpl_dir, device=args.device, backend=args.backend
    )
    load_s = time.perf_counter() - t0
    options = RunOptions(detector="boxes", boxes_file=boxes, batch_size=args.batch_size)

    with open_source(clip) as src:  # warm-up: first-call costs out of both timings
        warm = crop_boxes(src.read(0), np.array([[320.0, 180.0, 200.0, 200.0]] * args.batch_size))
    predictor.predict(warm, batch_size=args.batch_size)

    timings = RunTimings()
    t0 = time.perf_counter()
    result = run_video(clip, predictor, options, timings=timings)
    save_pare_output(workdir / "bench_out" / "pare_output.pkl", result)
    e2e_s = time.perf_counter() - t0

    # The same crops, in memory, through the predictor alone.
    track = result.tracks[min(result.tracks)]
    crops = np.empty((len(track), 3, 224, 224), np.float32)
    with open_source(clip) as src:
        for row, (frame_id, box) in enumerate(zip(track.frame_ids, track.bboxes, strict=True)):
            crops[row] = crop_boxes(src.read(int(frame_id)), box[None])[0]
    t0 = time.perf_counter()
    out = predictor.predict(crops, batch_size=args.batch_size)
    pred_s = time.perf_counter() - t0
    np.testing.assert_allclose(out.pred_cam, track.pred_cam, atol=1e-3)  # truly the same work

    n = len(track)
    return [
        ("clip", f"{clip.name} {result.width}x{result.height}, {result.n_frames} frames, 1 person"),
        ("model load (not counted)", f"{load_s:.1f} s"),
        ("end to end, no render", f"{e2e_s:.2f} s ({n / e2e_s:.2f} crops/s)"),
        ("  detect + track", f"{timings.detect_s:.2f} s"),
        (
            "  crops + PARE (predictor calls)",
            f"{timings.infer_s:.2f} s ({timings.predictor_s:.2f} s)",
        ),
        ("predictor alone, same crops", f"{pred_s:.2f} s ({n / pred_s:.2f} crops/s)"),
        ("ratio (target <= 1.25)", f"{e2e_s / pred_s:.3f}"),
        (
            "overhead inside end to end",
            f"{e2e_s - timings.predictor_s:.2f} s = {(e2e_s - timings.predictor_s) / e2e_s:.1%} "
            "(everything but predictor calls; robust to machine load)",
        ),
    ]


class _SampledRunner:
    """The real network on every ``every``-th batch (and the first); its last outputs otherwise.

    For the memory benchmark only: memory does not depend on the values the network returns, so
    most of the thousands of CPU forwards can be skipped while the network's transient peak
    (activations) still recurs all along the run, up to ``every`` batches before its end. SMPL,
    crops, decoding and the result arrays run for every crop.
    """

    def __init__(self, real, every: int) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.name = real.name
        self.device = real.device
        self.every = max(1, int(every))
        self.calls = 0
        self.last: dict | None = None

    def __call__(self, images):  # type: ignore[no-untyped-def]
        n = len(images)
        real = self.calls % self.every == 0 or self.last is None or len(self.last["pred_cam"]) < n
        self.calls += 1
        if real:
            out = self.real(images)
            # torch tensors (torch runner) or numpy arrays (ONNX Runtime runner)
            self.last = {k: v.clone() if hasattr(v, "clone") else v.copy() for k, v in out.items()}
            return out
        return {k: v[:n] for k, v in self.last.items()}

    def close(self) -> None:
        self.real.close()


def rss_child(args: argparse.Namespace) -> int:
    """Runs in the measured child process: the demo's work without rendering."""
    from pare_studio.core.predictor import load_predictor
    from pare_studio.pipeline.pkl_io import save_pare_output
    from pare_studio.pipeline.run import RunOptions, run_video

    predictor = load_predictor(
        args.cfg, args.ckpt, args.smpl_dir, device=args.device, backend=args.backend
    )
    if args.rss_real_every is not None:
        predictor.runner = _SampledRunner(predictor.runner, args.rss_real_every)
    options = RunOptions(detector="boxes", boxes_file=args.rss_child[1], batch_size=args.batch_size)
    result = run_video(args.rss_child[0], predictor, options)
    save_pare_output(Path(args.rss_child[2]) / "pare_output.pkl", result)
    return 0


def bench_rss(args: argparse.Namespace, workdir: Path) -> list[tuple[str, str]]:
    clip, boxes = make_clip(
        args.fixture_script,
        workdir / f"two_{args.rss_frames}",
        args.rss_frames,
        "640x360",
        one_person=False,
    )
    person_frames = sum(1 for ln in boxes.read_text().splitlines() if ln.strip())
    if args.rss_real_every is None:  # exactly `pare-studio demo --no_render`
        cmd = [
            sys.executable, "-m", "pare_studio", "demo", "--vid_file", str(clip),
            "--boxes", str(boxes), "--no_render", "--output_folder", str(workdir / "rss_out"),
            "--cfg", str(args.cfg), "--ckpt", str(args.ckpt), "--smpl-dir", str(args.smpl_dir),
            "--batch_size", str(args.batch_size),
        ]  # fmt: skip
        if args.device:
            cmd += ["--device", args.device]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
        cmd += ["--rss-child", str(clip), str(boxes), str(workdir / "rss_out")]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"demo failed:\n{err}")
    peak_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    how = (
        "pare-studio demo --no_render"
        if args.rss_real_every is None
        else f"same work, real network on every {args.rss_real_every}th batch only"
    )
    return [
        ("clip", f"{clip.name} 640x360, {args.rss_frames} frames, 2 people, "
                 f"{person_frames} person-frames"),
        ("measured run", f"{how}, {wall:.0f} s"),
        ("peak RSS (target <= 1536 MB)", f"{peak_mb:.0f} MB"),
    ]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cfg", type=Path, required=True)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--smpl-dir", type=Path, required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--frames", type=int, default=300, help="frames of the overhead clip (300)")
    ap.add_argument("--rss", action="store_true", help="also run the peak-memory benchmark (slow)")
    ap.add_argument("--rss-frames", type=int, default=3000)
    ap.add_argument(
        "--rss-real-every",
        type=int,
        default=None,
        help="memory run: real network on every Nth batch only, its outputs reused in between "
        "(memory does not depend on the values; saves hours on CPU). Default: the real demo.",
    )
    ap.add_argument("--rss-child", nargs=3, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--fixture-script", type=Path, default=DEFAULT_FIXTURE)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.rss_child:
        return rss_child(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pare_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    if not args.skip_overhead:
        rows += bench_overhead(args, workdir)
    if args.rss:
        rows += bench_rss(args, workdir)
    import platform

    import torch

    rows.append(
        (
            "machine",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        )
    )
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
