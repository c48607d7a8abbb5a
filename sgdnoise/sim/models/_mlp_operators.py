r"""Matrix-free curvature operators of an MLP: the whole network or one dense layer.

Whole network (every layer, weights and biases, the cross-layer blocks; D = ``num_params`` in the
model's flat parameter order).  All products are blocked: k directions at once, as GEMMs over the
samples, chunked so that the temporaries stay bounded.  The per-sample quantities of one point w —
layer inputs a_l, φ′(s_l), the residual factor φ″(s_l) ∘ W_{l+1}ᵀδ_{l+1}, gradients δ_l = ∂ℓ_p/∂s_l
and the loss Hessian in the outputs Λ_p = ∂²ℓ_p/∂z∂zᵀ — are computed once and cached.

**H V** is Pearlmutter's R-operator (forward-over-reverse differentiation written out by hand)
for k tangents at once.  With the forward tangent R{s_l} and the backward tangent R{δ_l},

.. math::
    R\{s_l\} = V_l a_l + W_l R\{a_l\},\quad R\{a_{l+1}\} = \varphi'(s_l)\circ R\{s_l\},\quad
    R\{\delta_{L-1}\} = \Lambda_p R\{z\},

.. math::
    R\{\delta_l\} = \varphi'(s_l)\circ\bigl(W_{l+1}^\top R\{\delta_{l+1}\}
                    + V_{l+1}^{w\top}\delta_{l+1}\bigr)
                    + \varphi''(s_l)\circ (W_{l+1}^\top \delta_{l+1})\circ R\{s_l\},

and the layer-l block of h_p v is R{δ_l} a_lᵀ + δ_l R{a_l}ᵀ.  The term V_{l+1}^{w⊤}δ_{l+1} (and
δ_l R{a_l}ᵀ) is the curvature of the network map itself, which does not vanish for piecewise-linear
activations: z is multilinear in the weights of different layers, so the whole-network Hessian of
a ReLU network is **not** its Gauss–Newton matrix (only its diagonal layer blocks are).

**M V** = E_p[h_p (h_p v)] without a per-sample D-vector: the layer-l block of u_p = h_p v is the
rank-two matrix r_{l,p} a_{l,p}ᵀ + δ_{l,p} ρ_{l,p}ᵀ (r = R{δ_l}, ρ = R{a_l}), so a second
R-operator pass with the per-sample tangent u_p needs only

.. math::
    U_{l,p} a_{l,p} = r_{l,p}\|a_{l,p}\|^2 + \delta_{l,p}\,(\rho_{l,p}^\top a_{l,p}), \qquad
    U_{l,p}^{w\top}\delta_{l,p} = a^w_{l,p}\,(r_{l,p}^\top\delta_{l,p})
                                   + \rho_{l,p}\,\|\delta_{l,p}\|^2

(a^w: a without its bias entry), O(Σ_l d_l) per sample and direction.  An M-product costs about
two H-products, for every activation (the φ″ residual terms included, nothing dropped).

**Σ₁ V** = E_p[g_p g_pᵀ V] − ḡḡᵀV with g_pᵀv = Σ_l δ_{l,p}ᵀ V_l a_{l,p} (one GEMM per layer) and
Σ_p t_p g_p assembled per layer as ((t ∘ δ_l)ᵀ a_l).

One layer: the layer's Kronecker factors go to :func:`sgdnoise.theory.kronecker_layer_operators`:
for piecewise-linear activations as low-rank factors G_{l,p} = B_pᵀ Λ_p B_p with B_p = ∂z/∂s_l
(K × d_{l+1}), so no N·d_{l+1}² array is ever stored; for smooth activations as dense G (N, out,
out), after a memory estimate.

References
----------
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
N. N. Schraudolph, "Fast curvature matrix-vector products for second-order gradient descent",
Neural Computation 14 (2002).
F. Dangel, F. Kunstner, P. Hennig, "BackPACK: packing more into backprop", ICLR 2020.
Zhang, Yang & Tu, arXiv:2602.05600 (spec part A: H, M = E_p[h_p²], Σ₁, C).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdnoise import backends
from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise.sim.models._losses import _hessians
from sgdnoise.theory._operators import BlockOperator, CurvatureOperators

if TYPE_CHECKING:
    from sgdnoise.sim.models.mlp import MLP

#: Activations whose second derivative vanishes almost everywhere (the residual term of the
#: Hessian backpropagation through the activation is zero).
PIECEWISE_LINEAR: tuple[str, ...] = ("relu", "identity")

#: Floats per temporary array of one blocked pass (64 MiB): bounds the sample chunk.
WORK_FLOATS = 1 << 23
#: Samples per pass when no ``chunk`` is given (further bounded by WORK_FLOATS).
DEFAULT_CHUNK = 4096

_HINT = "use fewer samples, a smaller block or chunk, or raise max_bytes"


def _sample_chunk(chunk: int, floats_per_sample: int) -> int:
    """Samples per pass: at most ``chunk``, and at most WORK_FLOATS per temporary array."""
    return max(1, min(chunk, WORK_FLOATS // max(1, floats_per_sample)))


class NetworkFactors:
    r"""Per-sample quantities of an MLP at one point w, cached for blocked curvature products.

    Holds, for N samples and layers l = 0, …, L−1: the layer inputs a_l (N, d_l + bias), their
    squared norms, δ_l = ∂ℓ_p/∂s_l (N, d_{l+1}), φ′(s_l) and (smooth activations only)
    φ″(s_l) ∘ W_{l+1}ᵀδ_{l+1} for hidden layers (N, d_{l+1}), and Λ_p = ∂²ℓ_p/∂z∂zᵀ (N, K, K),
    as arrays of module ``xp``.

    Parameters
    ----------
    model : MLP
    w : (D,) array
    x : (N, d_0) array
    T : (N, K) array
        Float targets (one-hot labels for the softmax losses).
    chunk : int, optional
        Largest sample chunk of a pass (default :data:`DEFAULT_CHUNK`).
    xp : module
        numpy or cupy.
    """

    def __init__(self, model: MLP, w: FloatArray, x: FloatArray, T: FloatArray, *,
                 chunk: int | None, xp: ModuleType) -> None:
        chunk = DEFAULT_CHUNK if chunk is None else chunk
        self.model = model
        self.xp = xp
        self.N = x.shape[0]
        self.L = model.num_layers
        self.chunk = chunk
        self.bias = int(model.bias)
        self.smooth = model.activation not in PIECEWISE_LINEAR
        layers = model.unpack(w)
        weights = model._split(layers)
        act = model.activation_function
        L, N = self.L, self.N
        widths = model.widths
        a = [np.empty((N, widths[l] + self.bias)) for l in range(L)]
        delta = [np.empty((N, widths[l + 1])) for l in range(L)]
        dphi = [np.empty((N, widths[l + 1])) for l in range(L - 1)]
        curv = [np.empty((N, widths[l + 1])) for l in range(L - 1)] if self.smooth else None
        Lam = np.empty((N, widths[-1], widths[-1]))
        for start in range(0, N, chunk):
            sl = slice(start, min(start + chunk, N))
            fp = model._forward(layers, x[sl])
            deltas = model._backward(layers, fp, T[sl])
            for l in range(L):
                a[l][sl] = fp.a[l]
                delta[l][sl] = deltas[l]
                if l < L - 1:
                    dphi[l][sl] = act.derivative(fp.s[l])
                    if curv is not None:
                        curv[l][sl] = act.second_derivative(fp.s[l]) * (deltas[l + 1]
                                                                        @ weights[l + 1])
            Lam[sl] = _hessians(model.loss_name, fp.logits, T[sl])
        Lam = 0.5 * (Lam + Lam.transpose(0, 2, 1))
        to = xp.asarray
        self.a = [to(v) for v in a]
        self.a_sq = [to(np.einsum("pi,pi->p", v, v)) for v in a]
        self.delta = [to(v) for v in delta]
        self.delta_sq = [to(np.einsum("po,po->p", v, v)) for v in delta]
        self.dphi = [to(v) for v in dphi]
        self.curv = [to(v) for v in curv] if curv is not None else None
        self.Lam = to(Lam)
        self.W = [to(np.ascontiguousarray(Wl)) for Wl in weights]  # without bias columns
        self.Wt = [to(np.ascontiguousarray(Wl.T)) for Wl in weights]
        self.shapes = model.layer_shapes
        self.slices = model.layer_slices
        self.D = model.num_params
        g = np.concatenate([(delta[l].T @ a[l]).reshape(-1) for l in range(L)]) / N
        self.g_mean = g
        self._g_mean_x = to(g)

    @staticmethod
    def nbytes(model: MLP, N: int) -> int:
        """Bytes the cache of :class:`NetworkFactors` takes for N samples (float64)."""
        widths, L, b = model.widths, model.num_layers, int(model.bias)
        per = sum(widths[l] + b + 1 for l in range(L))               # a_l and ‖a_l‖²
        per += sum(widths[l + 1] + 1 for l in range(L))              # δ_l and ‖δ_l‖²
        hidden = sum(widths[l + 1] for l in range(L - 1))
        per += hidden * (2 if model.activation not in PIECEWISE_LINEAR else 1)
        per += widths[-1] ** 2                                       # Λ_p
        return 8 * N * per

    # ------------------------------------------------------------------ blocked passes
    def _floats_per_sample(self, k: int) -> int:
        return k * (sum(self.model.widths) + self.L * (1 + self.bias))

    def work_nbytes(self, k: int) -> int:
        """Bytes of the temporaries of one blocked M-pass with k directions (the largest)."""
        n = _sample_chunk(self.chunk, self._floats_per_sample(k))
        return 8 * (6 * n * self._floats_per_sample(k) + 4 * k * self.D)

    def _split_columns(self, V: Any) -> list[Any]:
        """V (D, k) → per layer (k, out, in) copies."""
        k = V.shape[1]
        return [self.xp.ascontiguousarray(
            V[sl].reshape(rows, cols, k).transpose(2, 0, 1))
            for sl, (rows, cols) in zip(self.slices, self.shapes, strict=True)]

    def _join_columns(self, blocks: list[Any]) -> Any:
        """Per layer (k, out, in) → (D, k)."""
        k = blocks[0].shape[0]
        out = self.xp.empty((self.D, k), dtype=np.float64)
        for sl, blk in zip(self.slices, blocks, strict=True):
            out[sl] = blk.transpose(1, 2, 0).reshape(-1, k)
        return out

    def _r_pass(self, sl: slice, k: int, forward_term: Any, backward_term: Any
                ) -> tuple[list[Any], list[Any]]:
        """R-operator on samples ``sl`` for k tangents given by their actions.

        ``forward_term(l)`` is (n, k, d_{l+1}): the tangent's layer-l block applied to a_l;
        ``backward_term(l)`` (l ≥ 1) is (n, k, d_l): its layer-l block (without bias column)
        transposed, applied to δ_l.  Returns R{δ_l} (n, k, d_{l+1}) and R{a_l} (n, k, d_l)
        (None for l = 0) of every layer.
        """
        xp, L = self.xp, self.L
        Ra: list[Any] = [None] * L
        Rs: list[Any] = [None] * L
        for l in range(L):
            r = forward_term(l)
            if l > 0:
                n, _, d = Ra[l].shape
                r = r + (Ra[l].reshape(n * k, d) @ self.Wt[l]).reshape(n, k, -1)
            Rs[l] = r
            if l < L - 1:
                Ra[l + 1] = self.dphi[l][sl][:, None, :] * r
        Rd = xp.matmul(Rs[-1], self.Lam[sl])  # Λ symmetric: (Λ R{z})ᵀ rows
        Rdelta: list[Any] = [None] * L
        Rdelta[-1] = Rd
        for l in range(L - 2, -1, -1):
            n = Rd.shape[0]
            t = (Rd.reshape(n * k, -1) @ self.W[l + 1]).reshape(n, k, -1)
            t += backward_term(l + 1)
            Rd = self.dphi[l][sl][:, None, :] * t
            if self.curv is not None:
                Rd += self.curv[l][sl][:, None, :] * Rs[l]
            Rdelta[l] = Rd
        return Rdelta, Ra

    def _accumulate(self, acc: list[Any], sl: slice, Rdelta: list[Any], Ra: list[Any]) -> None:
        """acc_l += Σ_p R{δ_l} a_lᵀ + δ_l R{a_l}ᵀ (each acc_l of shape (k, out, in))."""
        for l in range(self.L):
            n, k, out = Rdelta[l].shape
            a = self.a[l][sl]
            acc[l] += (Rdelta[l].reshape(n, k * out).T @ a).reshape(k, out, -1)
            if Ra[l] is not None:
                d = Ra[l].shape[2]
                part = (self.delta[l][sl].T @ Ra[l].reshape(n, k * d)).reshape(out, k, d)
                acc[l][:, :, :d] += part.transpose(1, 0, 2)

    def _shared_terms(self, sl: slice, Vb: list[Any]) -> tuple[Any, Any]:
        """Tangent actions of directions V shared by all samples (GEMMs)."""
        k = Vb[0].shape[0]
        fwd_mats = [blk.reshape(k * blk.shape[1], -1).T for blk in Vb]       # (in, k·out)
        d = [self.model.widths[l] for l in range(self.L)]
        bwd_mats = [None] + [  # (out, k·d_l): V_lʷ transposed, stacked over k
            self.xp.ascontiguousarray(Vb[l][:, :, :d[l]].transpose(1, 0, 2)).reshape(
                Vb[l].shape[1], -1) for l in range(1, self.L)]

        def forward_term(l: int) -> Any:
            n = sl.stop - sl.start
            return (self.a[l][sl] @ fwd_mats[l]).reshape(n, k, -1)

        def backward_term(l: int) -> Any:
            n = sl.stop - sl.start
            return (self.delta[l][sl] @ bwd_mats[l]).reshape(n, k, -1)

        return forward_term, backward_term

    def _chunks(self, k: int) -> list[slice]:
        step = _sample_chunk(self.chunk, self._floats_per_sample(k))
        return [slice(s, min(s + step, self.N)) for s in range(0, self.N, step)]

    def _zeros(self, k: int) -> list[Any]:
        return [self.xp.zeros((k, rows, cols)) for rows, cols in self.shapes]

    def hessian_product(self, V: Any) -> Any:
        """H V for V (D, k): exact R-operator, blocked, summed over sample chunks."""
        k = V.shape[1]
        Vb = self._split_columns(V)
        acc = self._zeros(k)
        for sl in self._chunks(k):
            fwd, bwd = self._shared_terms(sl, Vb)
            Rdelta, Ra = self._r_pass(sl, k, fwd, bwd)
            self._accumulate(acc, sl, Rdelta, Ra)
        return self._join_columns(acc) / self.N

    def second_moment_product(self, V: Any) -> Any:
        """M V = E_p[h_p h_p V] for V (D, k): two R-operator passes, the second per sample."""
        xp = self.xp
        k = V.shape[1]
        Vb = self._split_columns(V)
        acc = self._zeros(k)
        widths = self.model.widths
        for sl in self._chunks(k):
            fwd, bwd = self._shared_terms(sl, Vb)
            r, rho = self._r_pass(sl, k, fwd, bwd)  # u_p = h_p v: blocks r aᵀ + δ ρᵀ

            def forward_term(l: int, r=r, rho=rho, sl=sl) -> Any:
                out = r[l] * self.a_sq[l][sl][:, None, None]
                if rho[l] is not None:
                    d = widths[l]
                    proj = xp.einsum("pki,pi->pk", rho[l], self.a[l][sl][:, :d])
                    out += self.delta[l][sl][:, None, :] * proj[:, :, None]
                return out

            def backward_term(l: int, r=r, rho=rho, sl=sl) -> Any:
                d = widths[l]
                dot = xp.einsum("pko,po->pk", r[l], self.delta[l][sl])
                out = self.a[l][sl][:, None, :d] * dot[:, :, None]
                out += rho[l] * self.delta_sq[l][sl][:, None, None]
                return out

            Rdelta, Ra = self._r_pass(sl, k, forward_term, backward_term)
            self._accumulate(acc, sl, Rdelta, Ra)
        return self._join_columns(acc) / self.N

    def quadratic_forms(self, V: Any, which: tuple[str, ...]) -> dict[str, Any]:
        r"""v_jᵀ A v_j for the columns of V (D, k) and A in ``which`` ⊆ {"H", "M", "Sigma1"}.

        One forward and one backward R-pass (no accumulation GEMM), shared by all three:

        .. math::
            v^\top h_p v = \sum_l r_l^\top V_l a_l + \rho_l^\top V_l^{w\top}\delta_l, \quad
            v^\top M v = \mathbb{E}_p \|h_p v\|^2 = \mathbb{E}_p \sum_l \|r_l\|^2\|a_l\|^2
              + 2 (r_l^\top\delta_l)(\rho_l^\top a^w_l) + \|\delta_l\|^2\|\rho_l\|^2,

        v ᵀΣ₁v = E_p (g_pᵀv)² − (ḡᵀv)²; r_l = R{δ_l}, ρ_l = R{a_l} of the pass along v.
        """
        xp = self.xp
        k = V.shape[1]
        Vb = self._split_columns(V)
        acc = {name: xp.zeros(k) for name in which}
        widths = self.model.widths
        for sl in self._chunks(k):
            fwd, bwd = self._shared_terms(sl, Vb)
            F = [fwd(l) for l in range(self.L)]
            if "Sigma1" in acc:
                t = sum(xp.einsum("pko,po->pk", F[l], self.delta[l][sl]) for l in range(self.L))
                acc["Sigma1"] += (t * t).sum(axis=0)
            if "H" not in acc and "M" not in acc:
                continue
            Bk = [None] + [bwd(l) for l in range(1, self.L)]
            r, rho = self._r_pass(sl, k, lambda l, F=F: F[l], lambda l, Bk=Bk: Bk[l])
            for l in range(self.L):
                if "H" in acc:
                    acc["H"] += xp.einsum("pko,pko->k", r[l], F[l])
                    if rho[l] is not None:
                        acc["H"] += xp.einsum("pkd,pkd->k", rho[l], Bk[l])
                if "M" in acc:
                    rr = xp.einsum("pko,pko->pk", r[l], r[l])
                    m = (rr * self.a_sq[l][sl][:, None]).sum(axis=0)
                    if rho[l] is not None:
                        d = widths[l]
                        rd = xp.einsum("pko,po->pk", r[l], self.delta[l][sl])
                        ra = xp.einsum("pkd,pd->pk", rho[l], self.a[l][sl][:, :d])
                        pp = xp.einsum("pkd,pkd->pk", rho[l], rho[l])
                        m += (2.0 * rd * ra + pp * self.delta_sq[l][sl][:, None]).sum(axis=0)
                    acc["M"] += m
        out = {name: value / self.N for name, value in acc.items()}
        if "Sigma1" in out:
            out["Sigma1"] = out["Sigma1"] - (self._g_mean_x @ V) ** 2
        return out

    def gradient_covariance_product(self, V: Any) -> Any:
        """Σ₁ V = E_p[g_p g_pᵀ V] − ḡ ḡᵀ V for V (D, k)."""
        xp = self.xp
        k = V.shape[1]
        Vb = self._split_columns(V)
        acc = self._zeros(k)
        for sl in self._chunks(k):
            fwd, _ = self._shared_terms(sl, Vb)
            t = sum(xp.einsum("pko,po->pk", fwd(l), self.delta[l][sl]) for l in range(self.L))
            n = sl.stop - sl.start
            for l in range(self.L):
                out = self.delta[l].shape[1]
                e = (t[:, :, None] * self.delta[l][sl][:, None, :]).reshape(n, k * out)
                acc[l] += (e.T @ self.a[l][sl]).reshape(k, out, -1)
        g = self._g_mean_x
        return self._join_columns(acc) / self.N - g[:, None] * (g @ V)[None, :]


def network_operators(model: MLP, w: FloatArray, x: FloatArray, T: FloatArray, *, block: int,
                      chunk: int | None, backend: str,
                      max_bytes: int | None) -> CurvatureOperators:
    """Whole-network H, M, Σ₁ as :class:`BlockOperator` s (K = None); see the module docstring."""
    backend = backends.resolve(backend, supported=("numpy", "cupy"))
    xp = backends.array_module(backend)
    N, D = x.shape[0], model.num_params
    cache = NetworkFactors.nbytes(model, N)
    check_allocation(cache + 8 * 4 * block * D,
                     f"the per-sample cache of the whole network (N = {N}, D = {D})",
                     max_bytes=max_bytes, hint=_HINT)
    factors = NetworkFactors(model, w, x, T, chunk=chunk, xp=xp)
    check_allocation(cache + factors.work_nbytes(block),
                     f"the whole-network products of {block} directions with their temporaries",
                     max_bytes=max_bytes, hint=_HINT)

    def op(apply: Any, name: str) -> BlockOperator:
        return BlockOperator(apply, D, name=name, block=block, xp=xp,
                             quadratic=lambda V: factors.quadratic_forms(V, (name,))[name])

    return CurvatureOperators(
        H=op(factors.hessian_product, "H"), M=op(factors.second_moment_product, "M"),
        Sigma1=op(factors.gradient_covariance_product, "Sigma1"), K=None,
        g_mean=factors.g_mean, num_samples=N, kappa_max=None,
        quadratic_forms=factors.quadratic_forms)


def _output_jacobians(model: MLP, w: FloatArray, x: FloatArray, T: FloatArray, index: int, *,
                      chunk: int | None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """B_p = ∂z/∂s_l (N, K, d_{l+1}), Λ_p (N, K, K), a_l and δ_l of one layer (φ″ = 0 only).

    B_{L−1} = I_K and B_l = (B_{l+1} W_{l+1}) ∘ φ′(s_l) (columns scaled), so that
    G_{l,p} = B_pᵀ Λ_p B_p exactly when every φ″ vanishes.
    """
    layers = model.unpack(w)
    weights = model._split(layers)
    act = model.activation_function
    N, K, L = x.shape[0], model.widths[-1], model.num_layers
    out = model.widths[index + 1]
    chunk = _sample_chunk(DEFAULT_CHUNK if chunk is None else chunk,
                          K * sum(model.widths[index + 1:]) + sum(model.widths))
    B_all = np.empty((N, K, out))
    Lam_all = np.empty((N, K, K))
    a_all = np.empty((N, model.widths[index] + int(model.bias)))
    d_all = np.empty((N, out))
    for start in range(0, N, chunk):
        sl = slice(start, min(start + chunk, N))
        fp = model._forward(layers, x[sl])
        deltas = model._backward(layers, fp, T[sl])
        n = sl.stop - sl.start
        B = np.broadcast_to(np.eye(K), (n, K, K))
        for l in range(L - 2, index - 1, -1):
            W = weights[l + 1]
            B = (B.reshape(n * K, -1) @ W).reshape(n, K, -1) * act.derivative(fp.s[l])[:, None, :]
        B_all[sl] = B
        Lam = _hessians(model.loss_name, fp.logits, T[sl])
        Lam_all[sl] = 0.5 * (Lam + Lam.transpose(0, 2, 1))
        a_all[sl] = fp.a[index]
        d_all[sl] = deltas[index]
    return B_all, Lam_all, a_all, d_all


def layer_operators(model: MLP, w: FloatArray, x: FloatArray, y: Any, T: FloatArray, index: int, *,
                    block: int, chunk: int | None, backend: str,
                    max_bytes: int | None) -> CurvatureOperators:
    """One layer's H, M, Σ₁ (and K) from its Kronecker factors; see the module docstring."""
    from sgdnoise.theory import LowRankFactors, kronecker_layer_operators

    N, K = x.shape[0], model.widths[-1]
    out, inn = model.widths[index + 1], model.widths[index] + int(model.bias)
    D = out * inn
    base = 8 * N * (inn + out) + 8 * 4 * block * D
    if model.activation in PIECEWISE_LINEAR and K < out:
        check_allocation(base + 8 * N * (K * out + K * K),
                         f"the low-rank factors of layer {index} (N = {N}, K = {K}, "
                         f"out = {out})", max_bytes=max_bytes, hint=_HINT)
        B, Lam, a, delta = _output_jacobians(model, w, x, T, index, chunk=chunk)
        G: Any = LowRankFactors(B, Lam)
    else:
        check_allocation(base + 8 * N * out * out,
                         f"the dense factors G (N·out² = {N}·{out}² floats) of layer {index}",
                         max_bytes=max_bytes,
                         hint="use fewer samples or raise max_bytes (smooth activations need "
                              "the dense out×out factor G_p of every sample)")
        G, a, delta = model.layer_factors(w, x, y, index,
                                          chunk=DEFAULT_CHUNK if chunk is None else chunk)
    return kronecker_layer_operators(G, a, delta, block=block, chunk=chunk, backend=backend)


__all__ = ["PIECEWISE_LINEAR", "NetworkFactors", "layer_operators", "network_operators"]
