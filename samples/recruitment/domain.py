"""The recruitment domain: applications, CV parsing, scoring, the CRM and routing.

Nothing here knows about NATS. The scorer and the router are where a real system
would call a language model; here they are deterministic keyword rules, so the
sample needs no model or network, and `samples.llm` records each call's prompt
and answer for audit as a model call would be.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from instrumentation.errors import ChoreoscopeError

POSITIONS: dict[str, dict[str, Any]] = {
    "backend-engineer": {
        "team": "engineering",
        "keywords": ["python", "postgres", "nats", "kubernetes", "api", "testing"],
    },
    "data-analyst": {
        "team": "data",
        "keywords": ["sql", "duckdb", "python", "statistics", "dashboards"],
    },
    "site-reliability": {
        "team": "operations",
        "keywords": ["linux", "kubernetes", "observability", "on-call", "terraform"],
    },
}
SKILLS = sorted({k for p in POSITIONS.values() for k in p["keywords"]} | {"excel", "java", "go"})
FIRST = ["Maya", "Tomas", "Ines", "Kofi", "Lena", "Ravi", "Noor", "Pablo", "Yuki", "Sven"]
LAST = ["Okoro", "Berg", "Silva", "Mensah", "Kowalski", "Iyer", "Haddad", "Ruiz", "Sato"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_YEARS = re.compile(r"(\d+)\s+years?")


class UnreadableCvError(ChoreoscopeError):
    """The application's CV is not text the parser can read (a poison message)."""

    def __init__(self, *, found: str) -> None:
        super().__init__(
            f"the CV is {found}, not text: ask the applicant for a text or PDF-to-text CV"
        )


@dataclass(frozen=True)
class Crm:
    """The small CRM the duplicate check reads: known candidates and recruiters per team."""

    candidates: dict[str, dict[str, str]]
    recruiters: dict[str, list[str]]

    @classmethod
    def shipped(cls) -> Crm:
        text = (resources.files("samples.recruitment") / "crm.yaml").read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
        return cls(
            candidates={c["email"].lower(): c for c in raw["candidates"]},
            recruiters=raw["recruiters"],
        )

    def find(self, email: str) -> dict[str, str] | None:
        return self.candidates.get(email.lower())


def make_application(rng: random.Random, crm: Crm) -> dict[str, Any]:
    """A plausible application; about one in five comes from someone already in the CRM."""
    position = rng.choice(sorted(POSITIONS))
    if rng.random() < 0.2:
        known = rng.choice(sorted(crm.candidates.values(), key=lambda c: c["crm_id"]))
        name, email = known["name"], known["email"]
    else:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        email = f"{name.lower().replace(' ', '.')}{rng.randint(1, 999)}@example.com"
    skills = rng.sample(SKILLS, k=rng.randint(2, 6))
    years = rng.randint(0, 15)
    cv = (
        f"{name}\n{email}\n{years} years of experience.\n"
        f"Skills: {', '.join(skills)}.\nLooking for a {position.replace('-', ' ')} role."
    )
    return {"position": position, "applicant": name, "cv": cv}


def make_unreadable_application(rng: random.Random, crm: Crm) -> dict[str, Any]:
    """An application whose CV arrived as a binary attachment: the parser cannot read it."""
    application = make_application(rng, crm)
    application["cv"] = {"attachment": "cv.pdf", "bytes_base64": "JVBERi0xLjcKJcfs..."}
    return application


def parse_cv(application: dict[str, Any]) -> dict[str, Any]:
    """Name, email, skills and years of experience, read from the CV's text."""
    cv = application.get("cv")
    if not isinstance(cv, str):
        raise UnreadableCvError(found=type(cv).__name__)
    email = _EMAIL.search(cv)
    years = _YEARS.search(cv)
    lowered = cv.lower()
    return {
        "name": cv.splitlines()[0].strip() if cv.strip() else application.get("applicant", ""),
        "email": email.group(0) if email else "",
        "years": int(years.group(1)) if years else 0,
        "skills": [s for s in SKILLS if re.search(rf"\b{re.escape(s)}\b", lowered)],
        "position": application.get("position", ""),
    }


def scoring_prompt(candidate: dict[str, Any]) -> str:
    return (
        f"Rate from 0 to 1 how well this candidate fits the {candidate['position']} role. "
        f"Skills: {', '.join(candidate['skills']) or 'none'}. Years: {candidate['years']}."
    )


def score_candidate(candidate: dict[str, Any]) -> dict[str, Any]:
    """The stand-in for a model's judgement: keyword overlap plus experience."""
    wanted = POSITIONS.get(candidate["position"], {"keywords": []})["keywords"]
    matched = [k for k in wanted if k in candidate["skills"]]
    fit = len(matched) / len(wanted) if wanted else 0.0
    experience = min(candidate["years"], 10) / 10
    score = round(0.7 * fit + 0.3 * experience, 3)
    return {
        "score": score,
        "matched": matched,
        "rationale": f"matches {len(matched)} of {len(wanted)} required skills, "
        f"{candidate['years']} years of experience",
    }


def routing_prompt(candidate: dict[str, Any], score: float, duplicate: dict | None) -> str:
    known = f"already in the CRM as {duplicate['crm_id']}" if duplicate else "new to the CRM"
    return f"Pick a recruiter for a {candidate['position']} candidate scored {score}, {known}."


def route_candidate(
    candidate: dict[str, Any], score: float, duplicate: dict | None, crm: Crm
) -> dict[str, Any]:
    """The stand-in for a model's routing: the team's recruiter, chosen stably by email."""
    team = POSITIONS.get(candidate["position"], {"team": "operations"})["team"]
    recruiters = crm.recruiters.get(team) or sorted(r for rs in crm.recruiters.values() for r in rs)
    digest = int(hashlib.sha256(candidate["email"].encode()).hexdigest(), 16)
    recruiter = recruiters[digest % len(recruiters)]
    if duplicate and duplicate.get("status") in {"hired", "rejected"}:
        decision = "review-history"
    elif score >= 0.5:
        decision = "fast-track"
    else:
        decision = "standard"
    return {"recruiter": recruiter, "team": team, "decision": decision}
