"""Where the time of one message goes, per step, on generated notices and on the inbox mix.

    python benchmarks/steps.py [--messages 1000] [--repeat 3] [--profile FILE]

Prints CPU milliseconds per message (best of --repeat; CPU time, so that other work on a shared
machine disturbs the figures less) for each step: mail-parser alone and the
blank tokenizer alone (the floor), our parse, the screen, our tokenizer, each pipeline
component, classification with the record, and the record's JSON. --profile writes a cProfile
of whole triage of the notices.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import tempfile
import time
from pathlib import Path

from complaint_triage.testing.generate import generate, generate_inbox


def _best(repeat: int, count: int, work) -> float:
    """Milliseconds per message of the fastest of REPEAT runs of WORK()."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best * 1000 / count


def measure(raws: list[bytes], repeat: int) -> dict[str, float]:
    """Per-step costs over RAWS."""
    import mailparser
    import spacy

    from complaint_triage.pipeline.extract import extraction_text
    from complaint_triage.pipeline.parse import parse_email
    from complaint_triage.pipeline.senders import profile_sender
    from complaint_triage.pipeline.triage import default_triager

    triager = default_triager()
    nlp, count = triager.nlp, len(raws)
    blank = spacy.blank("en").tokenizer
    texts = [
        "\n".join(m.text_plain) or "\n".join(m.text_html)
        for m in (mailparser.parse_from_bytes(raw) for raw in raws)
    ]
    parsed = [parse_email(raw) for raw in raws]
    ours = [extraction_text(p) for p in parsed]
    senders = [profile_sender(p, triager.tables.senders) for p in parsed]
    screen = getattr(
        triager, "screen", None
    )  # absent in builds before the screen: everything is read in full
    full = [text for text, sender in zip(ours, senders) if screen is None or screen.check(text, sender).full]
    steps = {
        "floor: mail-parser": _best(
            repeat, count, lambda: [mailparser.parse_from_bytes(raw) for raw in raws]
        ),
        "floor: blank tokenizer": _best(repeat, count, lambda: [blank(text) for text in texts]),
        "our parse": _best(repeat, count, lambda: [parse_email(raw) for raw in raws]),
        "screen": _best(repeat, count, lambda: [screen.check(t, s) for t, s in zip(ours, senders)])
        if screen
        else 0.0,
        "share read in full": len(full) / count,
    }
    steps.update(_pipeline_steps(nlp, full, count, repeat))
    records = [triager.triage_bytes(raw) for raw in raws]
    steps["triage in all (parse to record)"] = _best(
        repeat, count, lambda: [triager.triage_bytes(raw) for raw in raws]
    )
    steps["record to JSON"] = _best(
        repeat, count, lambda: [json.dumps(r.to_json_dict(), ensure_ascii=False) for r in records]
    )
    return steps


def _pipeline_steps(nlp, texts: list[str], count: int, repeat: int) -> dict[str, float]:
    """The tokenizer and each component, over the texts read in full, per message of the whole mix."""
    steps = {}

    def tokenise():
        with nlp.memory_zone():
            for text in texts:
                nlp.make_doc(text)

    steps["our tokenizer (in a memory zone)"] = _best(repeat, count, tokenise)
    for name, component in nlp.pipeline:

        def run(component=component, name=name):
            with nlp.memory_zone():
                for text in texts:
                    doc = nlp.make_doc(text)
                    for before, earlier in nlp.pipeline:
                        if before == name:
                            break
                        earlier(doc)
                    started = time.process_time()
                    component(doc)
                    run.spent += time.process_time() - started

        best = float("inf")
        for _ in range(repeat):
            run.spent = 0.0
            run()
            best = min(best, run.spent)
        steps[name] = best * 1000 / count
    return steps


def main() -> None:
    """Print the per-step table for notices and for the inbox mix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of triage over the notices here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        notices = [p.read_bytes() for p in generate(args.messages, Path(scratch) / "notices")]
        inbox = [p.read_bytes() for p in generate_inbox(args.messages, Path(scratch) / "inbox")]
    columns = {"notices": measure(notices, args.repeat), "inbox": measure(inbox, args.repeat)}
    print(f"{'step (ms per message)':<36} {'notices':>8} {'inbox':>8}")
    for step in columns["notices"]:
        print(f"{step:<36} {columns['notices'][step]:>8.3f} {columns['inbox'][step]:>8.3f}")
    if args.profile:
        from complaint_triage.pipeline.triage import default_triager

        triager = default_triager()
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [triager.triage_bytes(raw) for raw in notices])
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
