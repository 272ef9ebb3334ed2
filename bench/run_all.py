"""`make bench`: the data, export, API, sources and consent-storing benchmarks; one JSON object,
last line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def last_json(script: str) -> dict:
    output = subprocess.run(
        [sys.executable, str(HERE / script)], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    figures = last_json("bench_data.py")
    figures.update(last_json("bench_exports.py"))
    figures.update(last_json("bench_api.py"))
    figures.update(last_json("bench_sources.py"))
    figures.update(last_json("bench_consent.py"))
    print(json.dumps(figures))
