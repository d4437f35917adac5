"""Deep supervision (Lee et al. 2015, Deeply-Supervised Nets): a linear softmax classifier ("companion")
on every hidden layer adds its cross-entropy to the loss. The companions' mean loss is weighted by
`aux_weight`, decaying linearly to zero over training as in the paper, so the final network is the plain
one; the heads are training-only and never used for evaluation.
"""

import torch
import torch.nn.functional as F

from covbench.components import register
from covbench.components.aux import Aux
from covbench.components.hyper import per_model


def _init_heads(models, depth, width, classes, init_head):
    heads = [init_head(width, classes) for _ in range(depth)]
    return {"head_W": [w for w, _ in heads], "head_b": [b for _, b in heads]}


def _supervise(acts, logits, labels, correct, params, spec, progress):
    weight = per_model(spec["aux_weight"], acts[0], 1) * (1.0 - progress)
    loss = 0.0
    for a, w, b in zip(acts, params["head_W"], params["head_b"]):
        head_logits = torch.baddbmm(b.unsqueeze(1), a, w)
        loss = loss + F.cross_entropy(head_logits.flatten(0, 1), labels.flatten(), reduction="none").view(
            labels.shape
        ).mean(1)
    return weight * loss / len(acts), None, None


register("aux", "deep_supervision")(Aux(_init_heads, _supervise))
