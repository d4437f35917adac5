"""The vanishing index of each run, from its layer statistics (docs/design.md#the-vanishing-index and
docs/design.md#the-recurrent-track).

Moved out of covbench.analysis.aggregate because training needs it too: the lambda sweep's training
(covbench.training.lambda_sweep) measures every swept model with it, and aggregate reads every run with it, so it
sits below both.
"""

import numpy as np
import pandas as pd

from covbench.training.contract import RUN_KEYS


def vanishing_index(layer_stats: pd.DataFrame) -> pd.DataFrame:
    """Per run: log10(speed(layer 1) / speed(layer L)) at init and averaged over epoch 1, where an MLP layer's
    speed is its bias_grad_norm (Nielsen) and a recurrent network's layers are its time steps 1..T, whose speed
    is hidden_grad_norm ||dL/dh_t||: the temporal vanishing index of docs/design.md#the-recurrent-track.

    Epoch 1 holds the steps of the first epoch, step 0 included (layer_stats' 0-based epoch 0).
    """
    speed = layer_stats.bias_grad_norm.astype(float)
    if "hidden_grad_norm" in layer_stats:  # a recurrent run's rows have no bias of their own
        speed = speed.fillna(layer_stats.hidden_grad_norm.astype(float))
    layer_stats = layer_stats.assign(speed=speed)
    first = layer_stats[layer_stats.layer == 1]
    last = layer_stats[layer_stats.layer == layer_stats.depth]
    pairs = first.merge(last, on=RUN_KEYS + ["step", "epoch"], suffixes=("_first", "_last"))
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.log10(pairs.speed_first / pairs.speed_last)
    pairs = pairs[RUN_KEYS + ["step", "epoch"]].assign(index=index)
    at_init = pairs[pairs.step == 0].set_index(RUN_KEYS)["index"].rename("vanishing_index_init")
    epoch1 = pairs[pairs.epoch == 0].groupby(RUN_KEYS)["index"].mean().rename("vanishing_index_epoch1")
    return pd.concat([at_init, epoch1], axis=1).reset_index()
