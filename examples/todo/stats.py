"""Todo statistics (Python): counts, the progress bar, and a variable other
scripts can watch."""

import kryon


def update_stats(items):
    total = len(items)
    done = sum(1 for item in items if item["done"])
    ratio = done / total if total else 0.0
    longest = max((item["title"] for item in items), key=len, default="")
    kryon.set_property("stats", "text", f"{ratio:.0%} complete; longest: {longest!r}")
    kryon.animate("progress", {"property": "width", "to": round(ratio * 100), "duration": 300, "easing": "ease-out"})
    kryon.set_variable("done_ratio", ratio)
    return {"total": total, "done": done, "ratio": ratio}
