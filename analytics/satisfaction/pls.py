"""PLS path modelling (PLS-PM): the estimator behind the ACSI / ECSI / SCSB satisfaction indices.

A satisfaction model is a set of latent variables (expectation, quality, value,
satisfaction, complaints, loyalty, ...) each measured by a block of survey items (the
outer model), and directed paths between them (the inner model). PLS-PM (Wold;
Lohmoeller 1989) estimates each latent variable as a weighted sum of its items, choosing
the weights so that the latent variables predict their neighbours in the inner model.

Algorithm (the one SmartPLS, R plspm, seminr and semPLS implement, and which this module
reproduces on the ECSI `mobi` data to 1e-8):

1. Items are standardised (mean 0, sd 1 with divisor n - 1; ``scaled=False`` only centres
   them), every block starts with weights 1, and each latent score Y_j = X_j w_j is scaled
   to unit variance.
2. Inner estimate Z_j = sum_i e_ij Y_i over the neighbours i of j, with inner weights
   e_ij = sign(cor) (centroid), cor (factorial), or (path weighting) the regression
   coefficients of Y_j on its predecessors and cor(Y_j, Y_k) for its successors.
3. Outer update: Mode A (reflective) w_j = cov(X_j, Z_j); Mode B (formative) the
   regression of Z_j on X_j. Then step 1's scaling again.
4. Repeat until no weight moves by more than ``tol`` (1e-7, SmartPLS's abort criterion).

Then the path coefficients are the OLS regressions of each endogenous score on its
predecessors (R2 from those), loadings are cor(item, score), and the quality measures
are the usual ones: AVE (mean squared loading), composite reliability
rho_c = (sum l)^2 / ((sum l)^2 + sum(1 - l^2)), Cronbach's alpha of the block,
GoF = sqrt(mean communality x mean R2) (Tenenhaus et al. 2004; communalities of blocks
with more than one item), total effects (I - B)^-1 - I. Bootstrap intervals resample
respondents with a seeded generator and refit from the full-sample weights.

Every step is linear in the standardised item matrix x (n x p), so the module runs it on
S = x'x / (n - 1), the items' correlation matrix (covariance with ``scaled=False``), and
never on the rows: with the block-diagonal weight matrix W the scores are xW, their
covariances W'SW, the item-score covariances SW and the Mode A update SWE (E the inner
weights); a Mode B block solves the normal equations S_bb w = (SWE)_b of its regression
(and a block with collinear items, whose weights are not identified, is refused with a
LinAlgError; a bootstrap resample where that happens counts as failed). A fit then costs
one O(n p^2) product for S plus O(p^3) per iteration, whatever n is, and a bootstrap
resample is the same product with each respondent weighted by how often it was drawn:
the same resamples as copying the rows, without the copies. Only ``scores_`` is computed
from the rows, once, from the final weights.

Consistent PLS (``consistent=True``; PLSc, Dijkstra & Henseler 2015, "Consistent partial
least squares path modeling", MIS Quarterly 39(2)). A composite is a weighted sum of items
that each carry measurement error, so its correlations with other composites are those of
the latent variables times the square roots of the two reliabilities: plain PLS
understates every path between reflectively measured constructs (the demo's planted
Expectation -> Quality 0.55 comes out about 0.44). PLSc keeps the PLS weights and scores and
corrects the correlations:

- rho_A of a Mode A block with two or more items, from its final weights w (scaled so
  the composite has unit variance, w'Sw = 1) and the items' correlation matrix S (their
  covariance matrix with ``scaled=False``):
  rho_A = (w'w)^2 w'(S - diag S)w / w'(ww' - diag ww')w. It estimates the squared
  correlation between the composite and its latent variable, because in a reflective
  block Mode A weights are proportional to the loadings. Single items and Mode B blocks
  get rho_A = 1 (nothing to correct: the item or the composite *is* the construct).
  ``rho_a_`` is reported for every fit: it is a reliability measure in its own right
  (typically between Cronbach's alpha and the rho_c of the PLS loadings).
- construct correlations r_ij / sqrt(rho_A_i rho_A_j) (``construct_correlations_``),
  and from them by OLS the path coefficients, R2 (and adjusted R2) and total effects;
- consistent loadings of a Mode A block lambda = c w with c = sqrt(rho_A) / (w'w), the
  factor loadings implied by the same estimate; AVE and rho_c are computed from them.
  Mode B and single-item blocks keep their PLS loadings. Weights, scores, cross-loadings,
  Cronbach's alpha and the index are unchanged (they describe the composites).

These are the formulas of the paper as seminr's PLSc implements them; the tests reproduce
seminr's published PLSc output on mobi (paths, loadings, R2, rho_A) to 1e-6. With small
samples a corrected correlation can leave [-1, 1] (or a loading exceed 1, or the
correlation matrix stop being positive definite), and a block whose items correlate
negatively can give rho_A <= 0 (its corrected values are then NaN): the fit warns and
sets ``admissible_`` to False instead of failing (plain PLS is always admissible), and the
bootstrap drops such resamples (as cSEM does by default), counting them in
``bootstrap_inadmissible_``.

The 0-100 index (ACSI, Fornell et al. 1996) uses the *unstandardised* weights
w_i / sd(item_i) on the raw item means: 100 (sum w x_bar - min sum w) / ((max - min) sum w).
A negative weight makes that number meaningless (it is no longer a weighted mean inside
the scale), so ``index`` refuses instead of rescaling. Computing the index of a segment
with the weights of the pooled fit keeps segments comparable: they differ only in means.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MODES", "SCHEMES", "PLSPathModel"]

SCHEMES: tuple[str, ...] = ("centroid", "factorial", "path")
MODES: tuple[str, ...] = ("A", "B")


_COLLINEAR = 1e-10
"""Smallest eigenvalue of a Mode B block's correlation matrix, relative to its largest, below
which the block is refused as collinear: its weights are not identified, and the normal
equations would lose more than 10 of their 16 digits."""


#: Rows per product in `_covariance`: its weighted copy of the items is made a block at a
#: time (at 4M respondents a copy of every row is ~0.5 GB per resample).
COVARIANCE_CHUNK_ROWS = 1 << 18


def _covariance(centred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Item covariance matrix (divisor n - 1) of the sample holding respondent i counts[i] times.

    A bootstrap resample is such a sample, so it needs no copy of the rows. `centred` is the
    items minus the full sample's means, which keeps the products small; the resample's own
    mean differs from those by `shift`, taken out exactly.
    """
    n = counts.sum()
    p = centred.shape[1]
    cross, total = np.zeros((p, p)), np.zeros(p)
    for start in range(0, len(centred), COVARIANCE_CHUNK_ROWS):
        block = centred[start : start + COVARIANCE_CHUNK_ROWS]
        weighted = block * counts[start : start + COVARIANCE_CHUNK_ROWS, None]
        cross += block.T @ weighted
        total += weighted.sum(axis=0)
    shift = total / n
    return (cross - n * np.outer(shift, shift)) / (n - 1)


