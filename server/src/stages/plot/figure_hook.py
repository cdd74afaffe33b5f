# Written by aisci to .aisci/plot/figure_hook.py and run as `python <it> plot.py`: runs plot.py unchanged, and each time a
# matplotlib figure is saved, appends what it shows (panels, labels, series and their
# values) as one JSON line to the file named by AISCI_FIGURE_LOG. aisci writes captions
# and checks them from that record instead of guessing what plot.py drew.
import json
import math
import os
import runpy
import sys

_LOG = os.environ.pop("AISCI_FIGURE_LOG", "")
_MAX_SERIES = 30
_MAX_VALUES = 30


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _nums(values):
    out = []
    for v in values:
        f = _num(v)
        if f is not None:
            out.append(f)
    return out


def _text(s):
    s = str(s or "").strip()
    return s[:200]


def _bare(label):
    # matplotlib names unlabelled artists "_child0", "_container1", ...
    label = _text(label)
    return "" if label.startswith("_") else label


def _xy(xs, ys):
    pairs = [(x, y) for x, y in zip(xs, ys) if _num(y) is not None]
    ys_ = [_num(y) for _, y in pairs]
    xs_ = [_num(x) for x, _ in pairs]
    d = {"points": len(ys_)}
    if ys_:
        lo = min(range(len(ys_)), key=lambda i: ys_[i])
        hi = max(range(len(ys_)), key=lambda i: ys_[i])
        d.update(first=ys_[0], last=ys_[-1], min=ys_[lo], max=ys_[hi],
                 x_at_min=xs_[lo], x_at_max=xs_[hi])
        known = [x for x in xs_ if x is not None]
        if known:
            d.update(x_min=min(known), x_max=max(known))
    return d


def _panel(ax):
    p = {
        "title": _text(ax.get_title()),
        "xlabel": _text(ax.get_xlabel()),
        "ylabel": _text(ax.get_ylabel()),
        "legend": [],
        "series": [],
    }
    leg = ax.get_legend()
    if leg is not None:
        p["legend"] = [_text(t.get_text()) for t in leg.get_texts()][:_MAX_SERIES]
    series = p["series"]
    for line in ax.get_lines():
        label = _bare(line.get_label())
        try:
            s = _xy(list(line.get_xdata()), list(line.get_ydata()))
        except Exception:
            continue
        s.update(kind="line", label=label)
        series.append(s)
    for c in getattr(ax, "containers", []):
        kind = type(c).__name__
        if kind != "BarContainer":
            continue
        horizontal = getattr(c, "orientation", "vertical") == "horizontal"
        values = [p_.get_width() if horizontal else p_.get_height() for p_ in c.patches]
        tick_labels = ax.get_yticklabels() if horizontal else ax.get_xticklabels()
        ticks = [_text(t.get_text()) for t in tick_labels]
        s = {"kind": "bars", "label": _bare(c.get_label()),
             "points": len(values), "values": _nums(values)[:_MAX_VALUES],
             "categories": [t for t in ticks if t][:_MAX_VALUES]}
        nums = _nums(values)
        if nums:
            s.update(min=min(nums), max=max(nums), first=nums[0], last=nums[-1])
        series.append(s)
    for coll in ax.collections:
        try:
            offsets = coll.get_offsets()
            n = len(offsets)
        except Exception:
            continue
        if n == 0:
            continue
        s = _xy([o[0] for o in offsets], [o[1] for o in offsets])
        s.update(kind="scatter", label=_bare(coll.get_label()))
        series.append(s)
    for im in ax.get_images():
        try:
            shape = list(im.get_array().shape)
        except Exception:
            shape = []
        series.append({"kind": "image", "label": "x".join(str(d) for d in shape), "points": 0})
    p["series"] = series[:_MAX_SERIES]
    return p


def _record(fig, fname):
    if not _LOG or not isinstance(fname, (str, os.PathLike)):
        return
    try:
        panels = [_panel(ax) for ax in fig.get_axes()[:20]]
        entry = {"path": os.path.abspath(os.fspath(fname)), "panels": panels}
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    except Exception:
        pass  # a figure record is a help, never a reason for plot.py to fail


try:
    import matplotlib.figure as _mfig

    _savefig = _mfig.Figure.savefig

    def _savefig_recorded(self, fname, *args, **kwargs):
        result = _savefig(self, fname, *args, **kwargs)
        name = os.fspath(fname) if isinstance(fname, (str, os.PathLike)) else None
        if name is not None and not os.path.splitext(name)[1]:
            fmt = kwargs.get("format") or "png"
            name = name + "." + str(fmt)
        _record(self, name)
        return result

    _mfig.Figure.savefig = _savefig_recorded
except Exception:
    pass  # no matplotlib: plot.py runs exactly as it would alone

sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    raise
except BaseException:
    # Show plot.py's traceback as running it directly would: without this wrapper's frames.
    import traceback

    kind, value, tb = sys.exc_info()
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__ or "runpy" in tb.tb_frame.f_code.co_filename
    ):
        tb = tb.tb_next
    traceback.print_exception(kind, value, tb)
    sys.exit(1)
