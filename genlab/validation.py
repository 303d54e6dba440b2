"""One validation layer for every public entry of genlab.

Every check raises ``ValueError`` (or ``TypeError`` for a value of the wrong kind) with a message
that names the argument, the rule and the value received, so that a careless call fails at the door
with a sentence a learner can act on, never deep inside torch or NumPy.

NumPy scalars (``np.int64``, ``np.float32``) are accepted wherever a Python number is; ``bool`` is
never a number here (``True`` as a size is almost always a mistake).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np
import torch

#: Largest magnitude accepted in float64 data by default: squares and sums of squares of values
#: beyond it overflow (1e150 ** 2 = 1e300 < 1.8e308), and the caller gets NaN instead of an answer.
MAX_ABS_FLOAT64 = 1e150
#: The same for float32 data (squares stay below 3.4e38).
MAX_ABS_FLOAT32 = 1e18
#: Largest seed torch accepts (seeds are unsigned 64-bit, and we keep them in the signed range).
MAX_SEED = 2**63 - 1


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- scalars
def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python ``int`` if it is an integer in ``[minimum, maximum]``.

    Accepts ``int`` and NumPy integers; rejects ``bool``, floats (even ``3.0``) and strings.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_describe(value)} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_float(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                low_inclusive: bool = True, high_inclusive: bool = True, allow_inf: bool = False) -> float:
    """Return ``value`` as a finite Python ``float`` inside the given bounds.

    Accepts Python and NumPy integers and floats and 0-d tensors; rejects ``bool``, strings, NaN,
    and infinity unless ``allow_inf``.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {_describe(value)} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value:g}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high:g}, got {value:g}")
    return value


def check_positive_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``)."""
    return check_float(value, name, low=0.0, low_inclusive=allow_zero)


def check_probability(value: Any, name: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1]; ``open_low`` / ``open_high`` exclude the end points."""
    return check_float(value, name, low=0.0, high=1.0, low_inclusive=not open_low, high_inclusive=not open_high)


def check_bool(value: Any, name: str) -> bool:
    """A Python or NumPy boolean."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_option(value: Any, name: str, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options``; the error lists the choices."""
    options = tuple(options)
    try:
        ok = value in options
    except Exception:  # unhashable or uncomparable values
        ok = False
    if not ok:
        raise ValueError(f"unknown {name} {_describe(value)}; choose one of {options}")
    return value


def check_optional_int(value: Any, name: str, *, minimum: int | None = None) -> int | None:
    """``None`` or an integer ``>= minimum``."""
    return None if value is None else check_int(value, name, minimum=minimum)


# ----------------------------------------------------------------------------- randomness
def check_seed(seed: Any, name: str = "seed") -> int:
    """A non-negative integer seed that torch accepts (below 2**63)."""
    return check_int(seed, name, minimum=0, maximum=MAX_SEED)


def check_random_state(random_state: Any, name: str = "random_state") -> torch.Generator:
    """A CPU :class:`torch.Generator` from a seed, an existing generator, or ``None`` (fresh entropy).

    This is the one meaning of ``random_state`` across genlab: an ``int`` gives the same stream
    every time, a generator is used (and advanced) as given, ``None`` draws fresh entropy.
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
        return generator
    if isinstance(random_state, np.random.RandomState | np.random.Generator):
        raise TypeError(f"{name} must be an int, a torch.Generator or None; NumPy random states are not "
                        f"supported (pass an int seed instead)")
    generator.manual_seed(check_seed(random_state, name))
    return generator


# ----------------------------------------------------------------------------- arrays and tensors
def check_finite_magnitude(tensor: torch.Tensor, name: str, max_abs: float | None = None) -> torch.Tensor:
    """Reject NaN, infinity and (by default) magnitudes that overflow the dtype's squares."""
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if max_abs is None:
        max_abs = MAX_ABS_FLOAT64 if tensor.dtype == torch.float64 else MAX_ABS_FLOAT32
    if tensor.numel() and tensor.is_floating_point():
        largest = float(tensor.abs().max())
        if largest > max_abs:
            raise ValueError(f"{name} has values of magnitude up to {largest:.3g}, beyond {max_abs:.0e}, where "
                             f"squares overflow {str(tensor.dtype).replace('torch.', '')}; rescale the data")
    return tensor


def _to_tensor(X: Any, name: str) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        return X.detach()
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be an array or tensor of numbers, got a string")
    try:
        array = np.asarray(X)
    except Exception as err:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {err}") from err
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    return torch.as_tensor(array)


