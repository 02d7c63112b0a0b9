"""Checks every gallery figure before sphinx-gallery saves it; a failed check fails the build.

A figure passes when

* every plot axis that shows numbers has a label with its units in parentheses
  (``"precipitation (mm day-1)"``, ``"lead (frames)"``); axes with named categories as tick
  labels need a label but no units; picture panels (no ticks, or the axis switched off) and
  map panels with labelled gridlines (Cartopy) need neither;
* every coloured field (``pcolormesh``, ``imshow`` of data) has a colour bar that shows its
  colour scale (same colour map and limits), and the colour bar has a label with units;
* no field uses a rainbow colour map (``jet``, ``rainbow``, ...): precipitation and most
  fields read better on a sequential map, differences on a diverging one.

:func:`checked_matplotlib_scraper` is the scraper named in ``docs/conf.py``; it runs
:func:`figure_problems` on each open figure, then hands over to sphinx-gallery's own
matplotlib scraper.
"""

from __future__ import annotations

from typing import Any

RAINBOWS = frozenset({"jet", "rainbow", "hsv", "gist_rainbow", "nipy_spectral", "gist_ncar"})


def _is_colorbar(ax: Any) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _is_picture(ax: Any) -> bool:
    if not ax.axison:
        return True
    return len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0


def _is_map(ax: Any) -> bool:
    return hasattr(ax, "projection") and hasattr(ax, "_gridliners")


def _axis_problem(axis: Any, which: str) -> str | None:
    from matplotlib.ticker import FixedFormatter, NullFormatter

    if not axis.get_visible() or len(axis.get_ticklocs()) == 0:
        return None
    formatter = axis.get_major_formatter()
    if isinstance(formatter, NullFormatter):
        return None
    label = axis.get_label_text().strip()
    if not label:
        return f"the {which} axis has no label"
    categorical = isinstance(formatter, FixedFormatter) or _named_ticks(axis, formatter)
    if not categorical and "(" not in label:
        return f"the {which} axis label {label!r} gives no units in parentheses"
    return None


def _named_ticks(axis: Any, formatter: Any) -> bool:
    """Whether the tick labels are names ("circle", "grass"), not numbers."""
    try:
        labels = [str(formatter(loc, i)) for i, loc in enumerate(axis.get_ticklocs())]
    except (TypeError, ValueError):
        return False
    for label in filter(None, (t.strip() for t in labels)):
        if "$" in label:  # mathtext: 10^{-1} on a log axis
            continue
        try:
            float(label.replace("\u2212", "-").replace(",", ""))
        except ValueError:
            return True
    return False


def _mappables(ax: Any) -> list[Any]:
    found = [im for im in ax.images if im.get_array() is not None]
    found += [c for c in ax.collections if c.get_array() is not None]
    return found


def figure_problems(fig: Any) -> list[str]:
    """What is missing from ``fig``: unlabelled axes, units, colour bars, rainbow maps.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> ax = fig.add_subplot()
    >>> _ = ax.pcolormesh(np.eye(3), cmap="jet")
    >>> len(figure_problems(fig))
    4
    """
    problems: list[str] = []
    colorbars = [ax._colorbar for ax in fig.axes if _is_colorbar(ax)]
    for cb in colorbars:
        if "(" not in cb.ax.get_ylabel() + cb.ax.get_xlabel():
            problems.append("a colour bar has no label with units in parentheses")
    for i, ax in enumerate(fig.axes):
        if _is_colorbar(ax):
            continue
        name = f"axes {i + 1} ({ax.get_title() or 'untitled'})"
        mappables = _mappables(ax)
        if not _is_picture(ax) and not _is_map(ax):
            for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
                problem = _axis_problem(axis, which)
                if problem:
                    problems.append(f"{name}: {problem}")
        elif _is_map(ax) and not ax._gridliners and not ax.get_xlabel():
            problems.append(f"{name}: a map without labelled gridlines or axis labels")
        if _is_picture(ax) and not _is_map(ax):
            continue  # an image shown as a picture (a photo, a saved figure): no colour scale
        for m in mappables:
            cmap = m.get_cmap().name
            if cmap in RAINBOWS:
                problems.append(f"{name}: rainbow colour map {cmap!r}; use a sequential one")
            shown = any(
                cb.mappable is m
                or (cb.mappable.get_cmap().name == cmap and cb.mappable.get_clim() == m.get_clim())
                for cb in colorbars
            )
            if not shown:
                problems.append(f"{name}: a coloured field without a colour bar for its scale")
    return problems


def checked_matplotlib_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: Any) -> str:
    """sphinx-gallery's matplotlib scraper, after :func:`figure_problems` found nothing."""
    import matplotlib.pyplot as plt
    from sphinx_gallery.scrapers import matplotlib_scraper

    for num in plt.get_fignums():
        problems = figure_problems(plt.figure(num))
        if problems:
            where = block_vars.get("src_file", "a gallery example")
            raise ValueError(
                f"{where}: figure {num} is not ready to be looked at: "
                + "; ".join(problems)
                + ". Label every axis with its units, give every coloured field a colour bar "
                "with a label and units, and use a sequential colour map."
            )
    result: str = matplotlib_scraper(block, block_vars, gallery_conf)
    return result
