"""One colour, line style and marker per method, the same in every figure.

Styles come from the sorted method names of the config, not from the methods a figure happens to show,
so a method keeps its look when a figure holds only some methods or the grid shrinks.
"""
import seaborn as sns

PALETTE = "colorblind"  # seaborn's colour-blind-safe palette of 10 colours
LINESTYLES = ("-", "--", ":", "-.")  # the n-th pass through the palette draws with the n-th style
MARKERS = "osD^vPX<>ph*dH8"


def method_styles(methods: list[str]) -> dict[str, dict]:
    """method -> matplotlib keywords (color, linestyle, marker), unique per method for up to 40 methods."""
    colors = sns.color_palette(PALETTE)
    styles = {}
    for i, method in enumerate(sorted(methods)):
        styles[method] = {"color": colors[i % len(colors)], "linestyle": LINESTYLES[i // len(colors) % len(LINESTYLES)],
                          "marker": MARKERS[i % len(MARKERS)]}
    return styles
