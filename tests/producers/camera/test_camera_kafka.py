"""`tillflow camera run` into camera.counts on the real local broker and registry (the session's stack)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from confluent_kafka import Consumer

from producers.camera.synthetic import (
    OVERHEAD_EXPECTED,
    OVERHEAD_FRAMES,
    OVERHEAD_VIEW,
    overhead_scene,
    render,
    write_video,
)
from schemas.models import CameraCount
from schemas.serde import TopicSerde, registry_client
from schemas.topics import CAMERA_COUNTS
from tillflow.kafka import consumer_config, endpoints
from tillflow.settings import Settings


def test_counts_reach_kafka_keyed_by_store(stack: Settings, unique: str, tmp_path: Path) -> None:
    video = tmp_path / "door.avi"
    write_video(video, render(overhead_scene(), *OVERHEAD_VIEW, OVERHEAD_FRAMES), 25.0)
    camera_id = f"cam-{unique}"
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        yaml.safe_dump(
            {
                "stores": [{"id": "wg-volt", "name": "V", "timezone": "UTC", "area_m2": 650, "category": "x"}],
                "cameras": [
                    {
                        "id": camera_id,
                        "store_id": "wg-volt",
                        "role": "entrance",
                        "source": str(video),
                        "detector": "mog2",
                        "door_line": [[0.05, 0.5], [0.95, 0.5]],
                        "entering": "down",
                        "target_fps": 5,
                    }
                ],
            }
        )
    )
    ep = endpoints(stack)
    env = {
        **os.environ,
        "TILLFLOW_CATALOGUE": str(catalogue),
        "TILLFLOW_STATE_DIR": str(tmp_path / "state"),
        "TILLFLOW_KAFKA_BOOTSTRAP": ep.bootstrap,
        "TILLFLOW_REGISTRY_URL": ep.registry_url,
    }
    cmd = [sys.executable, "-m", "tillflow", "camera", "run", "--camera", camera_id]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected_frames = -(-OVERHEAD_FRAMES // 5)

    serde = TopicSerde(registry_client(ep.registry_url), CAMERA_COUNTS)
    consumer = Consumer(consumer_config(stack, f"camera-test-{unique}", ep.bootstrap))
    consumer.subscribe([CAMERA_COUNTS])
    got: list[tuple[bytes | None, int | None, CameraCount]] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < expected_frames and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            record = serde.decode_model(msg.value())
            assert isinstance(record, CameraCount)
            if record.camera_id == camera_id:
                got.append((msg.key(), msg.partition(), record))
    finally:
        consumer.close()
    assert len(got) == expected_frames
    assert {key for key, _, _ in got} == {b"wg-volt"}
    assert len({partition for _, partition, _ in got}) == 1
    records = sorted((r for _, _, r in got), key=lambda r: r.frame_seq)
    assert [r.frame_seq for r in records] == list(range(expected_frames))
    assert (sum(r.entries for r in records), sum(r.exits for r in records)) == OVERHEAD_EXPECTED
    assert all(r.store_id == "wg-volt" and r.zone_id is None and r.detector == "mog2" for r in records)
