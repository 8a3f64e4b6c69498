"""Per-hop latency of Score from inference's own histograms, between two /metrics scrapes.

    python3 hops.py BEFORE.txt AFTER.txt   ->  "score p50/p99 | fetch p50/p99 | model p50/p99" (ms)

Each histogram's bucket counts are differenced (only the requests between the scrapes count)
and the quantile is interpolated linearly inside its bucket, as Prometheus' histogram_quantile
does; the buckets double from 0.1 ms, so a figure is good to within its bucket. `fetch` is the
feature-service hop as inference sees it (client, network, server, Redis); `model` the scoring
(and explanations, on the blocking pool).
"""

import re
import sys

NAMES = [
    ("score", "vigil_inference_score_seconds"),
    ("fetch", "vigil_inference_feature_fetch_seconds"),
    ("model", "vigil_inference_model_seconds"),
]
LINE = re.compile(r'^(\w+)_bucket\{le="([^"]+)"\} (\S+)$')


def buckets(path):
    out = {}
    for line in open(path):
        m = LINE.match(line.strip())
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            out.setdefault(m.group(1), []).append((le, float(m.group(3))))
    return out


def quantile(q, cumulative):
    total = cumulative[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in cumulative:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_le, prev_c = le, c
    return prev_le


def main(before, after):
    b0, b1 = buckets(before), buckets(after)
    parts = []
    for label, name in NAMES:
        if name not in b1:
            sys.exit(f"{name} is not in {after}")
        start = dict(b0.get(name, []))
        delta = [(le, c - start.get(le, 0.0)) for le, c in sorted(b1[name])]
        p50, p99 = (quantile(q, delta) * 1e3 for q in (0.5, 0.99))
        parts.append(f"{label} {p50:.2f}/{p99:.2f}")
    print(" · ".join(parts))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