def _has_constant_item(rows: np.ndarray) -> bool:
    """Whether some item has the same value in all `rows`."""
    return bool(np.any(np.all(rows == rows[0], axis=0)))


@dataclass(frozen=True)
class _Estimate:
    """One run of the PLS algorithm on an item correlation (covariance) matrix."""

    weights: list[np.ndarray]  # per block, on the (standardised) items, for unit-variance scores
    correlations: np.ndarray  # between the latent scores
    converged: bool
    iterations: int


@dataclass(frozen=True)
class _Results:
    """What a fit reports from one run: consistent (PLSc) or plain, depending on the model."""

    correlations: np.ndarray  # latent variable correlations the paths are estimated from
    paths: np.ndarray  # B[from, to]
    r2: dict[str, float]
    loadings: np.ndarray  # per item, on its own block
    rho_a: np.ndarray  # per latent variable
    admissible: bool


class PLSPathModel:
    """A PLS path model: ``outer`` maps each latent variable to its items, ``inner`` lists the
    (from, to) paths; ``modes`` maps latent variables to "A" (default) or "B"; ``scheme`` is
    the inner weighting: "centroid", "factorial" or "path"; ``consistent`` applies PLSc
    (module docstring) to the paths, R2, loadings and total effects."""

    def __init__(
        self,
        outer: Mapping[str, Sequence[str]],
        inner: Sequence[tuple[str, str]],
        modes: Mapping[str, str] | None = None,
        scheme: str = "path",
        scaled: bool = True,
        tol: float = 1e-7,
        max_iter: int = 300,
        consistent: bool = False,
    ) -> None:
        self.outer = {str(lv): tuple(str(i) for i in items) for lv, items in outer.items()}
        self.inner = tuple((str(a), str(b)) for a, b in inner)
        self.modes = {lv: "A" for lv in self.outer} | {str(k): str(v).upper() for k, v in (modes or {}).items()}
        self.scheme = scheme
        self.scaled = scaled
        self.tol = tol
        self.max_iter = max_iter
        self.consistent = consistent
        self._validate()
        self.latent_ = list(self.outer)
        self.items_ = [item for items in self.outer.values() for item in items]
        sizes = np.cumsum([0, *(len(items) for items in self.outer.values())])
        self._blocks = [np.arange(a, b) for a, b in itertools.pairwise(sizes)]  # item columns per block
        k = len(self.latent_)
        self._adjacency = np.zeros((k, k))  # [from, to] = 1 for a path
        for a, b in self.inner:
            self._adjacency[self.latent_.index(a), self.latent_.index(b)] = 1.0
        self._predecessors = [np.flatnonzero(self._adjacency[:, j]) for j in range(k)]
        self._successors = [np.flatnonzero(self._adjacency[j, :]) for j in range(k)]

    def _validate(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not isinstance(self.consistent, bool):
            raise ValueError(f"consistent must be True or False, got {self.consistent!r}")
        if not self.outer:
            raise ValueError("outer must map at least one latent variable to its items")
        seen: dict[str, str] = {}
        for lv, items in self.outer.items():
            if not items:
                raise ValueError(f"latent variable {lv!r} has no items")
            for item in items:
                if item in seen:
                    raise ValueError(f"item {item!r} is in two blocks: {seen[item]!r} and {lv!r}")
                seen[item] = lv
        for lv, mode in self.modes.items():
            if lv not in self.outer:
                raise ValueError(f"modes names {lv!r}, which is not a latent variable of outer")
            if mode not in MODES:
                raise ValueError(f"mode of {lv!r} must be one of {MODES}, got {mode!r}")
        if not self.inner:
            raise ValueError("inner must list at least one (from, to) path")
        for a, b in self.inner:
            for lv in (a, b):
                if lv not in self.outer:
                    raise ValueError(f"path ({a!r}, {b!r}) names {lv!r}, which is not in outer")
            if a == b:
                raise ValueError(f"path ({a!r}, {b!r}) points to itself")
        if len(set(self.inner)) != len(self.inner):
            raise ValueError("inner lists a path twice")
        connected = {lv for path in self.inner for lv in path}
        if missing := [lv for lv in self.outer if lv not in connected]:
            raise ValueError(f"latent variables without any path: {missing}")
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        """Path weighting and total effects need a recursive model (no feedback loops)."""
        succ: dict[str, list[str]] = {lv: [] for lv in self.outer}
        for a, b in self.inner:
            succ[a].append(b)
        state: dict[str, int] = {}

        def visit(lv: str, trail: list[str]) -> None:
            state[lv] = 1
            for nxt in succ[lv]:
                if state.get(nxt) == 1:
                    raise ValueError(f"inner model has a cycle: {' -> '.join([*trail, lv, nxt])}")
                if nxt not in state:
                    visit(nxt, [*trail, lv])
            state[lv] = 2

        for lv in self.outer:
            if lv not in state:
                visit(lv, [])

    # --- the algorithm --------------------------------------------------------------------------

    def _prepare(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw item matrix, its means and sds; refuses missing, non-numeric and constant items."""
        if not isinstance(data, pd.DataFrame):
            raise TypeError("data must be a pandas DataFrame with one column per item")
        if absent := [i for i in self.items_ if i not in data.columns]:
            raise ValueError(f"data lacks the items {absent}")
        frame = data if list(data.columns) == self.items_ else data[self.items_]
        try:
            raw = frame.to_numpy(dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"items must be numeric: {error}") from None
        if np.isnan(raw).any():
            bad = [c for c in self.items_ if frame[c].isna().any()]
            raise ValueError(f"items with missing values {bad}: drop or impute those respondents first")
        if raw.shape[0] < 3:
            raise ValueError(f"{raw.shape[0]} respondents: PLS needs at least 3")
        means, sds = raw.mean(axis=0), raw.std(axis=0, ddof=1)
        if constant := [i for i, s in zip(self.items_, sds, strict=True) if not s > 0]:
            raise ValueError(f"items without variance {constant}: every respondent gave the same answer")
        return raw, means, sds

    def _standardise(self, cov: np.ndarray) -> np.ndarray:
        """S: the items' correlation matrix, or with ``scaled=False`` their covariance matrix."""
        if not self.scaled:
            return cov
        sd = np.sqrt(np.diag(cov))
        return cov / np.outer(sd, sd)

    def _weight_matrix(self, weights: list[np.ndarray]) -> np.ndarray:
        """The block-diagonal items x latent variables matrix W: the scores are xW."""
        w = np.zeros((len(self.items_), len(self.latent_)))
        for k, (b, wk) in enumerate(zip(self._blocks, weights, strict=True)):
            w[b, k] = wk
        return w

    def _unit_scores(self, s: np.ndarray, weights: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """The weights rescaled to scores of unit variance, and the scores' correlations (W'SW)."""
        w = self._weight_matrix(weights)
        var = np.diag(cov := w.T @ s @ w)
        if not np.all(var > 0):
            raise np.linalg.LinAlgError("a latent score has no variance")
        sd = np.sqrt(var)
        return [wk / v for wk, v in zip(weights, sd, strict=True)], cov / np.outer(sd, sd)

    def _inner_weights(self, corr: np.ndarray) -> np.ndarray:
        """e[i, j]: how much neighbour i contributes to the inner estimate of j (`corr`: of the scores)."""
        adj = self._adjacency
        neighbours = (adj + adj.T) > 0
        if self.scheme == "centroid":
            return np.sign(corr) * neighbours
        if self.scheme == "factorial":
            return corr * neighbours
        e = np.zeros_like(corr)
        for j, (pred, succ) in enumerate(zip(self._predecessors, self._successors, strict=True)):
            if pred.size:
                e[pred, j] = np.linalg.solve(corr[np.ix_(pred, pred)], corr[pred, j])
            e[succ, j] = corr[succ, j]
        return e

    def _mode_b_inverses(self, s: np.ndarray) -> dict[int, np.ndarray]:
        """S_bb^-1 of each Mode B block k: its weights regress the inner estimate z on the items,
        and the normal equations of that regression are S_bb w = cov(x_b, z)."""
        inverses = {}
        for k, (lv, b) in enumerate(zip(self.latent_, self._blocks, strict=True)):
            if self.modes[lv] == "B":
                values, vectors = np.linalg.eigh(s[np.ix_(b, b)])
                if not values[0] > _COLLINEAR * values[-1]:
                    raise np.linalg.LinAlgError(
                        f"the items of the Mode B block {lv!r} are collinear (eigenvalues of their covariance "
                        f"matrix from {values[0]:.3g} to {values[-1]:.3g}): its weights are not identified"
                    )
                inverses[k] = (vectors / values) @ vectors.T
        return inverses

    def _estimate(self, s: np.ndarray, start: list[np.ndarray] | None = None) -> _Estimate:
        """The PLS iteration on S; the covariances of the items with the inner estimates xWE are SWE."""
        inverses = self._mode_b_inverses(s)
        weights, corr = self._unit_scores(s, [np.ones(b.size) for b in self._blocks] if start is None else start)
        for iteration in range(1, self.max_iter + 1):
            cov_z = s @ self._weight_matrix(weights) @ self._inner_weights(corr)
            new = [
                inverses[k] @ cov_z[b, k] if k in inverses else cov_z[b, k]  # Mode B: regression, A: covariance
                for k, b in enumerate(self._blocks)
            ]
            new, corr = self._unit_scores(s, new)
            change = max(float(np.max(np.abs(a - b))) for a, b in zip(new, weights, strict=True))
            weights = new
            if change < self.tol:
                return _Estimate(weights, corr, True, iteration)
        return _Estimate(weights, corr, False, self.max_iter)

    def _structural(self, corr: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Path coefficient matrix B[from, to] and R2 per endogenous latent variable: OLS on the
        latent variable correlations `corr`."""
        paths = np.zeros_like(corr)
        r2 = {}
        for j, (lv, pred) in enumerate(zip(self.latent_, self._predecessors, strict=True)):
            if pred.size:
                coef = np.linalg.solve(corr[np.ix_(pred, pred)], corr[pred, j])
                paths[pred, j] = coef
                r2[lv] = float(corr[pred, j] @ coef)
        return paths, r2

    def _rho_a(self, s: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        """Dijkstra-Henseler rho_A per block; 1 for single items and Mode B blocks."""
        rho = np.ones(len(self.latent_))
        for k, (lv, b, w) in enumerate(zip(self.latent_, self._blocks, weights, strict=True)):
            if b.size < 2 or self.modes[lv] != "A":
                continue
            s_bb = s[np.ix_(b, b)]
            ww = float(w @ w)
            off_s = float(w @ s_bb @ w - np.sum(w**2 * np.diag(s_bb)))
            off_ww = ww**2 - float(np.sum(w**4))
            # off_ww is 0 only when a single item carries all the weight: nothing to estimate rho_A from
            rho[k] = ww**2 * off_s / off_ww if off_ww > 0 else float("nan")
        return rho

    def _cross_loadings(self, s: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        """cor(item, score) for every item and latent variable: SW over the item sds (the scores
        have unit variance)."""
        return s @ self._weight_matrix(weights) / np.sqrt(np.diag(s))[:, None]

    def _results(self, s: np.ndarray, est: _Estimate) -> _Results:
        """Paths, R2, own-block loadings and rho_A of one estimate (PLSc when ``consistent``)."""
        corr = est.correlations
        rho_a = self._rho_a(s, est.weights)
        cross = self._cross_loadings(s, est.weights)
        loadings = np.concatenate([cross[b, k] for k, b in enumerate(self._blocks)])
        if not self.consistent:
            paths, r2 = self._structural(corr)
            return _Results(corr, paths, r2, loadings, rho_a, True)
        sd = np.sqrt(np.diag(s))
        with np.errstate(invalid="ignore"):  # rho_A <= 0 leaves NaN, reported as inadmissible
            root = np.sqrt(rho_a)
            corr = corr / np.outer(root, root)
            np.fill_diagonal(corr, 1.0)
            for k, (lv, b, w) in enumerate(zip(self.latent_, self._blocks, est.weights, strict=True)):
                if b.size > 1 and self.modes[lv] == "A":
                    # lambda = c w on the items as estimated; / sd gives the standardised loading
                    loadings[b] = root[k] / float(w @ w) * w / sd[b]
        admissible = bool(
            np.all(np.isfinite(corr))
            and np.all(np.abs(corr) <= 1 + 1e-12)
            and np.linalg.eigvalsh(corr).min() > -1e-10
            and np.all(np.abs(loadings) <= 1 + 1e-12)
        )
        try:
            paths, r2 = self._structural(corr)
        except np.linalg.LinAlgError:  # a singular corrected matrix: no OLS solution
            paths = np.where(self._adjacency > 0, np.nan, 0.0)
            r2 = {lv: float("nan") for j, lv in enumerate(self.latent_) if self._adjacency[:, j].any()}
            admissible = False
        return _Results(corr, paths, r2, loadings, rho_a, admissible)

    # --- fitting ---------------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, bootstrap: int = 0, seed: int = 0, confidence: float = 0.95) -> PLSPathModel:
        """Estimate the model on one row per respondent; ``bootstrap`` > 0 adds percentile intervals
        from that many resamples (seeded by ``seed``) in ``bootstrap_``. With ``consistent`` the
        paths, R2, loadings, AVE, rho_c, total effects and their intervals are PLSc's, and
        ``admissible_`` says whether the corrected solution is a valid one."""
        raw, self.item_means_, self.item_sds_ = self._prepare(data)
        centred = raw - self.item_means_
        del raw  # the centred items are all the fit and the bootstrap read: one n x p matrix, not two
        s = self._standardise(_covariance(centred, np.ones(len(centred))))  # as for a resample that draws everyone once
        est = self._estimate(s)
        self.converged_, self.n_iter_ = est.converged, est.iterations
        if not est.converged:
            warnings.warn(
                f"PLS did not converge in {self.max_iter} iterations (tol {self.tol})", RuntimeWarning, stacklevel=2
            )
        self._weights = est.weights
        self.n_obs_ = centred.shape[0]
        w = self._weight_matrix(est.weights)
        w = w / self.item_sds_[:, None] if self.scaled else w  # x W with x = centred / sds, without x
        self.scores_ = pd.DataFrame(centred @ w, index=data.index, columns=self.latent_)
        res = self._results(s, est)
        paths, r2 = res.paths, res.r2
        self.rho_a_ = pd.Series(res.rho_a, index=self.latent_, dtype=float)
        self.construct_correlations_ = pd.DataFrame(res.correlations, index=self.latent_, columns=self.latent_)
        self.admissible_ = res.admissible
        if not res.admissible:
            warnings.warn(
                "inadmissible PLSc solution: a rho_A that is not positive, a corrected correlation or loading "
                "outside [-1, 1], or a corrected correlation matrix that is not positive definite "
                f"(rho_A {self.rho_a_.round(3).to_dict()}); too few respondents or a block that does not measure "
                "one factor",
                RuntimeWarning,
                stacklevel=2,
            )
        self.path_coefficients_ = pd.DataFrame(paths, index=self.latent_, columns=self.latent_)
        self.r2_ = pd.Series(r2, dtype=float)
        n_pred = {lv: int(self._adjacency[:, j].sum()) for j, lv in enumerate(self.latent_)}
        n = self.n_obs_
        self.r2_adjusted_ = pd.Series({lv: 1 - (1 - v) * (n - 1) / (n - n_pred[lv] - 1) for lv, v in r2.items()})
        lv_of = [lv for lv, items in self.outer.items() for _ in items]
        self.outer_weights_ = pd.Series(np.concatenate(est.weights), index=self.items_, dtype=float)
        cross = self._cross_loadings(s, est.weights)
        self.cross_loadings_ = pd.DataFrame(cross, index=self.items_, columns=self.latent_)
        self.loadings_ = pd.Series(res.loadings, index=self.items_, dtype=float)
        self.block_of_ = pd.Series(lv_of, index=self.items_)
        self._quality(s)
        k = len(self.latent_)
        self.total_effects_ = pd.DataFrame(
            np.linalg.inv(np.eye(k) - paths) - np.eye(k), index=self.latent_, columns=self.latent_
        )
        self.bootstrap_ = self._bootstrap(centred, bootstrap, seed, confidence) if bootstrap > 0 else None
        return self

    def _quality(self, s: np.ndarray) -> None:
        """AVE, composite reliability, Cronbach's alpha per block and the GoF index."""
        ave, rho, alpha = {}, {}, {}
        for lv, b in zip(self.latent_, self._blocks, strict=True):
            lam = self.loadings_.iloc[b].to_numpy()
            ave[lv] = float(np.mean(lam**2))
            rho[lv] = float(lam.sum() ** 2 / (lam.sum() ** 2 + np.sum(1 - lam**2)))
            k = b.size
            if k == 1:
                alpha[lv] = 1.0  # a single item is its own score (as SmartPLS and plspm report)
            else:  # the items' variances against the variance of their sum
                s_bb = s[np.ix_(b, b)]
                alpha[lv] = float(k / (k - 1) * (1 - np.trace(s_bb) / s_bb.sum()))
        self.ave_ = pd.Series(ave)
        self.composite_reliability_ = pd.Series(rho)
        self.cronbach_alpha_ = pd.Series(alpha)
        multi = [i for i in self.items_ if len(self.outer[self.block_of_[i]]) > 1]
        communality = float(np.mean(self.loadings_[multi] ** 2)) if multi else float("nan")
        self.gof_ = float(np.sqrt(communality * self.r2_.mean())) if len(self.r2_) else float("nan")

    def _bootstrap(self, centred: np.ndarray, n_boot: int, seed: int, confidence: float) -> pd.DataFrame:
        """Percentile intervals of paths, weights, loadings and R2 over `n_boot` resamples; each
        is fitted from its item covariance matrix (`centred`: the items minus their means), with
        every respondent weighted by how often it was drawn."""
        if not 0 < confidence < 1:
            raise ValueError("confidence must be in (0, 1)")
        rng = np.random.default_rng(seed)
        n = centred.shape[0]
        labels = (
            [("path", f"{a} -> {b}") for a, b in self.inner]
            + [("weight", i) for i in self.items_]
            + [("loading", i) for i in self.items_]
            + [("r2", lv) for lv in self.r2_.index]
        )
        path_idx = [(self.latent_.index(a), self.latent_.index(b)) for a, b in self.inner]
        tiny = 1e-8 * self.item_sds_**2  # above a constant item's variance, which is 0 up to rounding
        draws, failed, inadmissible = [], 0, 0
        for _ in range(n_boot):
            counts = np.bincount(rng.integers(0, n, n), minlength=n)
            cov = _covariance(centred, counts)
            # a resample where an item is constant cannot be standardised; the drawn rows are
            # compared only when some item's variance is small enough to be that
            if np.any(np.diag(cov) <= tiny) and _has_constant_item(centred[counts > 0]):
                failed += 1
                continue
            s = self._standardise(cov)
            try:
                est = self._estimate(s, start=self._weights)
                res = self._results(s, est)
            except np.linalg.LinAlgError:
                failed += 1
                continue
            if not res.admissible:
                inadmissible += 1
                continue
            draws.append(
                [res.paths[i, j] for i, j in path_idx]
                + list(np.concatenate(est.weights))
                + list(res.loadings)
                + [res.r2[lv] for lv in self.r2_.index]
            )
        self.bootstrap_failures_ = failed
        self.bootstrap_inadmissible_ = inadmissible
        if not draws:
            raise ValueError(
                f"every bootstrap resample failed ({failed} constant items or singular, {inadmissible} inadmissible "
                "PLSc solutions): too few respondents"
            )
        d = np.array(draws)
        estimate = (
            [self.path_coefficients_.iat[i, j] for i, j in path_idx]
            + list(self.outer_weights_)
            + list(self.loadings_)
            + list(self.r2_)
        )
        tail = (1 - confidence) / 2
        return pd.DataFrame(
            {
                "kind": [k for k, _ in labels],
                "name": [v for _, v in labels],
                "estimate": estimate,
                "boot_mean": d.mean(axis=0),
                "std_error": d.std(axis=0, ddof=1) if len(d) > 1 else np.nan,
                "lower": np.quantile(d, tail, axis=0),
                "upper": np.quantile(d, 1 - tail, axis=0),
                "resamples": len(d),
            }
        )

    # --- the index ------------------------------------------------------------------------------

    def unstandardised_weights(self, lv: str) -> pd.Series:
        """The weights on the raw items of `lv`: w_i / sd(item_i) (w_i itself when scaled=False)."""
        self._check_fitted()
        if lv not in self.outer:
            raise ValueError(f"unknown latent variable {lv!r}; the model has {self.latent_}")
        items = list(self.outer[lv])
        w = self.outer_weights_[items]
        if self.scaled:
            w = w / pd.Series(self.item_sds_, index=self.items_)[items]
        return w

    def index(self, lv: str, scale_min: float, scale_max: float, data: pd.DataFrame | None = None) -> float:
        """The 0-100 index of `lv` (ACSI): fitted unstandardised weights on the item means of
        `data` (default: the fitting data), so a segment's index uses the pooled weights."""
        if not scale_max > scale_min:
            raise ValueError("scale_max must be above scale_min")
        w = self.unstandardised_weights(lv)
        if (w < 0).any():
            negative = ", ".join(f"{i} ({v:.3g})" for i, v in w[w < 0].items())
            raise ValueError(
                f"negative outer weights in {lv!r}: {negative}; the index would not be a mean inside the scale "
                "(report the block's weights instead of an index)"
            )
        items = list(w.index)
        if data is None:
            means = pd.Series(self.item_means_, index=self.items_)[items]
        else:
            if absent := [i for i in items if i not in data.columns]:
                raise ValueError(f"data lacks the items {absent}")
            means = data[items].astype(float).mean()
            if means.isna().any():
                raise ValueError(f"no answers for {list(means[means.isna()].index)}")
        total = float(w.sum())
        return float(100.0 * (float(w @ means) - scale_min * total) / ((scale_max - scale_min) * total))

    def _check_fitted(self) -> None:
        if not hasattr(self, "outer_weights_"):
            raise ValueError("the model is not fitted yet: call fit(data) first")
