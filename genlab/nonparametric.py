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

from .base import as_float_tensor, check_is_fitted, check_n_features, resolve_device
from .kde import _check_positive_int, make_generator, squared_distance_blocks


def _check_positive_float(value: Any, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- k-NN density
class KNNDensity:
    """k-nearest-neighbour density estimate ``p(x) = k / (n V_d r_k(x)^d)``.

    ``r_k(x)`` is the distance from ``x`` to its k-th nearest training point and ``V_d`` the volume
    of the unit ball in ``d`` dimensions: the estimate is "k of the n points fell in the ball".

    **Not normalised**: the estimate does not integrate to one. Far from the data it decays like
    ``|x|^-d``, so its integral over the whole space diverges; ``score_samples`` values are
    therefore not comparable with true log-likelihoods (use it to rank points or to look at the
    shape of a density, not to report nats). At a training point with ``k = 1`` the distance is
    zero and the log density is ``+inf``.

    Fitted attributes: ``X_``, ``n_features_in_``.
    """

    def __init__(self, k: int = 10, chunk_size: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        self.k = _check_positive_int(k, "k")
        self.chunk_size = None if chunk_size is None else _check_positive_int(chunk_size, "chunk_size")
        self.device = resolve_device(device)
        self.dtype = dtype
        self.X_: torch.Tensor | None = None

    def fit(self, X: Any) -> "KNNDensity":
        """Store the training points (there must be at least ``k`` of them)."""
        X = as_float_tensor(X, name="X", dtype=self.dtype, device=self.device)
        if X.shape[0] < self.k:
            raise ValueError(f"k={self.k} needs at least {self.k} training rows, X has {X.shape[0]}")
        self.X_, self.n_features_in_ = X, X.shape[1]
        return self

    def kth_distance(self, X: Any) -> torch.Tensor:
        """Distance from each row of ``X`` to its k-th nearest training point."""
        check_is_fitted(self, "X_")
        X = as_float_tensor(X, name="X", dtype=self.dtype, device=self.device)
        check_n_features(self, X)
        out = torch.empty(X.shape[0], dtype=self.dtype, device=self.device)
        for rows, sq in squared_distance_blocks(X, self.X_, self.chunk_size):
            out[rows] = torch.topk(sq, self.k, dim=1, largest=False).values[:, -1].sqrt()
        return out

    def score_samples(self, X: Any) -> torch.Tensor:
        """Log of the (unnormalised) k-NN density estimate at each row of ``X``."""
        radius = self.kth_distance(X)
        n, d = self.X_.shape[0], self.n_features_in_
        log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
        return math.log(self.k) - math.log(n) - log_unit_ball - d * torch.log(radius)

    def score(self, X: Any) -> float:
        """Mean of :meth:`score_samples` (not a log-likelihood: the estimate is not normalised)."""
        return float(self.score_samples(X).mean())


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
    lengthscale = _check_positive_float(lengthscale, "lengthscale")
    variance = _check_positive_float(variance, "variance")
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
                     seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """``n`` functions drawn from the zero-mean GP prior, evaluated at ``x``: shape ``(n, len(x))``."""
    x = _as_1d_inputs(x, "x")
    n = _check_positive_int(n, "n")
    cov = rbf_kernel(x, x, lengthscale, variance)
    return _mvn_samples(torch.zeros(x.shape[0], dtype=torch.float64), cov, n, make_generator(seed))


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
    noise = _check_positive_float(noise, "noise", allow_zero=True)
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
                         seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """``n`` posterior function draws at ``x_test`` (shape ``(n, len(x_test))``); see :func:`gp_posterior`."""
    n = _check_positive_int(n, "n")
    mean, cov = gp_posterior(x_train, y_train, x_test, lengthscale, variance, noise)
    return _mvn_samples(mean, cov, n, make_generator(seed))


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


def stick_breaking_weights(alpha: float, n_sticks: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """The first ``n_sticks`` weights of a Dirichlet process ``DP(alpha, H)`` (stick-breaking).

    ``beta_k ~ Beta(1, alpha)`` and ``pi_k = beta_k prod_{j<k} (1 - beta_j)``
    :cite:`sethuraman1994constructive`. The weights sum to less than one: the rest,
    ``prod_k (1 - beta_k)`` with expectation ``(alpha / (1 + alpha))^n_sticks``, belongs to the
    infinitely many later sticks. Small ``alpha`` puts most mass on a few sticks.
    """
    alpha = _check_positive_float(alpha, "alpha")
    n_sticks = _check_positive_int(n_sticks, "n_sticks")
    return _weights_from_fractions(_stick_fractions(alpha, n_sticks, make_generator(seed)))


class DPMixtureSample(NamedTuple):
    """What :func:`sample_dp_mixture` draws."""

    X: torch.Tensor        # (n_samples, dim) the data
    labels: torch.Tensor   # (n_samples,) which stick (component) each point came from
    weights: torch.Tensor  # (n_sticks,) the truncated stick-breaking weights (sum to 1)
    means: torch.Tensor    # (n_sticks, dim) component means drawn from the base measure


def sample_dp_mixture(n_samples: int, alpha: float = 1.0, dim: int = 2, n_sticks: int = 100,
                      base_scale: float = 5.0, component_scale: float = 0.5,
                      seed: int | torch.Generator | None = 0) -> DPMixtureSample:
    """Draw data from a Dirichlet-process mixture of isotropic Gaussians.

    Generative story: weights by stick-breaking with concentration ``alpha`` (truncated at
    ``n_sticks``, the last stick taking all the remaining mass, so the weights sum to one),
    means ``mu_k ~ N(0, base_scale^2 I)`` (the base measure), then each point picks a
    component by weight and adds ``N(0, component_scale^2 I)`` noise. With the default
    truncation the neglected mass is about ``(alpha / (1 + alpha))^100``.
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    alpha = _check_positive_float(alpha, "alpha")
    dim = _check_positive_int(dim, "dim")
    n_sticks = _check_positive_int(n_sticks, "n_sticks")
    base_scale = _check_positive_float(base_scale, "base_scale")
    component_scale = _check_positive_float(component_scale, "component_scale")
    generator = make_generator(seed)
    fractions = _stick_fractions(alpha, n_sticks, generator)
    fractions[-1] = 1.0
    weights = _weights_from_fractions(fractions)
    means = torch.randn(n_sticks, dim, generator=generator, dtype=torch.float64) * base_scale
    labels = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
    noise = torch.randn(n_samples, dim, generator=generator, dtype=torch.float64) * component_scale
    return DPMixtureSample(means[labels] + noise, labels, weights, means)


class DirichletProcessGaussianMixture:
    """Dirichlet-process Gaussian mixture fitted by variational inference :cite:`blei2006variational`.

    A thin wrapper around scikit-learn's
    ``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`` (truncated
    stick-breaking variational posterior): the fitting runs in NumPy inside scikit-learn; this class
    validates inputs, returns torch tensors, and reports how many components the model actually
    uses.

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
        max_iter, n_init, tol, random_state: passed to scikit-learn.

    Fitted attributes: ``weights_``, ``means_``, ``covariances_`` (torch tensors), ``converged_``,
    ``effective_n_components_``, ``n_features_in_``, ``model_`` (the scikit-learn estimator).
    """

    COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

    def __init__(self, n_components: int = 20, alpha: float | None = None, covariance_type: str = "full",
                 covariance_prior: Any = None, weight_threshold: float = 0.01, max_iter: int = 500,
                 n_init: int = 1, tol: float = 1e-3, random_state: int | None = 0) -> None:
        self.n_components = _check_positive_int(n_components, "n_components")
        self.alpha = None if alpha is None else _check_positive_float(alpha, "alpha")
        if covariance_type not in self.COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of {self.COVARIANCE_TYPES}")
        self.covariance_type = covariance_type
        if covariance_prior is not None:
            prior = np.asarray(covariance_prior, dtype=float)
            if not np.all(np.isfinite(prior)) or (prior.ndim < 2 and np.any(prior <= 0)):
                raise ValueError(f"covariance_prior must be finite and positive, got {covariance_prior!r}")
        self.covariance_prior = covariance_prior
        threshold = _check_positive_float(weight_threshold, "weight_threshold", allow_zero=True)
        if threshold >= 1:
            raise ValueError(f"weight_threshold must be in [0, 1), got {weight_threshold!r}")
        self.weight_threshold = threshold
        self.max_iter = _check_positive_int(max_iter, "max_iter")
        self.n_init = _check_positive_int(n_init, "n_init")
        self.tol = _check_positive_float(tol, "tol")
        self.random_state = random_state
        self.model_ = None

    def fit(self, X: Any) -> "DirichletProcessGaussianMixture":
        """Fit the variational posterior to ``X`` (at least 2 rows)."""
        from sklearn.mixture import BayesianGaussianMixture

        X = as_float_tensor(X, name="X", device="cpu", min_rows=2).numpy()
        model = BayesianGaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=self.alpha,
            covariance_prior=self.covariance_prior,
            max_iter=self.max_iter, n_init=self.n_init, tol=self.tol, random_state=self.random_state)
        model.fit(X)
        self.model_ = model
        self.n_features_in_ = X.shape[1]
        self.weights_ = torch.as_tensor(model.weights_)
        self.means_ = torch.as_tensor(model.means_)
        self.covariances_ = torch.as_tensor(model.covariances_)
        self.converged_ = bool(model.converged_)
        self.effective_n_components_ = int((model.weights_ > self.weight_threshold).sum())
        return self

    def _check_query(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = as_float_tensor(X, name="X", device="cpu")
        check_n_features(self, X)
        return X.numpy()

    def score_samples(self, X: Any) -> torch.Tensor:
        """Log density (nats) of each row under the fitted mixture (expected weights and parameters)."""
        X = self._check_query(X)
        return torch.as_tensor(self.model_.score_samples(X))

    def score(self, X: Any) -> float:
        """Mean log density (nats per row)."""
        return float(self.score_samples(X).mean())

    def predict(self, X: Any) -> torch.Tensor:
        """Most probable component of each row."""
        X = self._check_query(X)
        return torch.as_tensor(self.model_.predict(X))

    def sample(self, n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, labels)``: ``n_samples`` draws from the fitted mixture and their components."""
        check_is_fitted(self, "model_")
        n_samples = _check_positive_int(n_samples, "n_samples")
        X, labels = self.model_.sample(n_samples)
        return torch.as_tensor(X), torch.as_tensor(labels)
