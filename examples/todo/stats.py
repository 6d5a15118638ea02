"""Todo statistics (Python): counts, the progress bar, and a variable other
scripts can watch."""

import kryon


def update_stats(items):
    total = len(items)
    done = sum(1 for item in items if item["done"])
    ratio = done / total if total else 0.0
    longest = max((item["title"] for item in items), key=len, default="")
    try:  # Wren formats the percentage when it is installed
        percent = kryon.call("Format.percent", ratio)
    except Exception:
        percent = f"{ratio:.0%}"
    kryon.set_property("stats", "text", f"{percent} complete; longest: {longest!r}")
    kryon.animate("progress", {"property": "width", "to": round(ratio * 100), "duration": 300, "easing": "ease-out"})
    kryon.set_variable("done_ratio", ratio)
    return {"total": total, "done": done, "ratio": ratio}
