"""Simulator generation rate next to a baseline measured in the same run.

Generates one day of the demo estate (a Monday, every store open) at the given fps and reports events per
second; then, on a sample of the same records, the rate of two raw encodes that any consumer of the events
pays anyway: the JSON form (``model_dump_json``) and Avro (fastavro ``schemaless_writer`` of ``to_avro()``),
plus validated model construction of the same frames. Medians of ``--repeat`` runs; the ratios are what to
compare across machines. Memory: peak RSS of a fresh process streaming 1 day and 7 days (fps 0.2); the
simulator plans each store-day only when the stream reaches it, so the ratio should stay near 1.

    python -m bench.simulator [--fps 1] [--repeat 3] [--sample 100000]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from datetime import date
from itertools import islice
from pathlib import Path

import fastavro

from producers.simulator import SimulationConfig, simulate
from schemas.catalogue import load_catalogue
from schemas.models import CameraCount
from schemas.serde import parsed_schema

ROOT = Path(__file__).resolve().parent.parent


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _peak_rss_mb(days: int, fps: float) -> float:
    """Peak RSS (MB) of a fresh process that streams ``days`` days of the demo estate."""
    import subprocess
    import sys

    code = (
        "import resource; from datetime import date; from schemas.catalogue import load_catalogue;"
        "from producers.simulator import SimulationConfig, simulate;"
        f"cat = load_catalogue({str(ROOT / 'deploy' / 'catalogue' / 'demo-estate.yaml')!r});"
        f"n = sum(1 for _ in simulate(cat, SimulationConfig(seed=1, start=date(2026, 3, 30), days={days}, fps={fps})));"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1]) / 1024


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=100_000, help="Records in the encode baseline.")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "deploy" / "catalogue" / "demo-estate.yaml")
    args = ap.parse_args(argv)
    catalogue = load_catalogue(args.catalogue)
    config = SimulationConfig(seed=1, start=date(2026, 3, 30), days=1, fps=args.fps)

    gen, counts = [], {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        n = frames = 0
        for ev in simulate(catalogue, config):
            n += 1
            frames += ev.topic == "camera.counts"
        gen.append(time.perf_counter() - t0)
        counts = {"events": n, "frames": frames}
    events_per_day = counts["events"]

    sample = [ev.record for ev in islice(simulate(catalogue, config), args.sample)]
    schemas = {name: parsed_schema(name) for name in ("pos_ticket", "camera_count")}
    json_t, avro_t, model_t = [], [], []
    frames_sample = [r for r in sample if isinstance(r, CameraCount)]
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for r in sample:
            r.model_dump_json()
        json_t.append(time.perf_counter() - t0)
        buf = io.BytesIO()
        t0 = time.perf_counter()
        for r in sample:
            buf.seek(0)
            fastavro.schemaless_writer(buf, schemas[r.avro_name], r.to_avro())
        avro_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for f in frames_sample:
            CameraCount(**dict(f))
        model_t.append(time.perf_counter() - t0)

    gen_rate = _rate(events_per_day, statistics.median(gen))
    json_rate = _rate(len(sample), statistics.median(json_t))
    avro_rate = _rate(len(sample), statistics.median(avro_t))
    model_rate = _rate(len(frames_sample), statistics.median(model_t))
    print(f"demo estate, 1 day (Monday), fps {args.fps}: {events_per_day} events ({counts['frames']} camera frames)")
    print(f"generate          {gen_rate:>10,.0f} events/s   median {statistics.median(gen):.2f} s of {args.repeat}")
    print(f"baseline JSON     {json_rate:>10,.0f} records/s  (model_dump_json, {len(sample)} records)")
    print(f"baseline Avro     {avro_rate:>10,.0f} records/s  (fastavro schemaless_writer of to_avro())")
    print(f"baseline validate {model_rate:>10,.0f} frames/s   (CameraCount(**fields), validated)")
    print(f"ratio generate/JSON {gen_rate / json_rate:.2f}  generate/Avro {gen_rate / avro_rate:.2f}  "
          f"generate/validate {gen_rate / model_rate:.2f}")  # fmt: skip
    one, seven = _peak_rss_mb(1, 0.2), _peak_rss_mb(7, 0.2)
    print(f"peak RSS streaming 1 day {one:.0f} MB, 7 days {seven:.0f} MB (fps 0.2): ratio {seven / one:.2f}")


if __name__ == "__main__":
    main()
