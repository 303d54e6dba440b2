"""Other nonparametric models: k-nearest-neighbour densities, Gaussian processes, Dirichlet processes.

* :class:`KNNDensity` -- the k-NN density estimate :cite:`loftsgaarden1965nonparametric`.
* :func:`rbf_kernel`, :func:`gp_prior_samples`, :func:`gp_posterior`, :func:`gp_posterior_samples` --
  a 1-D Gaussian-process regression model with an RBF kernel :cite:`rasmussen2006gaussian`.
* :func:`stick_breaking_weights`, :func:`sample_dp_mixture` -- the stick-breaking construction of a
  Dirichlet process :cite:`sethuraman1994constructive` and a generative sampler for a DP mixture
  of Gaussians.
* :class:`DirichletProcessGaussianMixture` -- variational fitting of a DP mixture
  :cite:`blei2006variational`; a thin wrapper around scikit-learn's ``BayesianGaussianMixture``.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin

from .base import NotFittedError
from .numerics import log_unit_ball_volume, squared_distance_blocks
from .validation import (
    as_estimator_input,
    as_float_tensor,
    as_output,
    check_device,
    check_float,
    check_float_dtype,
    check_int,
    check_numpy_random_state,
    check_option,
    check_optional_int,
    check_random_state,
)

#: Covariance structures of the Gaussian mixtures (the same names as :mod:`genlab.mixture`).
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _not_fitted(estimator: Any) -> NotFittedError:
    return NotFittedError(f"this {type(estimator).__name__} is not fitted yet; call fit(X) first")


# ----------------------------------------------------------------------------- k-NN density
class KNNDensity(DensityMixin, BaseEstimator):
    """k-nearest-neighbour density estimate ``p(x) = k / (n V_d r_k(x)^d)``.

    ``r_k(x)`` is the distance from ``x`` to its k-th nearest training point and ``V_d`` the volume
    of the unit ball in ``d`` dimensions: the estimate is "k of the n points fell in the ball".

    **Not normalised**: the estimate does not integrate to one. Far from the data it decays like
    ``|x|^-d``, so its integral over the whole space diverges; ``score_samples`` values are
    therefore not comparable with true log-likelihoods (use it to rank points or to look at the
    shape of a density, not to report nats). At a training point with ``k = 1`` the distance is
    zero and the log density is ``+inf``. Having no normalised density, it has no ``sample``.

    Args:
        k: number of neighbours; chunk_size: query rows per block of distances; device, dtype: as
        in :class:`genlab.kde.KernelDensity`. Stored unchanged, checked at :meth:`fit`.

    Fitted attributes: ``X_``, ``n_features_in_``, ``device_``, ``dtype_``.
    """

    def __init__(self, k: int = 10, chunk_size: int | None = None, device: torch.device | str | None = None,
                 dtype: Any = np.float64) -> None:
        self.k = k
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> KNNDensity:
        """Store the training points (there must be at least ``k`` of them); ``y`` is ignored."""
        k = check_int(self.k, "k", minimum=1)
        check_optional_int(self.chunk_size, "chunk_size", minimum=1)
        dtype, device = check_float_dtype(self.dtype), check_device(self.device)
        X = as_estimator_input(X, dtype=dtype, device=device)
        if X.shape[0] < k:
            raise ValueError(f"k={k} needs at least {k} training samples, got n_samples={X.shape[0]}")
        self.device_, self.dtype_ = device, dtype
        self.X_, self.n_features_in_ = X, X.shape[1]
        return self

    def _kth_distance(self, X: Any) -> torch.Tensor:
        if not hasattr(self, "X_"):
            raise _not_fitted(self)
        X = as_estimator_input(X, n_features=self.n_features_in_, estimator=type(self).__name__,
                               dtype=self.dtype_, device=self.device_)
        out = torch.empty(X.shape[0], dtype=self.dtype_, device=self.device_)
        for rows, sq in squared_distance_blocks(X, self.X_, self.chunk_size):
            out[rows] = torch.topk(sq, self.k, dim=1, largest=False).values[:, -1].sqrt()
        return out

    def kth_distance(self, X: Any) -> np.ndarray | torch.Tensor:
        """Distance from each row of ``X`` to its k-th nearest training point."""
        return as_output(self._kth_distance(X), X)

    def _log_density(self, X: Any) -> torch.Tensor:
        radius = self._kth_distance(X)
        n, d = self.X_.shape[0], self.n_features_in_
        return math.log(self.k) - math.log(n) - log_unit_ball_volume(d) - d * torch.log(radius)

    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """Log of the (unnormalised) k-NN density estimate at each row of ``X``."""
        return as_output(self._log_density(X), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (not a log-likelihood: the estimate is not normalised)."""
        return float(self._log_density(X).mean())


