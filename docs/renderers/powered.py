"""The powered SIB-200 page: screen, pilot, plan, units finished and the report, from fig/sib200_powered/."""

from __future__ import annotations

import json

from . import common
from .common import _load, _pct, block

POWERED_CMD = "make experiment-powered PHASE={phase}"


def _powered_json(name: str):
    """A file of the powered experiment's work dir (``fig/sib200_powered/``), None when absent."""
    return _load(f"sib200_powered/{name}")


def _powered_units(sub: str) -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((common.FIG / "sib200_powered" / sub).glob("seed*/*/result.json"))
    ]


def _profile(p: dict) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in p["counts"].items())
    return (f"{p['n']} items ({counts}); majority-class accuracy {_pct(p['majority_accuracy'])}%, chance "
            f"{_pct(p['chance'])}%")  # fmt: skip


def _powered_screen(screen: dict, sel: dict) -> list[str]:
    langs = screen["languages"]
    rows = ["| half | language | dev retrieval raw | centered |", "|---|---|---|---|"]
    for half in ("A", "B"):
        rows += [f"| {half} | {x} | {_pct(langs[x]['raw'])} | {_pct(langs[x]['centered'])} |"
                 for x in sel["roles"][half]]  # fmt: skip
    return [
        f"**Language screen** (`{POWERED_CMD.format(phase='screen')}`; `fig/sib200_powered/screen.json`): the base "
        f"model's retrieval x -> English among the {screen['n_items']} {screen['split']} sentences at layer "
        f"{screen['layer']} (`{screen['pooling']}`), for {len(langs)} languages; {screen['env']['cpu']}, "
        f"{screen['env']['dtype']}. The selection rule (fixed before any task result; revised once, after review, "
        "because its first version drew one Latin-script language of 16) kept "
        f"{len(sel['eligible'])} languages "
        f"({len(sel['excluded_low'])} below the readability bound, {len(sel['excluded_high'])} above the headroom bound) "
        f"and drew {len(sel['selected'])}: Latin-script and other languages in proportion to their eligible counts "
        f"({sel['latin_share'][0]} Latin), each group stratified over retrieval quartiles, scripts spread, one variant "
        "per language code; halves A and B split every cell evenly at random.", "",
        "![screen](fig/sib200_powered/screen.png)", "", *rows, "",
    ]  # fmt: skip


