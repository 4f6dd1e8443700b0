"""Cost estimates: list prices from the docs, config overrides, running rate, job cost."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from rpdash.core.models import Health
from rpdash.services.cost import (
    PRICES_AS_OF,
    PriceTable,
    endpoint_cost_per_s,
    format_cost,
    format_rate,
    job_cost,
    pool_of,
    prices_from_config,
    running_cost_per_s,
)


def test_defaults_are_the_dated_docs_table() -> None:
    p = PriceTable()
    assert p.as_of == PRICES_AS_OF == "2026-08-20"
    assert p.price("ADA_24") == 0.00031 and p.price("ADA_24", active=True) == 0.00031
    assert p.price("HOPPER_141") == 0.00155 and p.price("ada_24") == 0.00031
    assert p.price("ADA_32_PRO") is None and p.price(None) is None


def test_gpu_names_are_priced_through_their_pool() -> None:
    assert pool_of("NVIDIA GeForce RTX 4090") == "ADA_24"
    assert pool_of("NVIDIA L4") == "AMPERE_24" and pool_of("NVIDIA L40S") == "ADA_48_PRO"
    assert pool_of("NVIDIA A40") == "AMPERE_48" and pool_of("NVIDIA RTX A4000") == "AMPERE_16"
    assert pool_of("NVIDIA RTX PRO 6000 Blackwell") == "BLACKWELL_96"
    assert pool_of("NVIDIA RTX 6000 Ada Generation") == "ADA_48_PRO"
    assert pool_of("NVIDIA H100 80GB HBM3") == "ADA_80_PRO" and pool_of("Mystery GPU") is None
    assert PriceTable().price("NVIDIA A100-SXM4-80GB") == 0.00076


def test_config_overrides_flat_and_tables() -> None:
    p = prices_from_config({"as_of": "2026-11-30", "ADA_24": 0.0004,
                            "AMPERE_80": {"flex": 0.0008, "active": 0.0006},
                            "NVIDIA GeForce RTX 5090": 0.0005})  # fmt: skip
    assert p.as_of == "2026-11-30"
    assert p.price("ADA_24") == 0.0004 and p.price("AMPERE_80") == 0.0008
    assert p.price("AMPERE_80", active=True) == 0.0006
    assert p.price("NVIDIA GeForce RTX 5090") == 0.0005
    assert p.price("HOPPER_141") == 0.00155  # untouched defaults stay
    with pytest.raises(ValidationError):
        prices_from_config({"ADA_24": -1})
    with pytest.raises(ValidationError):
        prices_from_config({"ADA_24": {"flex": 1, "bogus": 2}})


def test_running_workers_rate_for_the_health_row() -> None:
    p = PriceTable()
    rate = running_cost_per_s(p, running=2, gpus=("ADA_32_PRO", "ADA_24"), gpu_count=2)
    assert rate == pytest.approx(2 * 2 * 0.00031)  # first priced pool, GPUs per worker
    assert format_rate(rate) == "≈ $0.0012/s"
    assert running_cost_per_s(p, running=0, gpus=("ADA_24",)) == 0.0
    assert running_cost_per_s(p, running=3, gpus=("ADA_32_PRO",)) is None
    discounted = prices_from_config({"ADA_24": {"flex": 0.0003, "active": 0.0002}})
    assert running_cost_per_s(discounted, running=3, gpus=("ADA_24",), active=1) == pytest.approx(0.0008)


def test_worker_list_prices_each_worker_by_its_gpu() -> None:
    ws = [SimpleNamespace(status="RUNNING", gpu_type="NVIDIA H200", gpu_count=1),
          SimpleNamespace(status="RUNNING", gpu_type=None, gpu_count=2),
          SimpleNamespace(status="IDLE", gpu_type="NVIDIA H200", gpu_count=1)]  # fmt: skip
    info = SimpleNamespace(gpus=("AMPERE_16",), gpu_count=1, workers_min=0)
    rate = endpoint_cost_per_s(PriceTable(), info, Health(), ws)
    assert rate == pytest.approx(0.00155 + 2 * 0.00016)
    assert endpoint_cost_per_s(PriceTable(), info, Health.model_validate({"workers": {"running": 4}})) == \
        pytest.approx(4 * 0.00016)  # fmt: skip


def test_finished_job_cost() -> None:
    p = PriceTable()
    assert job_cost(p, 12_000, "ADA_24") == pytest.approx(12 * 0.00031)
    assert job_cost(p, 12_000, ("ADA_32_PRO", "AMPERE_80"), gpu_count=2) == pytest.approx(24 * 0.00076)
    assert job_cost(p, None, "ADA_24") is None and job_cost(p, 1000, "nope") is None
    assert format_cost(job_cost(p, 12_000, "ADA_24")) == "≈ $0.0037"
    assert format_cost(12.5) == "≈ $12.50" and format_cost(None) == "-" and format_cost(0) == "≈ $0"
    assert format_rate(0.00031, per="h") == "≈ $1.12/h"
