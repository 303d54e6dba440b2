"""Bias of a generator: which classes does it draw, compared with its training data?

A generative model has no labels to report, so an *evaluation classifier* labels its samples
(:func:`classify`, by default the digits classifier of :func:`genlab.metrics.get_feature_extractor`),
and :func:`group_share` gives the fraction of samples in a group of classes with a bootstrap interval.
Compare it with the group's share in the training set: a larger gap means the model *amplifies* a skew,
a smaller one that it *reduces* it. The classifier has its own errors, so read every share beside the
share it reports for a model trained on balanced data (a control).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ..validation import check_device, check_int, check_probability, check_random_state
from .features import ExtractorLike, as_metric_input, check_extractor, check_input_range, default_classifier

__all__ = ["GroupShare", "classify", "group_share"]


@torch.no_grad()
def classify(images: Any, classifier: ExtractorLike = None, *, batch_size: int = 256,
             device: torch.device | str | None = None) -> torch.Tensor:
    """Labels a classifier gives to ``images``: the argmax of its logits, int64 ``(n,)`` on the CPU.

    Args:
        images: ``(n, 1, H, W)`` or ``(n, H, W)`` in the dataset's units (digits: levels 0..16).
        classifier: ``None`` / ``"digits"`` / ``"mnist"`` (genlab's cached classifier, chosen by the image
            size for ``None``) or a module whose ``forward`` returns class logits ``(n, classes)``.
        batch_size: images per forward pass.
        device: where to run the default classifier (default: genlab's device).
    """
    from ..device import get_device

    batch_size = check_int(batch_size, "batch_size", minimum=1)
    x = as_metric_input(images, "images")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (n, 1, H, W) or (n, H, W), got {tuple(x.shape)}")
    try:
        classifier = check_extractor(classifier)
    except (TypeError, ValueError) as err:
        raise type(err)(f"classifier: {err}") from err
    if classifier is None or isinstance(classifier, str):
        # the module itself (its forward gives logits), not resolve_extractor's feature map
        classifier = default_classifier(classifier, tuple(x.shape[1:]),
                                        check_device(device) if device is not None else get_device())
    model = classifier
    check_input_range(x, model, "images")
    tensors = [*model.parameters(), *model.buffers()] if isinstance(model, torch.nn.Module) else []
    target = tensors[0].device if tensors else torch.device("cpu")
    labels = []
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size].to(target).float())
        if logits.ndim != 2:
            raise ValueError(f"the classifier must return logits (n, classes), got shape {tuple(logits.shape)}")
        labels.append(logits.argmax(1).cpu())
    return torch.cat(labels)


class GroupShare(NamedTuple):
    """Fraction of labels in a group of classes, with a bootstrap percentile interval."""

    share: float
    ci_low: float
    ci_high: float
    n: int


def group_share(labels: Any, group: Any, *, n_bootstrap: int = 1000, confidence: float = 0.95,
                random_state: Any = 0) -> GroupShare:
    """Share of ``labels`` that fall in ``group`` (a set of class indices), with bootstrap uncertainty.

    Args:
        labels: ``(n,)`` integer labels (true labels of training data, or :func:`classify` of samples).
        group: the classes that form the group, e.g. ``range(5, 10)``.
        n_bootstrap: resamples of the labels for the interval.
        confidence: level of the percentile interval.
        random_state: seed (``int``), ``torch.Generator`` or ``None``.
    """
    values = torch.as_tensor(np.asarray(labels)) if not isinstance(labels, torch.Tensor) else labels
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {tuple(values.shape)}")
    if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {values.dtype}")
    try:
        members = sorted({check_int(c, "group", minimum=0) for c in group})
    except TypeError as err:
        if "group" in str(err):
            raise
        raise TypeError(f"group must be an iterable of class indices, got {group!r}") from err
    if not members:
        raise ValueError("group must name at least one class")
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", minimum=10)
    confidence = check_probability(confidence, "confidence", open_low=True, open_high=True)
    generator = check_random_state(random_state)
    inside = torch.isin(values.cpu().long(), torch.tensor(members)).double()
    index = torch.randint(0, len(inside), (n_bootstrap, len(inside)), generator=generator)
    boot = inside[index].mean(1).numpy()
    tail = (1.0 - confidence) / 2
    return GroupShare(float(inside.mean()), float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail)),
                      len(inside))