# ----------------------------------------------------------------------------- Gaussian processes
def _as_1d_inputs(x: Any, name: str, min_rows: int = 1) -> torch.Tensor:
    """1-D inputs as a float64 vector; an ``(n, 1)`` column is accepted too."""
    tensor = as_float_tensor(x, name=name, ndim=2, device="cpu", min_rows=min_rows)
    if tensor.shape[1] != 1:
        raise ValueError(f"{name} must be 1-D inputs (shape (n,) or (n, 1)), got shape {tuple(tensor.shape)}")
    return tensor[:, 0]


def rbf_kernel(x1: Any, x2: Any, lengthscale: float = 1.0, variance: float = 1.0) -> torch.Tensor:
    """RBF (squared-exponential) covariance ``variance * exp(-(x - x')^2 / (2 lengthscale^2))``.

    Returns the ``(len(x1), len(x2))`` matrix for 1-D inputs.
    """
    a, b = _as_1d_inputs(x1, "x1"), _as_1d_inputs(x2, "x2")
    lengthscale = check_float(lengthscale, "lengthscale", low=0.0, low_inclusive=False)
    variance = check_float(variance, "variance", low=0.0, low_inclusive=False)
    return variance * torch.exp(-0.5 * (a[:, None] - b[None, :]) ** 2 / lengthscale**2)