def _powered_pilot(pilot: dict, units: list[dict]) -> list[str]:
    if pilot is None:
        done = sorted(f"{u['arm']}:{u['seed']}" for u in units)
        return [f"**Pilot** (exploratory, dev split only; `{POWERED_CMD.format(phase='pilot')}`): "
                f"{len(done)} units finished so far ({', '.join(done) or 'none'}); the choice is made when all are "
                "done.", ""]  # fmt: skip
    major = _pct(pilot["dev_subset"]["labels"]["majority_accuracy"])
    rows = ["| configuration | English dev accuracy | majority class | aligned dev retrieval, centered | raw | "
            "minutes per unit |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, v in pilot["summary"].items():
        rows.append(f"| {name} | {_pct(v['english_dev_accuracy'])} | {major} | "
                    f"{_pct(v['aligned_dev_retrieval_centered'])} | {_pct(v['aligned_dev_retrieval_raw'])} | "
                    f"{v['seconds'] / 60:.0f} |")  # fmt: skip
    return [f"**Pilot** (exploratory: seeds {', '.join(map(str, pilot['seeds']))}, dev split only, means over seeds; "
            f"English dev set: {_profile(pilot['dev_subset']['labels'])}). Rule: {pilot['rule']}", "", *rows, "",
            f"Choice: {pilot.get('why', 'not made (partial grid)')} (English dev majority-class accuracy {major}).",
            ""]  # fmt: skip


def _powered_report(rep: dict) -> list[str]:
    s = rep["summary"]
    plan = rep["plan"]["plan"]
    prof = plan["evaluation"]["subset"]["labels"]
    out = [f"**Results so far** (`fig/sib200_powered.json`, {len(rep['units_done'])} of {rep['units_planned']} "
           f"units, seeds {', '.join(map(str, s['seeds_done']))}; {rep['dtype']}; every evaluated language: "
           f"{_profile(prof)}). Paired differences in accuracy points, mean over seeds with the 95% seed-level "
           "t-interval (primary) and the bootstrap over seeds and sentence clusters (sensitivity); languages are "
           "fixed effects.", "", "| endpoint | seeds | verdict | bootstrap |", "|---|---|---|---|"]  # fmt: skip
    for name, e in {**s["endpoints"], **{f"English: {k}": v for k, v in s["english"].items()}}.items():
        if not e.get("seeds"):
            continue
        b = e["bootstrap"]
        out.append(f"| {name} | {len(e['seeds'])} | {e['verdict']} | [{100 * b['low']:+.1f}, {100 * b['high']:+.1f}] |")
    caveat = next((e.get("caveat") for e in s["endpoints"].values() if e.get("caveat")), None)
    if caveat:
        out += ["", caveat + "."]
    return out + [""]


@block("powered_screen")
def block_powered_screen() -> str:
    """The language screen and the 16 languages the rule picked (screen.json, selection.json)."""
    screen, sel = _powered_json("screen.json"), _powered_json("selection.json")
    if not (screen and sel):
        return f"Not screened yet: `{POWERED_CMD.format(phase='screen')}`."
    return "\n".join(_powered_screen(screen, sel)).strip()


@block("powered_pilot")
def block_powered_pilot() -> str:
    """The pilot's grid and choice (pilot.json and the pilot units)."""
    if not _powered_json("selection.json"):
        return f"No pilot yet (it follows the screen): `{POWERED_CMD.format(phase='pilot')}`."
    return "\n".join(_powered_pilot(_powered_json("pilot.json"), _powered_units("pilot"))).strip()


@block("powered_plan")
def block_powered_plan() -> str:
    """The plan as written (plan.json), the confirmatory units finished so far, the plan's caveats."""
    record = _powered_json("plan.json")
    if record is None:
        return "**Plan**: not written yet (it follows the pilot). No confirmatory result exists."
    plan = record["plan"]
    units = _powered_units("runs")
    lines = [f"**Plan** `{record['sha']}` ({record['status']}), written {record['written']} at commit "
             f"`{(record['code']['commit'] or 'unknown')[:10]}`: arms {', '.join(plan['arms'])}; seeds "
             f"{plan['seeds'][0]}..{plan['seeds'][-1]}; {plan['dtype']}; primary endpoint: "
             f"{plan['endpoints']['primary']}; every evaluated language: "
             f"{_profile(plan['evaluation']['subset']['labels'])}. Stopping rule: {plan['stopping_rule']}", "",
             f"Confirmatory units finished: {len(units)} of {len(plan['arms']) * len(plan['seeds'])} ("
             + (", ".join(sorted(f"{u['arm']}:{u['seed']}" for u in units)) or "none") + ").", ""]  # fmt: skip
    if plan.get("caveats"):
        lines += ["Caveats written into the plan:", "", *[f"- {c}" for c in plan["caveats"]], ""]
    return "\n".join(lines).strip()


@block("powered_report")
def block_powered_report() -> str:
    """The report at the stopping rule's seed count (fig/sib200_powered.json)."""
    rep = _load("sib200_powered.json")
    if not rep:
        return f"No report yet: `{POWERED_CMD.format(phase='report')}` writes `fig/sib200_powered.json`."
    return "\n".join(_powered_report(rep)).strip()


def block_sib200_powered_headline() -> str:
    record = _powered_json("plan.json")
    rep = _load("sib200_powered.json")
    if rep:
        e = rep["summary"]["endpoints"].get("primary: alignment_center - baseline_2x, aligned half", {})
        if e.get("seeds"):
            return (f"- **SIB-200, powered** (Gemma 3 270M, all seven topics, {len(e['seeds'])} seeds so far, "
                    f"preregistered): alignment with the remedy vs the compute-matched baseline on the aligned "
                    f"languages: {e['verdict']} ([page](docs/experiment-sib200-powered.md)).")  # fmt: skip
    state = "plan written, runs under way" if record else "language screen and pilot under way, plan not yet written"
    return (
        f"- **SIB-200, powered** (Gemma 3 270M, all seven topics, randomized language roles): {state}; no "
        "confirmatory result yet ([page](docs/experiment-sib200-powered.md))."
    )
