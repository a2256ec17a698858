"""Recruitment intake: a choreographed pipeline of AI-agent services.

    python -m samples.recruitment --nats nats://127.0.0.1:4222 --rate 2 --faults demo

An application arrives (``recruit.application.received``); a CV parser, a scorer,
a duplicate check against a small CRM and a router each react to the previous
step's event, until ``recruit.candidate.routed`` names the recruiter.
"""
