"""Text renderings of the ledger's documents, for people at a terminal."""

from __future__ import annotations

from typing import Any

from ledger.application import Outcome
from ledger.encoding import plain


def outcome(result: Outcome) -> str:
    if result.duplicate:
        return f"{result.command}: duplicate of a command already recorded; nothing recorded (entries {', '.join(result.entry_ids)})"
    lines = [f"{result.command}: recorded entry {result.entry_ids[0]}" + (f" (+{len(result.entry_ids) - 1} more)" if len(result.entry_ids) > 1 else "")]
    lines += [f"  acknowledged protocol deviation {v}" for v in result.deviations]
    return "\n".join(lines)


def patient(doc: dict[str, Any]) -> str:
    d = plain(doc)
    lines = [f"Patient {d['patient_id']}  (phase {d['phase']}, stratum {d['stratum']}, {d['diagnosis']})"]
    keys = [
        "status", "dose_level_mg", "current_dose_mg", "cycle", "bosutinib_doses", "ino_infusions", "ino_total_mg_m2",
        "ino_schedule", "best_response", "first_response_on", "mrd_negative", "dlt", "treatment_ended_on",
        "end_reason", "died_on", "deviations", "entries", "valid_on", "as_of",
    ]
    lines += [f"  {k:<20} {d[k]}" for k in keys if d.get(k) is not None]
    fu = d["follow_up"]
    lines.append(f"  {'follow_up':<20} visits {fu['visits']}, missed {fu['missed']}, next due {fu['next_due_on']} (window closes {fu['window_closes_on']})")
    for t in d["toxicities"]:
        lines.append(f"  toxicity  {t['onset_on']}  {t['term']} grade {t['grade']}{'  DLT' if t['dlt'] else ''}  [{t['entry_id']}]")
    for s in d.get("signatures", []):
        covers = f"cycle {s['cycle']}" if s["scope"] == "CYCLE" else s["scope"].lower()
        lines.append(f"  signed    {s['signed_at']}  {covers} {s['meaning']} by {s['printed_name']} ({s['signer']})  {s['status']}  [{s['entry_id']}]")
    return "\n".join(lines)


def history(doc: dict[str, Any]) -> str:
    d = plain(doc)
    lines = [f"History of patient {d['patient_id']} ({len(d['entries'])} entries, oldest first)"]
    for e in d["entries"]:
        facts = ", ".join(f"{k}={v}" for k, v in e["data"].items() if v not in (None, [], {}) and k != "patient_id")
        why = f"  reason: {e['reason']}" if e["reason"] else ""
        src = f"  source: {e['source']}" if e["source"] else ""
        lines.append(f"#{e['position']:<6} {e['occurred_on']}  {e['type']:<26} {facts}")
        lines.append(f"        recorded {e['recorded_at']} by {e['recorded_by']} ({e['role']})  entry {e['entry_id']}{why}{src}")
    return "\n".join(lines)


def escalation(doc: dict[str, Any]) -> str:
    d = plain(doc)
    if not d["strata"]:
        return "No phase I escalation has started."
    out = []
    for s in d["strata"]:
        out.append(f"Stratum {s['stratum']}: {s['status']}, current level {s['current_dose_mg']} mg, MTD {s['mtd_mg'] or '-'}")
        out.append(f"  next action: {s['next_action'] or '-'}" + (f" ({s['next_action_why']})" if s["next_action_why"] else ""))
        out.append(f"  {'dose mg':>8} {'patients':>9} {'evaluable':>10} {'DLTs':>5}  decision")
        for lv in s["levels"]:
            out.append(f"  {lv['dose_mg']:>8} {lv['patients']:>9} {lv['evaluable']:>10} {lv['dlts']:>5}  {lv['decision'] or '-'}")
    return "\n".join(out)


def decisions(doc: dict[str, Any]) -> str:
    d = plain(doc)
    if not d["decisions"]:
        return "No escalation decision has been recorded."
    out = []
    for x in d["decisions"]:
        mtd = f", MTD {x['mtd_mg']} mg" if x["mtd_mg"] else ""
        flag = "  ** BASIS CHANGED **" if x["basis_changed"] else ""
        out.append(f"{x['decided_on']}  stratum {x['stratum']}  {x['dose_mg']} mg: {x['decision']}{mtd}{flag}")
        out.append(f"    by {x['recorded_by']} ({x['role']}) at {x['recorded_at']}  entry {x['entry_id']}")
        out.append(f"    rule then: {x['recommended_then']}; rule now: {x['recommended_now']}; rested on {len(x['basis'])} entries")
        if x["basis_changed"]:
            added = sorted(set(x["basis_now"]) - set(x["basis"]))
            gone = sorted(set(x["basis"]) - set(x["basis_now"]))
            out.append(f"    facts since: +{', '.join(added) or '-'}  -{', '.join(gone) or '-'}")
    return "\n".join(out)


def audit(doc: dict[str, Any]) -> str:
    d = plain(doc)
    lines = [f"{'pos':>7}  {'recorded_at':<32} {'by':<20} {'role':<13} {'event':<26} {'patient':<8} detail"]
    for e in d["entries"]:
        detail = f"{e['field']}: {e['old_value']} -> {e['new_value']}" if e["field"] else ""
        if e["reason"]:
            detail += f"  reason: {e['reason']}"
        lines.append(
            f"{e['position']:>7}  {e['recorded_at']:<32} {e['recorded_by']:<20} {e['role']:<13} {e['event_type']:<26} {e['patient_id'] or '-':<8} {detail}"
        )
    return "\n".join(lines)


def summary(doc: dict[str, Any]) -> str:
    d = plain(doc)
    lines = [f"Trial summary on {d['valid_on']}: {d['patients']} patients"]
    lines += [f"  phase {e['phase']:<3} stratum {e['stratum']:<12} {e['patients']:>4} enrolled" for e in d["enrolled"]]
    lines.append("  status:        " + ", ".join(f"{k} {v}" for k, v in d["status"].items()))
    lines.append("  best response: " + (", ".join(f"{k} {v}" for k, v in d["best_response"].items()) or "-"))
    return "\n".join(lines)


def schedule(doc: dict[str, Any]) -> str:
    d = plain(doc)
    if not d["items"]:
        return f"Nothing is pending (today is {d['today']})."
    lines = [f"{'due':<11} {'':<8} {'patient':<10} {'action':<46} {'window closes':<14} command id"]
    for x in d["items"]:
        what = x["action"] + (f" (visit {x['visit']}, due {x['visit_due_on']})" if x["visit"] else "")
        lines.append(f"{x['due_on']:<11} {'OVERDUE' if x['overdue'] else '':<8} {x['patient_id']:<10} {what:<46} {x['window_closes_on']:<14} {x['command_id']}")
    return "\n".join(lines)
