import pytest
from conftest import load_perf

from benchmark import TrainConfig
from benchmark.estimate import Rate, calibrate_one, job_seconds, schedule, shape_of


def test_schedule_replays_longest_first_on_free_slots():
    assert schedule([5, 3, 3, 1], 2) == 6  # 5 | 3+3 -> then 1 on the slot free at 5
    assert schedule([4, 4, 4], 1) == 12
    assert schedule([2], 4) == 2 and schedule([], 2) == 0


def test_job_seconds_counts_steps_evaluations_and_overhead():
    cfg = TrainConfig(epochs=4, batch_size=64)
    rate = Rate(step_seconds=0.01, eval_seconds_per_sample=1e-4)
    # 1000 samples -> 16 steps an epoch (last one partial); 4 evaluations of 10k images
    assert job_seconds(cfg, 1000, rate) == pytest.approx(4 * 16 * 0.01 + 4 * 1.0 + 0.5)
    assert job_seconds(cfg, 1000, rate, eval_every=3) == pytest.approx(0.64 + 2 * 1.0 + 0.5)


def test_shape_ignores_what_does_not_change_step_speed():
    a = TrainConfig(seed=1, train_size=500, train_offset=100, epochs=3)
    assert shape_of(a) == shape_of(TrainConfig(seed=2, train_size=None, epochs=20))
    assert shape_of(a) != shape_of(TrainConfig(precision="bf16"))


def test_calibration_times_a_real_step_and_evaluation():
    rate = calibrate_one(TrainConfig(arch="sk", width=0.2, batch_size=16), "cpu", 1)
    assert 0 < rate.step_seconds < 5 and 0 < rate.eval_seconds_per_sample < 0.1


def test_perf_sections_are_checked():
    import argparse

    perf = load_perf()

    assert perf._sections("throughput, study-estimates") == ["throughput", "study-estimates"]
    for bad in ("thruput", ","):
        with pytest.raises(argparse.ArgumentTypeError, match="choose from throughput"):
            perf._sections(bad)