def _mvn_samples(mean: torch.Tensor, cov: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws from N(mean, cov) via a symmetric square root.

    GP covariances are often singular to rounding (nearby inputs, conditioned points), where a
    Cholesky factorisation fails; eigenvalues clipped at zero give a valid square root anyway.
    """
    values, vectors = torch.linalg.eigh(0.5 * (cov + cov.T))
    root = vectors * values.clamp(min=0.0).sqrt()[None, :]
    z = torch.randn(n, mean.shape[0], generator=generator, dtype=torch.float64)
    return mean[None, :] + z @ root.T


def gp_prior_samples(x: Any, n: int = 1, lengthscale: float = 1.0, variance: float = 1.0,
                     random_state: int | torch.Generator | None = 0) -> torch.Tensor:
    """``n`` functions drawn from the zero-mean GP prior, evaluated at ``x``: shape ``(n, len(x))``.

    ``random_state``: an int (the same functions every call), a ``torch.Generator`` or None.
    """
    x = _as_1d_inputs(x, "x")
    n = check_int(n, "n", minimum=1)
    generator = check_random_state(random_state)
    cov = rbf_kernel(x, x, lengthscale, variance)
    return _mvn_samples(torch.zeros(x.shape[0], dtype=torch.float64), cov, n, generator)


def gp_posterior(x_train: Any, y_train: Any, x_test: Any, lengthscale: float = 1.0, variance: float = 1.0,
                 noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and covariance of ``f(x_test)`` given ``y_train = f(x_train) + eps``.

    ``noise`` is the noise *variance* of ``eps ~ N(0, noise)``; ``noise = 0`` is interpolation
    (a jitter of ``1e-10 * variance`` keeps the solve stable, so the mean passes through the
    training targets to about that relative precision).

    Returns:
        ``(mean, cov)`` with shapes ``(m,)`` and ``(m, m)`` for ``m = len(x_test)``.
    """
    xt = _as_1d_inputs(x_train, "x_train")
    y = _as_1d_inputs(y_train, "y_train")
    xs = _as_1d_inputs(x_test, "x_test")
    if y.shape[0] != xt.shape[0]:
        raise ValueError(f"y_train has {y.shape[0]} values but x_train has {xt.shape[0]}")
    noise = check_float(noise, "noise", low=0.0)
    k_tt = rbf_kernel(xt, xt, lengthscale, variance)
    k_st = rbf_kernel(xs, xt, lengthscale, variance)
    k_ss = rbf_kernel(xs, xs, lengthscale, variance)
    jitter = noise + 1e-10 * float(variance)
    chol = torch.linalg.cholesky(k_tt + jitter * torch.eye(xt.shape[0], dtype=torch.float64))
    alpha = torch.cholesky_solve(y[:, None], chol)[:, 0]
    v = torch.linalg.solve_triangular(chol, k_st.T, upper=False)
    return k_st @ alpha, k_ss - v.T @ v


def gp_posterior_samples(x_train: Any, y_train: Any, x_test: Any, n: int = 1, lengthscale: float = 1.0,
                         variance: float = 1.0, noise: float = 0.0,
                         random_state: int | torch.Generator | None = 0) -> torch.Tensor:
    """``n`` posterior function draws at ``x_test`` (shape ``(n, len(x_test))``); see :func:`gp_posterior`."""
    n = check_int(n, "n", minimum=1)
    generator = check_random_state(random_state)
    mean, cov = gp_posterior(x_train, y_train, x_test, lengthscale, variance, noise)
    return _mvn_samples(mean, cov, n, generator)


# ----------------------------------------------------------------------------- Dirichlet processes
def _stick_fractions(alpha: float, n_sticks: int, generator: torch.Generator) -> torch.Tensor:
    """``beta_k ~ Beta(1, alpha)`` by inversion: ``1 - U^(1/alpha)``."""
    u = torch.rand(n_sticks, generator=generator, dtype=torch.float64)
    return -torch.expm1(torch.log(u) / alpha)


def _weights_from_fractions(fractions: torch.Tensor) -> torch.Tensor:
    # pi_k = beta_k * prod_{j<k} (1 - beta_j), with the running product in log space (many sticks)
    log_left = torch.cumsum(torch.log1p(-fractions), 0)
    log_before = torch.cat([torch.zeros(1, dtype=fractions.dtype), log_left[:-1]])
    return fractions * torch.exp(log_before)


def stick_breaking_weights(alpha: float, n_sticks: int, random_state: int | torch.Generator | None = 0
                           ) -> torch.Tensor:
    """The first ``n_sticks`` weights of a Dirichlet process ``DP(alpha, H)`` (stick-breaking).

    ``beta_k ~ Beta(1, alpha)`` and ``pi_k = beta_k prod_{j<k} (1 - beta_j)``
    :cite:`sethuraman1994constructive`. The weights sum to less than one: the rest,
    ``prod_k (1 - beta_k)`` with expectation ``(alpha / (1 + alpha))^n_sticks``, belongs to the
    infinitely many later sticks. Small ``alpha`` puts most mass on a few sticks.
    """
    alpha = check_float(alpha, "alpha", low=0.0, low_inclusive=False)
    n_sticks = check_int(n_sticks, "n_sticks", minimum=1)
    return _weights_from_fractions(_stick_fractions(alpha, n_sticks, check_random_state(random_state)))


class DPMixtureSample(NamedTuple):
    """What :func:`sample_dp_mixture` draws."""

    X: torch.Tensor        # (n_samples, dim) the data
    labels: torch.Tensor   # (n_samples,) which stick (component) each point came from
    weights: torch.Tensor  # (n_sticks,) the truncated stick-breaking weights (sum to 1)
    means: torch.Tensor    # (n_sticks, dim) component means drawn from the base measure


def sample_dp_mixture(n_samples: int, alpha: float = 1.0, dim: int = 2, n_sticks: int = 100,
                      base_scale: float = 5.0, component_scale: float = 0.5,
                      random_state: int | torch.Generator | None = 0) -> DPMixtureSample:
    """Draw data from a Dirichlet-process mixture of isotropic Gaussians.

    Generative story: weights by stick-breaking with concentration ``alpha`` (truncated at
    ``n_sticks``, the last stick taking all the remaining mass, so the weights sum to one),
    means ``mu_k ~ N(0, base_scale^2 I)`` (the base measure), then each point picks a
    component by weight and adds ``N(0, component_scale^2 I)`` noise. With the default
    truncation the neglected mass is about ``(alpha / (1 + alpha))^100``.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    alpha = check_float(alpha, "alpha", low=0.0, low_inclusive=False)
    dim = check_int(dim, "dim", minimum=1)
    n_sticks = check_int(n_sticks, "n_sticks", minimum=1)
    base_scale = check_float(base_scale, "base_scale", low=0.0, low_inclusive=False)
    component_scale = check_float(component_scale, "component_scale", low=0.0, low_inclusive=False)
    generator = check_random_state(random_state)
    fractions = _stick_fractions(alpha, n_sticks, generator)
    fractions[-1] = 1.0
    weights = _weights_from_fractions(fractions)
    means = torch.randn(n_sticks, dim, generator=generator, dtype=torch.float64) * base_scale
    labels = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
    noise = torch.randn(n_samples, dim, generator=generator, dtype=torch.float64) * component_scale
    return DPMixtureSample(means[labels] + noise, labels, weights, means)


class DirichletProcessGaussianMixture(DensityMixin, BaseEstimator):
    """Dirichlet-process Gaussian mixture fitted by variational inference :cite:`blei2006variational`.

    A thin wrapper around scikit-learn's
    ``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`` (truncated
    stick-breaking variational posterior): the fitting runs in NumPy inside scikit-learn; this class
    validates inputs, follows genlab's contract (NumPy in, NumPy out; torch in, torch out), samples
    with genlab's ``random_state``, and reports how many components the model actually uses.

    Args:
        n_components: truncation level (an upper bound on the number of components).
        alpha: DP concentration (``weight_concentration_prior``); ``None`` is scikit-learn's
            default ``1 / n_components``.
        covariance_type: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.
        covariance_prior: prior guess of each component's covariance (a float for
            ``"spherical"``, a vector for ``"diag"``, a matrix for ``"full"``/``"tied"``); ``None`` is
            scikit-learn's default, the covariance of the whole data set, which favours broad
            components and can merge small clusters.
        weight_threshold: a component counts as used when its expected weight exceeds this.
        max_iter, n_init, tol: passed to scikit-learn.
        random_state: of the fit: an int (passed to scikit-learn), a ``torch.Generator`` or None.

    All arguments are stored unchanged and checked at :meth:`fit`.

    Fitted attributes: ``weights_``, ``means_``, ``covariances_`` (float64 CPU tensors), ``converged_``,
    ``n_iter_``, ``lower_bound_``, ``effective_n_components_``, ``n_features_in_``, ``model_`` (the
    scikit-learn estimator).
    """

    def __init__(self, n_components: int = 20, alpha: float | None = None, covariance_type: str = "full",
                 covariance_prior: Any = None, weight_threshold: float = 0.01, max_iter: int = 500,
                 n_init: int = 1, tol: float = 1e-3, random_state: Any = 0) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.covariance_type = covariance_type
        self.covariance_prior = covariance_prior
        self.weight_threshold = weight_threshold
        self.max_iter = max_iter
        self.n_init = n_init
        self.tol = tol
        self.random_state = random_state

    def _check_parameters(self) -> np.random.RandomState:
        check_int(self.n_components, "n_components", minimum=1)
        if self.alpha is not None:
            check_float(self.alpha, "alpha", low=0.0, low_inclusive=False)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        if self.covariance_prior is not None:
            if np.ndim(self.covariance_prior) == 0:
                prior = torch.tensor(check_float(self.covariance_prior, "covariance_prior"))
            else:
                prior = as_float_tensor(self.covariance_prior, name="covariance_prior",
                                        ndim=int(np.ndim(self.covariance_prior)), device="cpu")
            if prior.ndim < 2 and (prior <= 0).any():
                raise ValueError(f"covariance_prior must be positive, got {self.covariance_prior!r}")
        check_float(self.weight_threshold, "weight_threshold", low=0.0, high=1.0, high_inclusive=False)
        check_int(self.max_iter, "max_iter", minimum=1)
        check_int(self.n_init, "n_init", minimum=1)
        check_float(self.tol, "tol", low=0.0, low_inclusive=False)
        return check_numpy_random_state(self.random_state)

    def fit(self, X: Any, y: Any = None) -> DirichletProcessGaussianMixture:
        """Fit the variational posterior to ``X`` (at least 2 rows); ``y`` is ignored."""
        from sklearn.mixture import BayesianGaussianMixture

        random_state = self._check_parameters()
        X_np = as_estimator_input(X, device="cpu").numpy()
        if X_np.shape[0] < 2:
            raise ValueError(f"X needs at least 2 samples to fit a mixture, got n_samples={X_np.shape[0]}")
        model = BayesianGaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=self.alpha,
            covariance_prior=self.covariance_prior,
            max_iter=self.max_iter, n_init=self.n_init, tol=self.tol, random_state=random_state)
        model.fit(X_np)
        self.model_ = model
        self.n_features_in_ = X_np.shape[1]
        self.weights_ = torch.as_tensor(model.weights_)
        self.means_ = torch.as_tensor(model.means_)
        self.covariances_ = torch.as_tensor(model.covariances_)
        self.converged_ = bool(model.converged_)
        self.n_iter_ = int(model.n_iter_)
        self.lower_bound_ = float(np.asarray(model.lower_bound_).ravel()[-1])
        self.effective_n_components_ = int((model.weights_ > self.weight_threshold).sum())
        self._torch_io = isinstance(X, torch.Tensor)
        return self

    def _check_query(self, X: Any) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        return as_estimator_input(X, n_features=self.n_features_in_, estimator=type(self).__name__,
                                  device="cpu").numpy()

    def score_samples(self, X: Any) -> np.ndarray | torch.Tensor:
        """Log density (nats) of each row under the fitted mixture (expected weights and parameters)."""
        X_np = self._check_query(X)
        return as_output(torch.as_tensor(self.model_.score_samples(X_np)), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log density (nats per row)."""
        X_np = self._check_query(X)
        return float(self.model_.score_samples(X_np).mean())

    def predict(self, X: Any) -> np.ndarray | torch.Tensor:
        """Most probable component of each row."""
        X_np = self._check_query(X)
        return as_output(torch.as_tensor(self.model_.predict(X_np)), X)

    def predict_proba(self, X: Any) -> np.ndarray | torch.Tensor:
        """Posterior probability of each component for each row, shape ``(n, n_components)``."""
        X_np = self._check_query(X)
        return as_output(torch.as_tensor(self.model_.predict_proba(X_np)), X)

    def sample(self, n_samples: int = 1, *, random_state: int | torch.Generator | None = None
               ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """``(X, labels)``: ``n_samples`` draws from the fitted mixture and their components.

        ``random_state``: int (the same draws every call), ``torch.Generator`` or None (fresh entropy).
        NumPy arrays if the model was fitted on NumPy data, CPU tensors otherwise.
        """
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        generator = check_random_state(random_state)
        labels = torch.multinomial(self.weights_, n_samples, replacement=True, generator=generator)
        noise = torch.randn(n_samples, self.n_features_in_, generator=generator, dtype=torch.float64)
        cov = self.covariances_
        if self.covariance_type == "spherical":
            offset = noise * cov[labels].sqrt()[:, None]
        elif self.covariance_type == "diag":
            offset = noise * cov[labels].sqrt()
        else:
            chol = torch.linalg.cholesky(cov if cov.ndim == 3 else cov.unsqueeze(0))
            chol = chol[labels] if cov.ndim == 3 else chol[0].expand(n_samples, -1, -1)
            offset = (chol @ noise.unsqueeze(-1)).squeeze(-1)
        like = self.means_ if self._torch_io else None
        return as_output((self.means_[labels] + offset, labels), like)
