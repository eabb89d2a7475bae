"""Worker nodes without a shared directory: originals and outputs through S3-compatible storage
(`--object-store s3://...`, blobstore.S3Objects), on a local S3 server (moto's, a real HTTP server in
its own process), the real PostgreSQL and RabbitMQ, and real serve and worker processes."""
from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.cloud_services import NEED_AMQP, amqp_up
from tests.test_cloud_cluster import Cluster

MOTO = Path(sys.executable).parent / "moto_server"


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A local S3 server on a free loopback port and a fresh bucket; yields (endpoint, bucket)."""
    if not MOTO.exists():
        pytest.skip("moto[server] (dev extra) is not installed: no local S3 server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "moto.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"cdr-{uuid.uuid4().hex[:8]}"
    end = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            break
        except Exception:  # noqa: BLE001 - still starting
            assert proc.poll() is None and time.monotonic() < end, (tmp_path / "moto.log").read_text()
            time.sleep(0.2)
    yield endpoint, bucket
    proc.terminate()
    proc.wait(10)


def _keys(endpoint: str, bucket: str) -> list[str]:
    import boto3

    out = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in out)


def test_one_copy_of_an_attempt_is_published(s3, tmp_path: Path) -> None:
    from transfer_agent.blobstore import BlobKeyError, S3Objects

    endpoint, bucket = s3
    objects = S3Objects(f"s3://{bucket}/cloud-a", endpoint)
    for n in range(2):  # two workers finishing the same attempt (a redelivered task)
        d = tmp_path / f"copy{n}"
        (d / "text").mkdir(parents=True)
        (d / "申請書.pdf").write_bytes(f"copy {n}".encode())
        (d / "text" / "申請書.txt").write_text(f"text {n}", "utf-8")
        assert objects.publish_dir(d, "work/jobs/7-2") is (n == 0)
    got = tmp_path / "got"
    got.mkdir()
    objects.fetch_dir("work/jobs/7-2", got)
    assert (got / "申請書.pdf").read_bytes() == b"copy 0" and (got / "text" / "申請書.txt").read_text("utf-8") == "text 0"
    objects.delete_prefix("work/jobs/7-2")
    assert _keys(endpoint, bucket) == []
    for bad in ("../x", "/etc/passwd", "work/../../x"):
        with pytest.raises(BlobKeyError):
            objects.exists(bad)


class S3Cluster(Cluster):
    """The test cluster with each worker node on a scratch folder of its own instead of the shared dir."""

    def worker(self, env: dict | None = None, wrap: list[str] | None = None):  # noqa: ANN201
        scratch = self.tmp / f"scratch{self.n + 1}"
        self.scratch = scratch
        return self._spawn(["worker", "--data-dir", str(self.tmp / f"node{self.n + 1}"), "--config", str(self.cfg),
                            "--database", self.db, "--broker", self.broker, "--shared-dir", str(scratch),
                            "--concurrency", "1"], env, wrap)


def test_worker_node_without_a_shared_directory(pg_url: str, s3, tmp_path: Path) -> None:
    if not amqp_up():
        pytest.skip(NEED_AMQP)
    from PIL import Image

    endpoint, bucket = s3
    c = S3Cluster(tmp_path, pg_url)
    text = c.cfg.read_text("utf-8").replace(
        "[service]\n", f'[service]\nobject_store = "s3://{bucket}/cloud-a"\ns3_endpoint = "{endpoint}"\n', 1)
    c.cfg.write_text(text, "utf-8")
    try:
        c.serve()
        c.worker()
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
        c.drop("申請者一覧.csv", "番号,氏名\r\n1,山田太郎\r\n".encode("cp932"))
        c.drop("写真.png", buf.getvalue())
        c.drop("evil.exe", b"MZ\x90\x00" + b"\x00" * 100)
        rows = c.wait_final(3)
        assert sorted(r["status"] for r in rows) == ["blocked", "delivered", "delivered"], rows
        c.check(rows)
        # The worker node never saw the shared directory: it worked in its scratch folder, left empty.
        assert not (c.scratch / "quarantine").exists()
        assert not [p for p in c.scratch.rglob("*") if p.is_file()]
        # The bucket holds the originals it was sent (a lifecycle rule expires them), no outputs.
        keys = _keys(endpoint, bucket)
        assert keys and all(k.startswith("cloud-a/quarantine/") for k in keys), keys
        assert len(keys) == 3
    finally:
        c.close()
