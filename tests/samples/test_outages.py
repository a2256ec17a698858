"""Consumer outages are scheduled so that their victims are certain."""

from __future__ import annotations

from samples.outages import OutageSchedule


def schedule() -> OutageSchedule:
    return OutageSchedule(duration=12, quiet=7, tail=6)


def test_an_outage_waits_until_no_other_fault_is_in_flight() -> None:
    outages = schedule()
    outages.fault_injected(now=100)
    outages.request("scorer", now=101)
    assert outages.holding_faults_back  # no new faults while the outage waits
    assert outages.due(now=106) is None
    assert outages.due(now=107) == "scorer"
    assert outages.down_until == {"scorer": 119}


def test_no_second_outage_during_one_or_during_its_recovery() -> None:
    outages = schedule()
    outages.request("scorer", now=0)
    assert outages.due(now=0) == "scorer"
    outages.request("router", now=5)
    assert outages.pending is None
    assert outages.recovered(now=12) == ["scorer"]
    outages.request("router", now=20)
    assert outages.due(now=20) is None
    outages.request("router", now=24)
    assert outages.due(now=24) == "router"


def test_no_workflow_starts_in_the_last_moments_of_an_outage() -> None:
    outages = schedule()
    outages.request("scorer", now=0)
    outages.due(now=0)
    assert not outages.in_tail(now=5)
    assert outages.in_tail(now=7)
    assert outages.recovered(now=11) == []
    assert outages.recovered(now=12) == ["scorer"]
    assert not outages.in_tail(now=12)
