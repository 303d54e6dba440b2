"""Mixture models fitted by expectation-maximisation, in torch.

* :class:`GaussianMixture` -- the scikit-learn estimator's conventions (same
  parameters, fitted attributes, lower bound, convergence rule, initialisation
  from the same ``random_state``), computed in torch on the CPU or on CUDA.
  Every step is vectorised over components: one GEMM for the Mahalanobis terms
  of all components, one batched Cholesky and one batched triangular solve for
  the precisions.
* :class:`CategoricalMixture` -- a mixture of independent categoricals per
  dimension (Bernoulli with ``n_categories=2``), fitted by MAP-EM with a
  symmetric Dirichlet (add-``alpha``) smoothing; a density model for discrete
  images such as the 8x8 digits with 17 grey levels.

Both are scikit-learn estimators (``BaseEstimator`` + ``DensityMixin``: ``get_params``,
``set_params``, ``clone``, pipelines and grid searches work) and share the EM driver in
:class:`_BaseMixture`: ``n_init`` restarts, the lower bound is the mean log-likelihood per sample
measured in the E-step (as in scikit-learn, so it belongs to the parameters *before* the last
M-step), convergence when its change is below ``tol``, and the best restart is kept.

Input and output types follow the library contract: NumPy in, NumPy out; torch in, torch out on
the input's device. ``sample`` returns the type the model was fitted on.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning

from .base import NotFittedError
from .numerics import LOG_2PI
from .validation import (
    as_estimator_input,
    as_float_tensor,
    as_output,
    check_bool,
    check_device,
    check_float,
    check_float_dtype,
    check_int,
    check_numpy_random_state,
    check_option,
    check_random_state,
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "random")
# Largest intermediate (rows x components x features) built at once; bigger inputs are
# processed in blocks of rows so a 10^6 x 64 x 50 fit fits in GPU memory.
_BLOCK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 27}


def _row_blocks(n_rows: int, per_row: int, device: torch.device) -> list[slice]:
    """Slices of rows such that ``rows * per_row`` stays under the device's block budget."""
    budget = _BLOCK_ELEMENTS.get(device.type, _BLOCK_ELEMENTS["cpu"])
    step = max(1, budget // max(per_row, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


class _BaseMixture(DensityMixin, BaseEstimator):
    """EM driver shared by the mixtures: restarts, convergence, prediction, scores, BIC/AIC.

    Subclasses implement ``_check_parameters``, ``_validate_X``, ``_initialize``,
    ``_estimate_log_prob`` (per-component log-densities, ``(n, K)``), ``_m_step``,
    ``_parameter_names``, ``_count_parameters`` and ``_sample_components``.
    """

    _fitted_attribute = "weights_"

    # ------------------------------------------------------------------ parameters and data
    def _check_common_parameters(self) -> None:
        check_int(self.n_components, "n_components", minimum=1)
        check_float(self.tol, "tol", low=0.0)
        check_int(self.max_iter, "max_iter", minimum=0)
        check_int(self.n_init, "n_init", minimum=1)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        check_bool(self.verbose, "verbose")
        self.dtype_ = check_float_dtype(self.dtype)

    def _check_parameters(self, X: torch.Tensor) -> None:
        raise NotImplementedError

    def _validate_X(self, X: Any, device: torch.device, fitted: bool = False) -> torch.Tensor:
        n_features = self.n_features_in_ if fitted else None
        return as_estimator_input(X, n_features=n_features, estimator=type(self).__name__, dtype=self.dtype_,
                                  device=device)

    def _prepare(self, X: torch.Tensor) -> torch.Tensor:
        """The representation of validated ``X`` that the E- and M-steps use (default: ``X`` itself)."""
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _validated(self, X: Any) -> torch.Tensor:
        """``X`` checked for a fitted model (device, dtype, number of features), then prepared."""
        self._check_fitted()
        return self._prepare(self._validate_X(X, self.device_, fitted=True))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False   # a fixed random_state gives the same fit
        return tags

    # ------------------------------------------------------------------ EM
    def _initial_responsibilities(self, X: torch.Tensor, random_state: np.random.RandomState) -> torch.Tensor:
        """Hard k-means labels or random responsibilities, drawn exactly as scikit-learn draws them."""
        n_samples = X.shape[0]
        if self.init_params == "kmeans":
            from sklearn.cluster import KMeans

            # k-means runs on the CPU with scikit-learn, seeded from the same RandomState stream
            # as scikit-learn's GaussianMixture, so equal random_state gives equal labels.
            labels = KMeans(n_clusters=self.n_components, n_init=1, random_state=random_state) \
                .fit(X.detach().cpu().double().numpy()).labels_
            resp = torch.zeros(n_samples, self.n_components, dtype=X.dtype, device=X.device)
            resp[torch.arange(n_samples, device=X.device), torch.as_tensor(labels, device=X.device)] = 1
            return resp
        resp = torch.as_tensor(random_state.uniform(size=(n_samples, self.n_components)), dtype=X.dtype,
                               device=X.device)
        return resp / resp.sum(1, keepdim=True)

    def _weighted_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        return self._estimate_log_prob(X).add_(torch.log(self.weights_))

    def _estimate_log_prob_resp(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weighted = self._weighted_log_prob(X)
        log_norm = torch.logsumexp(weighted, dim=1)
        if not torch.isfinite(log_norm).all():
            # Only reachable for points so far from every component that each log-density
            # underflows to -inf (the validation layer already caps magnitudes at 1e150).
            raise ValueError("X has rows whose log-density under every component overflows (they lie "
                             "astronomically far from the fitted components); rescale X")
        return log_norm, weighted.sub_(log_norm[:, None])

    def _log_prior(self, n_samples: int) -> float:
        """Log prior per sample of the current parameters (MAP variants); EM maximises the
        mean log-likelihood plus this."""
        return 0.0

    def fit(self, X: Any, y: Any = None) -> _BaseMixture:
        """Fit the mixture by EM (``n_init`` restarts, the best lower bound kept); return ``self``.

        ``y`` is ignored (present for scikit-learn pipelines).
        """
        self._fit(X)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray | torch.Tensor:
        """Fit by EM and return the most probable component of each row of ``X``."""
        return as_output(self._fit(X), X)

    def _fit(self, X_in: Any) -> torch.Tensor:
        """Fit; return the final labels as a tensor on ``device_``.

        Raises:
            ValueError / TypeError: bad parameters, NaN/inf or non-2-D ``X``, fewer than two rows,
                or more components than rows.
        """
        self._check_common_parameters()
        device = check_device(self.device)
        random_state = check_numpy_random_state(self.random_state)
        X = self._validate_X(X_in, device)
        n_samples = X.shape[0]
        if n_samples < 2:
            raise ValueError(f"X needs at least 2 samples to fit a mixture, got n_samples={n_samples}")
        if self.n_components > n_samples:
            raise ValueError(f"n_components={self.n_components} is larger than the number of samples "
                             f"n_samples={n_samples}; use at most {n_samples} components")
        self.device_ = device
        self.n_features_in_ = X.shape[1]
        self._check_parameters(X)
        self._torch_io = isinstance(X_in, torch.Tensor)
        data = self._prepare(X)
        best_params, best_bound, best_bounds, best_iter, best_converged = None, -math.inf, [], 0, False
        for init in range(self.n_init):
            if self.verbose:
                print(f"Initialization {init}")
            self._initialize(X, data, random_state)
            bound, bounds, converged, n_iter = -math.inf, [], False, 0
            for n_iter in range(1, self.max_iter + 1):
                previous = bound
                log_norm, log_resp = self._estimate_log_prob_resp(data)
                prior = self._log_prior(data.shape[0])
                self._m_step(data, log_resp.exp_())
                bound = log_norm.mean().item() + prior
                bounds.append(bound)
                if self.verbose:
                    print(f"  iteration {n_iter}: lower bound {bound:.6f} (change {bound - previous:.3e})")
                if abs(bound - previous) < self.tol:
                    converged = True
                    break
            if best_params is None or bound > best_bound:
                best_params = {name: getattr(self, name) for name in self._parameter_names()}
                best_bound, best_bounds, best_iter, best_converged = bound, bounds, n_iter, converged
        if not best_converged and self.max_iter > 0:
            warnings.warn(f"{type(self).__name__}: the best initialisation did not converge in "
                          f"max_iter={self.max_iter} iterations (tol={self.tol}); increase max_iter or tol",
                          ConvergenceWarning, stacklevel=3)
        for name, value in best_params.items():
            setattr(self, name, value)
        self._after_fit()
        self.converged_, self.n_iter_ = best_converged, best_iter
        self.lower_bound_, self.lower_bounds_ = best_bound, best_bounds
        # A final E-step so fit_predict(X) equals fit(X).predict(X), as in scikit-learn.
        return self._weighted_log_prob(data).argmax(1)

    def _after_fit(self) -> None:
        """Hook run once the best parameters are set."""

    # ------------------------------------------------------------------ inference
    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """Log-density ``log p(x)`` of each row of ``X``, in nats."""
        return as_output(self._estimate_log_prob_resp(self._validated(X))[0], X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per row of ``X`` (nats)."""
        return float(self._estimate_log_prob_resp(self._validated(X))[0].mean())

    def predict(self, X: Any) -> np.ndarray | torch.Tensor:
        """Most probable component of each row of ``X``."""
        return as_output(self._weighted_log_prob(self._validated(X)).argmax(1), X)

    def predict_proba(self, X: Any) -> np.ndarray | torch.Tensor:
        """Responsibilities ``p(component | x)``, shape ``(n, n_components)``."""
        return as_output(self._estimate_log_prob_resp(self._validated(X))[1].exp(), X)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better; Schwarz, 1978)."""
        data = self._validated(X)
        n = data.shape[0]
        return -2 * float(self._estimate_log_prob_resp(data)[0].mean()) * n + self.n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        data = self._validated(X)
        n = data.shape[0]
        return -2 * float(self._estimate_log_prob_resp(data)[0].mean()) * n + 2 * self.n_parameters()

    def sample(self, n_samples: int = 1, *, random_state: int | torch.Generator | None = None
               ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Draw ``n_samples`` points; returns ``(X, labels)`` with rows grouped by component.

        The grouping follows scikit-learn's ``sample``; to show a few samples, pick them at random rather
        than taking the first rows (which all come from component 0).

        ``random_state``: an ``int`` (the same draws every call), a ``torch.Generator`` (advanced)
        or ``None`` (fresh entropy). Returns NumPy arrays if the model was fitted on NumPy data,
        torch tensors on ``device_`` if it was fitted on a tensor.
        """
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        picks = torch.multinomial(self.weights_.cpu(), n_samples, replacement=True, generator=generator)
        counts = torch.bincount(picks, minlength=self.n_components)
        labels = torch.repeat_interleave(torch.arange(self.n_components), counts)
        X = self._sample_components(labels.to(self.device_), counts.tolist(), generator)
        like = torch.empty(0, device=self.device_) if self._torch_io else None
        return as_output((X, labels.to(self.device_)), like)

    # ------------------------------------------------------------------ hooks
    def _parameter_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _initialize(self, X: torch.Tensor, data: torch.Tensor, random_state: np.random.RandomState) -> None:
        """Set initial parameters; ``X`` is the validated input, ``data`` its prepared form."""
        raise NotImplementedError

    def _estimate_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _m_step(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        raise NotImplementedError

    def n_parameters(self) -> int:
        """Number of free parameters of the fitted model (what BIC and AIC count)."""
        self._check_fitted()
        return self._count_parameters()

    def _count_parameters(self) -> int:
        raise NotImplementedError

    def _sample_components(self, labels: torch.Tensor, counts: list[int], generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

# ============================================================================ Gaussian
def _log_gaussian_prob(X: torch.Tensor, means: torch.Tensor, prec_chol: torch.Tensor,
                       covariance_type: str) -> torch.Tensor:
    """``log N(x_n | mu_k, Sigma_k)`` for all rows and components, shape ``(n, K)``.

    ``prec_chol`` is the upper-triangular ``U`` with ``precision = U U^T`` (scikit-learn's
    ``precisions_cholesky_``), so ``(x - mu)^T P (x - mu) = ||(x - mu) U||^2``.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    if covariance_type in ("full", "tied"):
        if covariance_type == "full":
            log_det = torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(-1)
            # All components in one GEMM: X (n, d) @ [U_1 ... U_K] (d, K d).
            stacked = prec_chol.permute(1, 0, 2).reshape(n_features, n_components * n_features)
            mean_proj = torch.einsum("kd,kde->ke", means, prec_chol)
        else:
            log_det = torch.log(torch.diagonal(prec_chol)).sum().expand(n_components)
            stacked, mean_proj = prec_chol, means @ prec_chol
        maha = torch.empty(n_samples, n_components, dtype=X.dtype, device=X.device)
        for rows in _row_blocks(n_samples, n_components * n_features, X.device):
            projected = (X[rows] @ stacked).view(-1, n_components if covariance_type == "full" else 1, n_features)
            # In-place subtract and square: these (rows, K, d) passes are the E-step's memory traffic.
            diff = projected.sub_(mean_proj) if covariance_type == "full" else projected - mean_proj
            maha[rows] = diff.square_().sum(-1)
    elif covariance_type == "diag":
        precisions = prec_chol ** 2
        log_det = torch.log(prec_chol).sum(1)
        # scikit-learn's expansion sum(mu^2 p) - 2 x.(mu p) + x^2.p, as two fused matrix products.
        maha = torch.addmm((means ** 2 * precisions).sum(1), X, (means * precisions).T, alpha=-2.0)
        maha.addmm_(X * X, precisions.T)
    else:
        precisions = prec_chol ** 2
        log_det = n_features * torch.log(prec_chol)
        maha = torch.addmm((means ** 2).sum(1), X, means.T, alpha=-2.0)
        maha.add_((X * X).sum(1, keepdim=True)).mul_(precisions)
    # -0.5 (d log 2 pi + maha) + log_det, in place: (n, K) passes are what small-d fits spend time on.
    return maha.mul_(-0.5).add_(log_det - 0.5 * n_features * LOG_2PI)


class GaussianMixture(_BaseMixture):
    """Gaussian mixture fitted by EM {cite}`dempster1977maximum`, with scikit-learn's conventions.

    Args:
        n_components: number of Gaussians.
        covariance_type: ``"full"`` (one matrix each), ``"tied"`` (one shared matrix),
            ``"diag"`` (diagonal each) or ``"spherical"`` (one variance each).
        tol: stop when the mean log-likelihood per sample changes by less than this.
        reg_covar: added to covariance diagonals; keeps them positive definite.
        max_iter: EM iterations per initialisation (0 keeps the initial parameters).
        n_init: restarts; the one with the highest lower bound is kept.
        init_params: ``"kmeans"`` (hard k-means labels, scikit-learn's KMeans on the CPU) or
            ``"random"`` (random responsibilities).
        weights_init, means_init, precisions_init: optional initial parameters (shapes as in
            scikit-learn); when all three are given, no initial responsibilities are drawn.
        random_state: of the initialisation: an int seed (the same value gives the same
            initialisation as ``sklearn.mixture.GaussianMixture``), a ``numpy.random.RandomState``,
            a ``torch.Generator`` or None. Sampling takes its own ``random_state`` (see :meth:`sample`).
        device: where to compute (None: CUDA when present); dtype: float64 (default) or float32
            (a NumPy, torch or string name). Both are checked at ``fit``, which sets ``device_``.

    Fitted attributes: ``weights_``, ``means_``, ``covariances_``, ``precisions_cholesky_``,
    ``precisions_``, ``converged_``, ``n_iter_``, ``lower_bound_``, ``lower_bounds_`` (torch tensors
    on ``device_``; the bounds are floats). Degenerate components get extra jitter on their
    diagonal and a warning naming them, never NaN.
    """

    def __init__(self, n_components: int = 1, covariance_type: str = "full", tol: float = 1e-3,
                 reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 weights_init: Any = None, means_init: Any = None, precisions_init: Any = None,
                 random_state: Any = None, device: torch.device | str | None = None,
                 dtype: Any = np.float64, verbose: bool = False):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_parameters(self, X: torch.Tensor) -> None:
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_float(self.reg_covar, "reg_covar", low=0.0)
        n_components, n_features = self.n_components, X.shape[1]
        options = dict(dtype=self.dtype_, device=X.device)
        self._weights_init = self._means_init = self._precisions_init = None
        if self.weights_init is not None:
            weights = as_float_tensor(self.weights_init, name="weights_init", ndim=1, **options)
            if weights.shape != (n_components,):
                raise ValueError(f"weights_init must have shape ({n_components},), got {tuple(weights.shape)}")
            if (weights < 0).any() or (weights > 1).any() or abs(weights.sum().item() - 1) > 1e-6:
                raise ValueError("weights_init must be in [0, 1] and sum to 1, "
                                 f"got values in [{weights.min().item():.4g}, {weights.max().item():.4g}] "
                                 f"summing to {weights.sum().item():.6g}")
            self._weights_init = weights
        if self.means_init is not None:
            means = as_float_tensor(self.means_init, name="means_init", **options)
            if means.shape != (n_components, n_features):
                raise ValueError(f"means_init must have shape ({n_components}, {n_features}), "
                                 f"got {tuple(means.shape)}")
            self._means_init = means
        if self.precisions_init is not None:
            self._precisions_init = self._check_precisions(self.precisions_init, n_features, options)

    def _check_precisions(self, precisions: Any, n_features: int, options: dict) -> torch.Tensor:
        shapes = {"full": (self.n_components, n_features, n_features), "tied": (n_features, n_features),
                  "diag": (self.n_components, n_features), "spherical": (self.n_components,)}
        expected = shapes[self.covariance_type]
        precisions = as_float_tensor(precisions, name="precisions_init", ndim=len(expected), **options)
        if precisions.shape != expected:
            raise ValueError(f"precisions_init for covariance_type={self.covariance_type!r} must have shape "
                             f"{expected}, got {tuple(precisions.shape)}")
        if self.covariance_type in ("full", "tied"):
            symmetric = torch.allclose(precisions, precisions.mT)
            if not symmetric or (torch.linalg.cholesky_ex(precisions).info > 0).any():
                raise ValueError("precisions_init must be symmetric positive-definite matrices")
        elif (precisions <= 0).any():
            raise ValueError("precisions_init must be positive")
        return precisions

    # ------------------------------------------------------------------ parameters
    def _parameter_names(self) -> tuple[str, ...]:
        return ("weights_", "means_", "covariances_", "precisions_cholesky_")

    @property
    def precisions_(self) -> torch.Tensor:
        """Precision matrices (inverse covariances), from ``precisions_cholesky_``."""
        self._check_fitted()
        chol = self.precisions_cholesky_
        return chol @ chol.mT if self.covariance_type in ("full", "tied") else chol ** 2

    def _initialize(self, X: torch.Tensor, data: torch.Tensor, random_state: np.random.RandomState) -> None:
        given = (self._weights_init, self._means_init, self._precisions_init)
        if any(value is None for value in given):
            resp = self._initial_responsibilities(X, random_state)
            weights, means, covariances = self._estimate_parameters(X, resp)
            weights = weights / X.shape[0]
        self.weights_ = weights if self._weights_init is None else self._weights_init.clone()
        self.means_ = means if self._means_init is None else self._means_init.clone()
        if self._precisions_init is None:
            self.covariances_ = covariances
            self.precisions_cholesky_ = self._precision_cholesky(covariances, self.means_)
        else:
            self.precisions_cholesky_ = self._cholesky_from_precisions(self._precisions_init)
            self.covariances_ = self._covariances_from_cholesky(self.precisions_cholesky_)

    def _cholesky_from_precisions(self, precisions: torch.Tensor) -> torch.Tensor:
        """Upper ``U`` with ``P = U U^T``: the Cholesky of the index-reversed ``P``, reversed back."""
        if self.covariance_type in ("full", "tied"):
            flipped = torch.flip(precisions, dims=(-2, -1))
            return torch.flip(torch.linalg.cholesky(flipped), dims=(-2, -1))
        return torch.sqrt(precisions)

    def _covariances_from_cholesky(self, prec_chol: torch.Tensor) -> torch.Tensor:
        if self.covariance_type in ("full", "tied"):
            inverse = torch.linalg.solve_triangular(prec_chol, torch.eye(prec_chol.shape[-1], dtype=prec_chol.dtype,
                                                                         device=prec_chol.device), upper=True)
            return inverse.mT @ inverse
        return 1.0 / prec_chol ** 2

    def _estimate_parameters(self, X: torch.Tensor, resp: torch.Tensor):
        """M-step estimates ``(nk, means, covariances)``, the formulas scikit-learn uses."""
        nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
        means = (resp.T @ X) / nk[:, None]
        reg = self.reg_covar
        if self.covariance_type == "full":
            n_components, n_features = means.shape
            covariances = torch.zeros(n_components, n_features, n_features, dtype=X.dtype, device=X.device)
            for rows in _row_blocks(X.shape[0], n_components * n_features, X.device):
                # sqrt(r) (x - mu) for all components at once, then one batched product: the centred
                # sum of scikit-learn's per-component loop with a single (K, m, d) temporary.
                diff = X[rows].unsqueeze(0) - means.unsqueeze(1)
                diff.mul_(resp[rows].T.sqrt().unsqueeze(-1))
                covariances += diff.mT @ diff
            covariances /= nk[:, None, None]
            covariances.diagonal(dim1=-2, dim2=-1).add_(reg)
        elif self.covariance_type == "tied":
            covariances = (X.T @ X - (nk * means.T) @ means) / nk.sum()
            covariances.diagonal().add_(reg)
        else:
            covariances = (resp.T @ (X * X)) / nk[:, None] - means ** 2 + reg
            if self.covariance_type == "spherical":
                covariances = covariances.mean(1)
        return nk, means, covariances

    def _precision_cholesky(self, covariances: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """``precisions_cholesky_`` from covariances; singular components get jitter and a warning.

        A variance is only known to about ``eps * (variance + mean^2)`` (the M-step subtracts a
        squared mean from a second moment), so a component whose variances, or Cholesky pivots,
        fall below that is numerically singular: it has collapsed onto too few distinct points.
        Such components (only those) get jitter on their diagonal, grown tenfold until they pass.
        """
        eps = torch.finfo(covariances.dtype).eps
        full = self.covariance_type in ("full", "tied")
        variances = covariances.diagonal(dim1=-2, dim2=-1) if full else covariances
        squared_means = means ** 2 if self.covariance_type != "tied" else (means ** 2).reshape(1, -1)
        if self.covariance_type == "spherical":
            magnitude = variances.abs() + squared_means.mean(-1)
        else:
            magnitude = variances.abs().reshape(squared_means.shape[0], -1).mean(-1) + squared_means.mean(-1)
        noise = 16 * eps * magnitude                                    # (K,), or (1,) when tied
        jitter = torch.clamp(1e6 * noise, min=max(self.reg_covar, eps))
        if not full:
            bad = variances <= (noise if variances.ndim == 1 else noise[:, None])
            if bad.any():
                floor = jitter if variances.ndim == 1 else jitter[:, None].expand_as(variances)
                covariances.copy_(torch.where(bad, floor, covariances))
                self._warn_singular(torch.nonzero(bad.reshape(len(noise), -1).any(1)).flatten().tolist(),
                                    float(floor[bad].max()))
            return 1.0 / torch.sqrt(covariances)
        batched = covariances if covariances.ndim == 3 else covariances.unsqueeze(0)  # a view: repairs stick
        eye = torch.eye(batched.shape[-1], dtype=batched.dtype, device=batched.device)
        repaired = torch.zeros(len(noise), dtype=torch.bool, device=batched.device)
        for _ in range(16):
            chol, info = torch.linalg.cholesky_ex(batched)
            bad = (info > 0) | (chol.diagonal(dim1=-2, dim2=-1).square().amin(-1) <= noise)
            if not bad.any():
                break
            batched[bad] += jitter[bad, None, None] * eye
            repaired |= bad
            jitter = torch.where(bad, jitter * 10, jitter)
        else:
            raise ValueError("covariance matrices stay singular even with large jitter; scale the data "
                             "or use fewer components")
        if repaired.any():
            names = torch.nonzero(repaired).flatten().tolist() if self.covariance_type == "full" else ["tied"]
            self._warn_singular(names, float(jitter[repaired].max() / 10))
        prec_chol = torch.linalg.solve_triangular(chol, eye.expand_as(batched), upper=False).mT
        return prec_chol if covariances.ndim == 3 else prec_chol[0]

    def _warn_singular(self, components: list, jitter: float) -> None:
        warnings.warn(f"GaussianMixture: component(s) {components} have a singular covariance (collapsed on "
                      f"too few distinct points); added up to {jitter:.3g} to the diagonal. Increase reg_covar, "
                      "scale the data, or use fewer components.", RuntimeWarning, stacklevel=5)

    def _m_step(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        weights, self.means_, self.covariances_ = self._estimate_parameters(X, resp)
        self.weights_ = weights / weights.sum()
        self.precisions_cholesky_ = self._precision_cholesky(self.covariances_, self.means_)

    def _estimate_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        return _log_gaussian_prob(X, self.means_, self.precisions_cholesky_, self.covariance_type)

    def _count_parameters(self) -> int:
        n_features, k = self.means_.shape[1], self.n_components
        covariance_params = {"full": k * n_features * (n_features + 1) / 2, "diag": k * n_features,
                             "tied": n_features * (n_features + 1) / 2, "spherical": k}[self.covariance_type]
        return int(covariance_params + n_features * k + k - 1)

    def _sample_components(self, labels: torch.Tensor, counts: list[int], generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(labels), self.n_features_in_, dtype=self.dtype_, generator=generator).to(self.device_)
        chol = self.precisions_cholesky_
        if self.covariance_type in ("diag", "spherical"):
            scale = (1.0 / chol)[labels]
            return self.means_[labels] + noise * (scale if scale.ndim == 2 else scale[:, None])
        # x = mu + U^{-T} z has covariance U^{-T} U^{-1} = (U U^T)^{-1}; one triangular solve per component.
        blocks = torch.split(noise, counts)
        factors = chol if self.covariance_type == "full" else chol.expand(self.n_components, *chol.shape)
        parts = [torch.linalg.solve_triangular(factors[k].mT, block.T, upper=False).T
                 for k, block in enumerate(blocks)]
        return torch.cat(parts) + self.means_[labels]


# ============================================================================ categorical
class CategoricalMixture(_BaseMixture):
    """Mixture of independent categoricals per dimension, fitted by MAP-EM.

    ``p(x) = sum_k pi_k prod_d theta[k, d, x_d]``, with ``x_d`` in ``0 .. n_categories - 1``
    (``n_categories=2``: a Bernoulli mixture). The M-step adds ``alpha`` pseudo-counts to every
    category (a symmetric Dirichlet prior with concentration ``alpha + 1``), so unseen values keep
    a finite log-probability. EM never decreases the penalised objective
    ``(sum_n log p(x_n) + alpha sum log theta) / n``, stored per iteration in ``lower_bounds_``.

    Args:
        n_components: number of mixture components.
        n_categories: number of values per dimension.
        alpha: pseudo-count per category (>= 0; 0 is maximum likelihood).
        init_params: ``"random"`` (random responsibilities) or ``"kmeans"`` (hard k-means labels).
        Other arguments as in :class:`GaussianMixture`.

    ``X`` holds integer codes, shape ``(n, D)``; images ``(n, 1, H, W)`` are flattened to ``(n, H W)``.
    Fitted attributes: ``weights_`` ``(K,)``, ``probs_`` ``(K, D, C)``, ``lower_bound_``, ``converged_``.
    """

    def __init__(self, n_components: int = 1, n_categories: int = 2, alpha: float = 1.0, max_iter: int = 100,
                 tol: float = 1e-3, n_init: int = 1, init_params: str = "random", random_state: Any = None,
                 device: torch.device | str | None = None, dtype: Any = np.float64, verbose: bool = False):
        self.n_components = n_components
        self.n_categories = n_categories
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True     # X holds integer category codes ...
        tags.input_tags.positive_only = True   # ... 0 .. n_categories - 1
        return tags

    def _check_parameters(self, X: torch.Tensor) -> None:
        check_float(self.alpha, "alpha", low=0.0)

    def _validate_X(self, X: Any, device: torch.device, fitted: bool = False) -> torch.Tensor:
        n_categories = check_int(self.n_categories, "n_categories", minimum=2)
        if isinstance(X, (torch.Tensor, np.ndarray)) and X.ndim > 2:
            X = X.reshape(X.shape[0], -1)
        X = super()._validate_X(X, device, fitted)
        if (X != X.round()).any():
            raise ValueError("X must hold integer category codes, found non-integer values")
        low, high = X.min().item(), X.max().item()
        if low < 0 or high > n_categories - 1:
            negative = "Negative values in data: " if low < 0 else ""
            raise ValueError(f"{negative}X values must lie in 0..{n_categories - 1} (n_categories={n_categories}), "
                             f"found values in [{low:g}, {high:g}]")
        return X

    # Above this many entries the indicator matrix is kept sparse (MNIST's 3,500 x 784 x 256 levels
    # would be 5.6 GB dense); below it the dense GEMMs are faster.
    dense_indicator_limit: int = 2 ** 25

    def _prepare(self, X: torch.Tensor) -> torch.Tensor:
        """``(n, D * C)`` indicator matrix: the E-step of all components is then one matrix product and
        the M-step counts another; built once per fit. Sparse (one entry per pixel) when large."""
        n_samples, n_features = X.shape
        offsets = torch.arange(n_features, device=X.device) * self.n_categories
        columns = X.long() + offsets
        shape = (n_samples, n_features * self.n_categories)
        if n_samples * shape[1] <= self.dense_indicator_limit:
            return torch.zeros(shape, dtype=self.dtype_, device=X.device).scatter_(1, columns, 1.0)
        rows = torch.arange(n_samples, device=X.device).repeat_interleave(n_features)
        values = torch.ones(rows.shape[0], dtype=self.dtype_, device=X.device)
        indices = torch.stack([rows, columns.flatten()])
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()

    def _parameter_names(self) -> tuple[str, ...]:
        return ("weights_", "probs_")

    def _initialize(self, X: torch.Tensor, data: torch.Tensor, random_state: np.random.RandomState) -> None:
        self._m_step(data, self._initial_responsibilities(X, random_state))

    def _m_step(self, data: torch.Tensor, resp: torch.Tensor) -> None:
        nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
        counts = torch.sparse.mm(data.t(), resp).T if data.is_sparse else resp.T @ data
        counts = counts.reshape(self.n_components, self.n_features_in_, self.n_categories)
        self.weights_ = nk / nk.sum()
        self.probs_ = (counts + self.alpha) / (nk[:, None, None] + self.n_categories * self.alpha)

    def _log_probs(self) -> torch.Tensor:
        # alpha = 0 may leave exact zeros; a tiny floor keeps 0 * log(0) out of the GEMM.
        return torch.log(self.probs_.clamp_min(torch.finfo(self.dtype_).tiny))

    def _estimate_log_prob(self, data: torch.Tensor) -> torch.Tensor:
        log_probs = self._log_probs().reshape(self.n_components, -1).T
        return torch.sparse.mm(data, log_probs) if data.is_sparse else data @ log_probs

    def _log_prior(self, n_samples: int) -> float:
        # Added to the mean log-likelihood at the E-step parameters: MAP-EM never decreases the sum
        # (the prior term is evaluated for the same parameters, before the M-step).
        return self.alpha * self._log_probs().sum().item() / n_samples if self.alpha else 0.0

    def _count_parameters(self) -> int:
        k = self.n_components
        return int(k - 1 + k * self.n_features_in_ * (self.n_categories - 1))

    def _sample_components(self, labels: torch.Tensor, counts: list[int], generator: torch.Generator) -> torch.Tensor:
        probs = self.probs_.cpu()[labels.cpu()].reshape(-1, self.n_categories)
        draws = torch.multinomial(probs, 1, replacement=True, generator=generator)
        return draws.view(len(labels), self.n_features_in_).to(self.device_)
