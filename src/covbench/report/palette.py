"""One colour, line style and marker per method, the same in every figure.

Styles come from the sorted method names of the config, not from the methods a figure happens to show,
so a method keeps its look when a figure holds only some methods or the grid shrinks.
"""

import seaborn as sns

PALETTE = "colorblind"  # seaborn's colour-blind-safe palette of 10 colours
LINESTYLES = ("-", "--", ":", "-.")  # the n-th pass through the palette draws with the n-th style
MARKERS = "osD^vPX<>ph*d8H"


def method_styles(methods: list[str]) -> dict[str, dict]:
    """method -> matplotlib keywords, unique per method for up to 40 methods.

    Beyond the palette's 10 colours a colour is reused with another line style and open markers, so two
    methods of one colour differ in line, marker shape and fill.
    """
    colors = sns.color_palette(PALETTE)
    styles = {}
    for i, method in enumerate(sorted(methods)):
        color, repeat = colors[i % len(colors)], i // len(colors)
        styles[method] = {
            "color": color,
            "linestyle": LINESTYLES[repeat % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
            "markerfacecolor": "white" if repeat else color,
        }
    return styles