def as_float_tensor(X: Any, *, name: str = "X", ndim: int = 2, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None, min_rows: int = 1,
                    max_abs: float | None = None) -> torch.Tensor:
    """Validate ``X`` (NumPy array, list or tensor) and return a floating tensor.

    Checks: numeric and real, ``ndim`` dimensions (a 1-D input becomes one column when
    ``ndim == 2``), at least ``min_rows`` rows and one feature, no NaN or infinity, and no magnitude
    beyond ``max_abs`` (default: :data:`MAX_ABS_FLOAT64` for float64, :data:`MAX_ABS_FLOAT32` else).
    """
    tensor = _to_tensor(X, name)
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got a complex dtype")
    if ndim == 2 and tensor.ndim == 1:
        tensor = tensor.reshape(-1, 1)
    if tensor.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {tensor.shape[0]}")
    if ndim == 2 and tensor.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(tensor.shape)})")
    tensor = tensor.to(dtype=dtype, device=device)
    return check_finite_magnitude(tensor, name, max_abs)


def as_image_tensor(images: Any, name: str = "images", *, channels: int | None = None,
                    value_range: tuple[float, float] | None = None, tolerance: float = 1e-4,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Validate a batch of images ``(n, C, H, W)`` and return it as a floating tensor.

    ``channels`` fixes C; ``value_range`` (low, high) rejects images outside it, e.g. ``(0, 1)`` for
    a model trained on [0, 1] pixels (within ``tolerance``), naming the range found.
    """
    tensor = _to_tensor(images, name)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    if tensor.ndim != 4:
        raise ValueError(f"{name} must have shape (n, C, H, W), got {tuple(tensor.shape)}")
    if channels is not None and tensor.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)})")
    tensor = tensor.to(dtype)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if value_range is not None:
        check_value_range(tensor, name, *value_range, tolerance=tolerance)
    return tensor


def check_value_range(tensor: torch.Tensor, name: str, low: float, high: float, *, tolerance: float = 1e-4) -> None:
    """Raise if any value of ``tensor`` lies outside ``[low, high]`` (within ``tolerance``)."""
    lo, hi = float(tensor.min()), float(tensor.max())
    if lo < low - tolerance or hi > high + tolerance:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got values in [{lo:.4g}, {hi:.4g}]")


def check_labels(y: Any, n_rows: int | None = None, *, n_classes: int | None = None, name: str = "y",
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Integer class labels as a 1-D ``long`` tensor, one per row, each in ``0..n_classes-1``."""
    tensor = _to_tensor(y, name)
    if tensor.is_floating_point():
        if not torch.isfinite(tensor).all() or not torch.equal(tensor, tensor.round()):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
    elif tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{name} must hold integer class labels, got dtype {tensor.dtype}")
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per row), got shape {tuple(tensor.shape)}")
    if n_rows is not None and tensor.shape[0] != n_rows:
        raise ValueError(f"{name} has {tensor.shape[0]} labels for {n_rows} rows")
    tensor = tensor.long().to(device)
    if tensor.numel() and int(tensor.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {int(tensor.min())}")
    if n_classes is not None and tensor.numel() and int(tensor.max()) >= n_classes:
        raise ValueError(f"{name} has label {int(tensor.max())}, but the model knows {n_classes} classes "
                         f"(0..{n_classes - 1})")
    return tensor


def check_class_labels(y: Any, n_rows: int, n_classes: int | None, owner: str, *, required: bool = True,
                       device: torch.device | str | None = None, name: str = "y") -> torch.Tensor | None:
    """Labels for a model that may be class-conditional: ``None`` or a 1-D ``long`` tensor of ``n_rows`` labels.

    Shared by every family with a conditional variant (GAN, VAE, diffusion), so they accept and refuse the
    same things: an unconditional model (``n_classes=None``) refuses labels; a conditional one needs them when
    ``required`` (a diffusion model also has an unconditional branch, so it passes ``required=False``); one
    integer (or a 0-d tensor) means the same label for every row.

    Args:
        y: labels, one per row, or one integer for all rows, or ``None``.
        n_rows: how many rows the labels are for.
        n_classes: the model's number of classes, ``None`` for an unconditional model.
        owner: the model's name, for the error messages.
    """
    if n_classes is None:
        if y is not None:
            raise ValueError(f"{name} was given, but this {owner} is not conditional (n_classes=None)")
        return None
    if y is None:
        if required:
            raise ValueError(f"this {owner} is conditional ({n_classes} classes): pass labels {name} "
                             f"(integers 0..{n_classes - 1})")
        return None
    if isinstance(y, (numbers.Integral, np.integer)) and not isinstance(y, (bool, np.bool_)):
        y = torch.full((n_rows,), check_int(y, name, minimum=0, maximum=n_classes - 1), dtype=torch.long)
    elif isinstance(y, torch.Tensor) and y.ndim == 0:
        y = y.reshape(1).expand(n_rows)
    return check_labels(y, n_rows, n_classes=n_classes, name=name, device=device)


def check_shape(shape: Any, name: str, *, length: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    """A tuple of integers ``>= minimum`` (e.g. an image shape); rejects ``8.7`` rather than rounding."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence | torch.Size | np.ndarray):
        raise TypeError(f"{name} must be a sequence of integers, got {_describe(shape)}")
    if length is not None and len(shape) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(shape)}: {_describe(shape)}")
    return tuple(check_int(size, f"{name}[{i}]", minimum=minimum) for i, size in enumerate(shape))


def check_device(device: Any) -> torch.device:
    """``None`` means genlab's default device (CUDA when present); strings and devices are checked."""
    from .device import get_device

    if isinstance(device, torch.device):
        return device
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', a torch.device or None, "
                        f"got {_describe(device)}")
    return get_device(device)


# ----------------------------------------------------------------------------- estimator input and output
def check_float_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    """``torch.float32`` / ``torch.float64`` from a torch dtype, a NumPy float type or its name."""
    table = {torch.float32: torch.float32, torch.float64: torch.float64, np.float32: torch.float32,
             np.float64: torch.float64, "float32": torch.float32, "float64": torch.float64}
    resolved = None
    if dtype is not None and not isinstance(dtype, torch.dtype):
        try:
            resolved = table.get(np.dtype(dtype).type)
        except TypeError:
            pass
    elif dtype is not None:
        resolved = table.get(dtype)
    if resolved is None:
        raise ValueError(f"{name} must be float32 or float64 (torch, NumPy or a string), got {_describe(dtype)}")
    return resolved


def as_estimator_input(X: Any, *, n_features: int | None = None, estimator: str = "the estimator",
                       name: str = "X", dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None, min_rows: int = 1) -> torch.Tensor:
    """:func:`as_float_tensor` for a scikit-learn-style estimator: also rejects sparse matrices and,
    when ``n_features`` (seen in ``fit``) is given, a 1-D vector or another number of columns."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported: pass a dense array "
                        f"({name}.toarray())")
    if isinstance(X, (list, tuple)) or (not isinstance(X, (torch.Tensor, np.ndarray, str, bytes))
                                        and hasattr(X, "__array__")):
        try:                                               # lists and array-likes (pandas, xarray, ...)
            X = np.asarray(X)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} could not be read as an array (ragged rows?): {err}") from err
    if isinstance(X, np.ndarray) and not X.flags.writeable:
        X = X.copy()                                       # torch cannot wrap read-only memory (memmaps)
    if isinstance(X, np.ndarray) and X.dtype == object:   # numbers stored as objects (e.g. from pandas)
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} has dtype object with entries that are not numbers: {err}") from err
    if np.ndim(X) == 2 and np.shape(X)[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={tuple(np.shape(X))}) while a minimum of 1 is required.")
    if n_features is not None:
        shape = tuple(getattr(X, "shape", np.shape(X) if isinstance(X, (list, tuple)) else ()))
        if len(shape) == 1 and n_features != 1:
            raise ValueError(f"{name} is 1-D with shape {shape} but {estimator} expects {n_features} features. "
                             f"Reshape your data: {name}.reshape(1, -1) for a single sample")
    tensor = as_float_tensor(X, name=name, dtype=dtype, device=device, min_rows=min_rows)
    if n_features is not None and tensor.shape[1] != n_features:
        raise ValueError(f"{name} has {tensor.shape[1]} features, but {estimator} is expecting {n_features} "
                         f"features as input")
    return tensor


def as_output(result: Any, like: Any) -> Any:
    """NumPy in -> NumPy out; torch in -> torch out on the input's device.

    ``result`` is a tensor (or a tuple / list of them, ``None`` kept); ``like`` is the caller's input.
    """
    if isinstance(result, (tuple, list)):
        return type(result)(as_output(item, like) for item in result)
    if result is None or not isinstance(result, torch.Tensor):
        return result
    if isinstance(like, torch.Tensor):
        return result.to(like.device)
    return result.detach().cpu().numpy()


def check_numpy_random_state(random_state: Any, name: str = "random_state") -> np.random.RandomState:
    """The NumPy ``RandomState`` for a fit that scikit-learn code initialises (k-means, variational mixtures).

    An ``int`` in ``[0, 2**32 - 1]`` seeds it (equal seeds give scikit-learn's initialisation), ``None``
    draws fresh entropy, a ``RandomState`` is used as given, a ``torch.Generator`` seeds it from its stream.
    """
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, torch.Generator):
        return np.random.RandomState(int(torch.randint(0, 2**32 - 1, (1,), generator=random_state)))
    if random_state is None:
        return np.random.RandomState()
    return np.random.RandomState(check_int(random_state, name, minimum=0, maximum=2**32 - 1))
