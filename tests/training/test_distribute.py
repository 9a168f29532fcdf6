"""Training under MirroredStrategy over two logical CPU devices equals training on one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("_mirrored_fit.py")


@pytest.fixture(scope="module")
def runs():
    # Logical devices must be configured before TensorFlow initializes, so this runs in a fresh interpreter.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(SCRIPT), "2"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rel(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


def test_two_replicas_follow_the_single_device_loss_trajectory(runs):
    one, two = runs["one_device"], runs["mirrored"]
    assert runs["replicas"] == 2
    assert len(one["loss"]) == 2 and one["loss"][-1] < 0.5 * one["loss"][0]  # it does learn
    assert _rel(two["loss"], one["loss"]) < 1e-4
    # validation runs on BN moving statistics, which Adam's steps on the (near-zero-gradient) biases in front of
    # each BN perturb at float-noise level; the trajectory still agrees closely
    assert _rel(two["val_loss"], one["val_loss"]) < 2e-2


def test_without_synchronized_batch_norm_the_trajectories_part(runs):
    # the control: per-replica BN statistics (4 images instead of 8) visibly change the run
    assert _rel(runs["mirrored_unsynced_bn"]["loss"], runs["one_device"]["loss"]) > 1e-3


def test_the_custom_loop_follows_model_fit(runs):
    # the loop the multi-worker runs use, on one device and on two replicas, against Keras' own fit
    for ours, theirs in (("one_device_custom_loop", "one_device"), ("mirrored_custom_loop", "mirrored")):
        assert _rel(runs[ours]["loss"], runs[theirs]["loss"]) < 1e-5
        assert _rel(runs[ours]["val_loss"], runs[theirs]["val_loss"]) < 2e-3


def test_batch_global_loss_is_exact_across_replicas(runs):
    assert runs["loss_replica_sum"] == pytest.approx(runs["loss_global"], rel=1e-6)


def test_a_model_built_outside_the_strategy_scope_is_refused(runs):
    assert "outside the strategy's scope" in runs["outside_scope_error"]


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.loopback
def test_two_workers_follow_the_single_device_loss_trajectory(runs):
    """MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 (gRPC collectives, DATA sharding).

    Keras 3's ``Model.fit`` cannot run here (keras-team/keras#20585); the fit functions switch to
    :func:`cxrzoo.training.custom_fit`, and both workers must end up where the mirrored run does."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    ports = [str(p) for p in _free_ports(2)]
    script = str(SCRIPT.with_name("_multiworker_fit.py"))
    workers = [
        subprocess.Popen(
            [sys.executable, script, str(i), *ports, "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=600) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    chief, other = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert chief["replicas"] == 2 and chief["chief"] is True and other["chief"] is False
    assert other["loss"] == chief["loss"]  # one synchronized model, not two independent runs
    assert _rel(chief["loss"], runs["one_device"]["loss"]) < 1e-4
    assert _rel(chief["val_loss"], runs["mirrored"]["val_loss"]) < 1e-5
