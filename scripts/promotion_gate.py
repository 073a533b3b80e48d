"""The retraining's last step: exit 0 when the new model is the champion, else 1 with the gate's reason.

Reads the decision the `register` pipeline wrote (talking_face.registry.PromotionDecision.to_dict()) and,
on GitHub Actions, adds it with the metrics table to the job summary.
Usage: python scripts/promotion_gate.py data/08_reporting/promotion.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TABLE = Path("data/08_reporting/metrics_table.md")


def verdict(decision: dict) -> tuple[bool, str]:
    line = f"{decision['model_name']} version {decision['version']}: {decision['decision']}: {decision['reason']}"
    return bool(decision.get("promoted")), line


def main(path: str) -> int:
    file = Path(path)
    if not file.is_file():
        print(f"promotion gate: {file}: no decision (the run did not reach the register pipeline)", file=sys.stderr)
        return 1
    promoted, line = verdict(json.loads(file.read_text()))
    print(f"promotion gate: {'PASSED' if promoted else 'REFUSED'}: {line}", file=sys.stdout if promoted else sys.stderr)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as out:
            out.write(f"## Promotion gate: {'passed' if promoted else 'refused'}\n\n{line}\n\n")
            if TABLE.is_file():
                out.write(TABLE.read_text() + "\n")
    return 0 if promoted else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
