r"""A fully connected network in numpy with exact per-sample gradients, Hessians and Kronecker factors.

Architecture, for ``widths = (d_0, d_1, …, d_L)``: layer l = 0, …, L−1 maps its input a_l to the
pre-activation s_l = W̃_l a_l, with W̃_l = [W_l | b_l] of shape (d_{l+1}, d_l + bias) and a_l the
previous layer's output with a constant 1 appended when ``bias``; hidden layers apply the
activation φ (a_{l+1} = [φ(s_l), 1]), the last one is linear and gives the logits z = s_{L−1}.

Parameters live in one flat float64 vector w: the row-major W̃_0, then W̃_1, … (so the bias of
output unit o of layer l sits right after that row's weights).

Dense-layer structure (spec part A): layer l sees z_l = W̃_l a_l with a_l independent of W̃_l, so

.. math::
    g_p^{(l)} = \delta_{l,p} \otimes a_{l,p}, \qquad
    h_p^{(l,l)} = G_{l,p} \otimes a_{l,p} a_{l,p}^\top ,

with δ_l = ∂ℓ/∂s_l and G_l = ∂²ℓ/∂s_l∂s_lᵀ obtained by Hessian backpropagation from the loss
Hessian G_{L−1} = ∂²ℓ/∂z∂zᵀ:

.. math::
    \delta_l = D_l W_{l+1}^\top \delta_{l+1}, \qquad
    G_l = D_l W_{l+1}^\top G_{l+1} W_{l+1} D_l
          + \mathrm{diag}\bigl(\varphi''(s_l) \circ W_{l+1}^\top \delta_{l+1}\bigr),

D_l = diag(φ′(s_l)), W_{l+1} the weights of W̃_{l+1} without the bias column.  For ReLU
(φ″ = 0) this is the Gauss–Newton form; smooth activations add the residual diagonal.

Full (all-layer) Hessian-vector products use Pearlmutter's R-operator (forward-over-reverse
differentiation written out by hand), which is exact.

References
----------
Y. Zhang, N. Yang, Y. Tu, arXiv:2602.05600 (spec part A, "Dense-layer structure").
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
A. Botev, H. Ritter, D. Barber, "Practical Gauss-Newton optimisation for deep learning",
ICML 2017 (recursive block-diagonal Hessian backpropagation).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sgdnoise import backends
from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_choice,
    check_finite_result,
    check_positive_int,
    check_rng,
)
from sgdnoise.sim._overflow import finite_result
from sgdnoise.sim.models._activations import ACTIVATIONS, Activation, get_activation
from sgdnoise.sim.models._losses import (
    LOSSES,
    _gradients,
    _hessians,
    _values,
    get_loss,
    loss_targets,
)

if TYPE_CHECKING:
    from sgdnoise.theory._operators import CurvatureOperators

# floats per temporary array of the chunked R-operator (32 MiB)
_WORK_FLOATS = 1 << 22


class ForwardPass(NamedTuple):
    """Everything the forward pass computes, for N samples and L layers.

    Attributes
    ----------
    a : list of (N, d_l + bias) arrays
        Input of each layer, with the constant 1 appended when the network has biases.
    s : list of (N, d_{l+1}) arrays
        Pre-activation s_l = W̃_l a_l of each layer; ``s[-1]`` are the logits.
    logits : (N, d_L) array
        z = s_{L−1}.
    """

    a: list[FloatArray]
    s: list[FloatArray]
    logits: FloatArray


def _resolve_backend(backend: str) -> str:
    """``"numpy"`` without probing the others (so the numpy path never imports numba)."""
    if backend == "numpy":
        return backend
    return backends.resolve(backend, supported=("numpy", "numba"))


def _unit_rows(start: int, stop: int, D: int) -> FloatArray:
    """Rows start … stop−1 of the D×D identity."""
    rows = np.zeros((stop - start, D))
    rows[np.arange(stop - start), np.arange(start, stop)] = 1.0
    return rows


def _append_ones(h: FloatArray) -> FloatArray:
    return np.concatenate([h, np.ones((h.shape[0], 1), dtype=h.dtype)], axis=1)


def _in_dtype(a: Any, dtype: np.dtype[Any]) -> Any:
    """``a`` as an array of ``dtype`` (the same object when it already is one)."""
    return np.asarray(a, dtype=dtype)


@dataclass(frozen=True, init=False)
class MLP:
    r"""Multilayer perceptron with exact per-sample gradients, Hessians and layer Kronecker factors.

    Parameters
    ----------
    widths : sequence of int
        (d_0, d_1, …, d_L): input dimension, hidden widths, number of outputs; at least two
        entries, each ≥ 1.
    activation : str
        Hidden-layer activation: ``"relu"``, ``"tanh"``, ``"gelu"`` (exact erf form),
        ``"sigmoid"`` or ``"identity"``.  The last layer is linear.
    loss : str
        ``"cross_entropy"`` (ℓ = −log softmax(z)_y), ``"softmax_mse"`` (ℓ = ½‖softmax(z) − e_y‖²)
        with integer labels (N,), or ``"mse"`` (ℓ = ½‖z − y‖²) with float targets (N, d_L).
        L = E_p ℓ_p (mean over samples).
    bias : bool
        Give every layer a bias, stored as the last column of W̃_l = [W_l | b_l].

    Notes
    -----
    The loss given as ``loss`` is stored as the attribute ``loss_name``: ``loss`` is the method
    computing L.  Parameter layout: one flat vector w = (vec W̃_0, vec W̃_1, …), row-major; see
    :attr:`layer_slices` and :meth:`unpack`.  Per-sample quantities are computed in chunks of
    ``chunk`` samples, so memory stays bounded by the output plus O(chunk · max width²).

    References
    ----------
    Spec part A ("Dense-layer structure", experiments: 784-50-50-10 ReLU MLP without bias);
    Zhang, Yang & Tu, arXiv:2602.05600; Pearlmutter, Neural Computation 6 (1994) (R-operator).
    """

    widths: tuple[int, ...]
    activation: str
    loss_name: str
    bias: bool

    def __init__(self, widths: Any, activation: str = "relu", loss: str = "cross_entropy",
                 bias: bool = False, *, loss_name: str | None = None) -> None:
        # a hand-written __init__: the loss is passed as ``loss`` but stored as ``loss_name``,
        # since ``loss`` is the method computing L; ``loss_name=`` (the field's own name) is
        # accepted too, so that ``dataclasses.replace`` works
        if loss_name is not None:
            loss = loss_name
        try:
            widths = tuple(widths)
        except TypeError as exc:
            raise ValueError(f"widths must be a sequence of integers; got {widths!r}") from exc
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "activation", activation)
        object.__setattr__(self, "loss_name", loss)
        object.__setattr__(self, "bias", bias)
        self.__post_init__()

    def __post_init__(self) -> None:
        widths = self.widths
        if len(widths) < 2:
            raise ValueError(f"widths must have at least two entries (input, output); got {widths}")
        widths = tuple(check_positive_int(k, "widths") for k in widths)
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_choice(self.loss_name, "loss", LOSSES)
        if not isinstance(self.bias, bool | np.bool_):
            raise ValueError(f"bias must be a bool; got {self.bias!r}")  # noqa: TRY004
        if self.loss_name != "mse" and widths[-1] < 2:
            raise ValueError(
                f"widths must end with at least 2 outputs for loss={self.loss_name!r}; "
                f"got {widths}"
            )
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "bias", bool(self.bias))

    # ------------------------------------------------------------------ layout
    @property
    def num_layers(self) -> int:
        """L, the number of dense layers."""
        return len(self.widths) - 1

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(d_{l+1}, d_l + bias) of each W̃_l."""
        b = int(self.bias)
        return [(self.widths[l + 1], self.widths[l] + b) for l in range(self.num_layers)]

    @property
    def layer_slices(self) -> list[slice]:
        """Where each W̃_l sits in the flat parameter vector."""
        out, start = [], 0
        for rows, cols in self.layer_shapes:
            out.append(slice(start, start + rows * cols))
            start += rows * cols
        return out

    @property
    def num_params(self) -> int:
        """D = Σ_l d_{l+1} (d_l + bias)."""
        return sum(rows * cols for rows, cols in self.layer_shapes)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """("layer0", "layer1", …), the names accepted wherever a layer is asked for."""
        return tuple(f"layer{l}" for l in range(self.num_layers))

    @property
    def activation_function(self) -> Activation:
        """The hidden-layer :class:`~sgdnoise.sim.models.Activation`."""
        return get_activation(self.activation)

    def layer_index(self, layer: int | str) -> int:
        """Index in ``range(L)`` of ``layer`` (an int, negative counting from the end, or a name)."""
        L = self.num_layers
        if isinstance(layer, str):
            if layer not in self.layer_names:
                raise ValueError(f"layer must be one of {self.layer_names}; got {layer!r}")
            return self.layer_names.index(layer)
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise ValueError(f"layer must be an int or a layer name; got {layer!r}")  # noqa: TRY004
        if not -L <= int(layer) < L:
            raise ValueError(f"layer must be in range({L}) (or negative from the end); got {layer}")
        return int(layer) % L

    def _check_w(self, w: Any, name: str = "w", dtype: Any = np.float64) -> FloatArray:
        w = as_float_array(w, name, ndim=1, dtype=dtype)
        if w.size != self.num_params:
            raise ValueError(f"{name} must have D = {self.num_params} entries; got {w.size}")
        return w

    def unpack(self, w: FloatArray) -> list[FloatArray]:
        """Views W̃_l of shape (d_{l+1}, d_l + bias) into ``w`` (no copy for a float64 input)."""
        w = self._check_w(w)
        return [w[sl].reshape(shape) for sl, shape in zip(self.layer_slices, self.layer_shapes,
                                                          strict=True)]

    def named_layers(self, w: FloatArray) -> dict[str, FloatArray]:
        """{"layer0": W̃_0, …}, the views of :meth:`unpack` by name."""
        return dict(zip(self.layer_names, self.unpack(w), strict=True))

    def _split(self, layers: list[FloatArray]) -> list[FloatArray]:
        """W_l without the bias column."""
        return [W[..., :-1] if self.bias else W for W in layers]

    # ------------------------------------------------------------------ init
    def init(self, rng: np.random.Generator | int, *, scale: str | float = "auto") -> FloatArray:
        r"""Random initial weights, Gaussian with zero biases.

        Layer l gets W_l ~ N(0, std_l²) entrywise with fan_in = d_l, fan_out = d_{l+1}:

        * ``"he"``: std = √(2/fan_in) (He et al. 2015; for ReLU and GELU),
        * ``"glorot"``: std = √(2/(fan_in + fan_out)) (Glorot & Bengio 2010),
        * ``"auto"``: ``"he"`` for relu/gelu, ``"glorot"`` otherwise,
        * a float c > 0: std = c/√fan_in.

        Parameters
        ----------
        rng : numpy.random.Generator or int
            Source of randomness (an int is a seed).
        scale : {"auto", "he", "glorot"} or float

        References
        ----------
        K. He et al., "Delving deep into rectifiers", ICCV 2015; X. Glorot, Y. Bengio,
        "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010.
        """
        rng = check_rng(rng)
        if isinstance(scale, str):
            scale = check_choice(scale, "scale", ("auto", "he", "glorot"))
            if scale == "auto":
                scale = "he" if self.activation in ("relu", "gelu") else "glorot"
        elif isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (
            np.isfinite(scale) and scale > 0
        ):
            raise ValueError(f"scale must be 'auto', 'he', 'glorot' or a float > 0; got {scale!r}")
        w = np.zeros(self.num_params)
        for l, W in enumerate(self.unpack(w)):
            fan_in, fan_out = self.widths[l], self.widths[l + 1]
            if scale == "he":
                std = np.sqrt(2.0 / fan_in)
            elif scale == "glorot":
                std = np.sqrt(2.0 / (fan_in + fan_out))
            else:
                std = float(scale) / np.sqrt(fan_in)
            W[:, :fan_in] = std * rng.standard_normal((fan_out, fan_in))
        return w

    # ------------------------------------------------------------------ validation
    def _check_x(self, x: Any, dtype: Any = np.float64) -> FloatArray:
        x = as_float_array(x, "x", ndim=2, dtype=dtype)
        if x.shape[1] != self.widths[0] or x.shape[0] < 1:
            raise ValueError(
                f"x must have shape (N, {self.widths[0]}) with N >= 1; got {x.shape}"
            )
        return x

    def _check_data(self, w: Any, x: Any, y: Any) -> tuple[list[FloatArray], FloatArray,
                                                           FloatArray]:
        layers = self.unpack(w)
        x = self._check_x(x)
        T = loss_targets(self.loss_name, y, x.shape[0], self.widths[-1])
        return layers, x, T

    def _check_data_float32(self, w: Any, x: Any, y: Any) -> tuple[list[Any], Any, Any]:
        """:meth:`_check_data` in float32: layer views into ``w``, x and the targets in float32."""
        w = self._check_w(w, dtype=np.float32)
        layers = [w[sl].reshape(shape) for sl, shape in zip(self.layer_slices, self.layer_shapes,
                                                            strict=True)]
        x = self._check_x(x, dtype=np.float32)
        T = as_float_array(loss_targets(self.loss_name, y, x.shape[0], self.widths[-1]), "y",
                           dtype=np.float32)
        return layers, x, T

    # ------------------------------------------------------------------ forward / backward
    def _forward(self, layers: list[FloatArray], x: FloatArray) -> ForwardPass:
        act = self.activation_function
        a = _append_ones(x) if self.bias else x
        a_list, s_list = [], []
        for l, W in enumerate(layers):
            s = a @ W.T
            a_list.append(a)
            s_list.append(s)
            if l < len(layers) - 1:
                h = _in_dtype(act.value(s), s.dtype)  # float32 runs stay float32
                a = _append_ones(h) if self.bias else h
        return ForwardPass(a_list, s_list, s_list[-1])

    def _backward(self, layers: list[FloatArray], fp: ForwardPass,
                  T: FloatArray) -> list[FloatArray]:
        """δ_l = ∂ℓ_p/∂s_l for every layer, each (n, d_{l+1})."""
        act = self.activation_function
        weights = self._split(layers)
        L = len(layers)
        deltas: list[FloatArray] = [np.empty(0)] * L
        dtype = fp.logits.dtype  # float32 runs stay float32 (the helpers work in float64)
        delta = _in_dtype(_gradients(self.loss_name, fp.logits, T), dtype)
        deltas[-1] = delta
        for l in range(L - 2, -1, -1):
            delta = _in_dtype(act.derivative(fp.s[l]), dtype) * (delta @ weights[l + 1])
            deltas[l] = delta
        return deltas

    @finite_result
    def forward(self, w: FloatArray, x: FloatArray) -> ForwardPass:
        """Forward pass: layer inputs a_l (bias 1 appended when ``bias``), pre-activations s_l, logits.

        Parameters
        ----------
        w : (D,) array
        x : (N, d_0) array

        Returns
        -------
        ForwardPass
            ``(a, s, logits)``; see :class:`ForwardPass`.
        """
        return self._forward(self.unpack(w), self._check_x(x))

    def _chunks(self, N: int, chunk: int) -> range:
        return range(0, N, check_positive_int(chunk, "chunk"))

    # ------------------------------------------------------------------ losses and gradients
    @finite_result
    def per_sample_losses(self, w: FloatArray, x: FloatArray, y: Any, *,
                          chunk: int = 4096) -> FloatArray:
        """ℓ_p for every sample, shape (N,)."""
        layers, x, T = self._check_data(w, x, y)
        N = x.shape[0]
        out = np.empty(N)
        for start in self._chunks(N, chunk):
            sl = slice(start, min(start + chunk, N))
            out[sl] = _values(self.loss_name, self._forward(layers, x[sl]).logits, T[sl])
        return out

    @finite_result
    def loss(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096,
             backend: str = "numpy") -> float:
        """L = E_p ℓ_p.

        Parameters
        ----------
        chunk : int
            Samples per pass (numpy backend).
        backend : {"numpy", "numba", "auto"}
            ``"numpy"`` is the reference; ``"numba"`` runs a compiled forward pass (threads over
            fixed blocks of samples, so the result does not depend on the thread count).
        """
        backend = _resolve_backend(backend)
        if backend == "numba":
            _, x, T = self._check_data(w, x, y)
            from sgdnoise.sim.models import _mlp_numba

            return _mlp_numba.mean_loss(self._kernel_spec(), self._check_w(w), x, T)
        return float(self.per_sample_losses(w, x, y, chunk=chunk).mean())

    @finite_result
    def per_sample_gradients(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096,
                             backend: str = "numpy") -> FloatArray:
        r"""Per-sample gradients g_p = ∇_w ℓ_p, shape (N, D), by backpropagation.

        Layer l's block of g_p is vec(δ_{l,p} a_{l,p}ᵀ) (row-major), δ_l = ∂ℓ_p/∂s_l.

        Parameters
        ----------
        w : (D,) array
        x : (N, d_0) array
        y : labels (int (N,)) or targets (float (N, d_L)), as the loss requires
        chunk : int
            Samples per pass (numpy backend); peak memory beyond the output is
            O(chunk · Σ_l d_l).
        backend : {"numpy", "numba", "auto"}
            ``"numpy"`` is the reference; ``"numba"`` runs a compiled per-sample kernel.

        References
        ----------
        Spec part A, "Dense-layer structure" (g_p = δ_p ⊗ a_p).
        """
        layers, x, T = self._check_data(w, x, y)
        chunk = check_positive_int(chunk, "chunk")
        backend = _resolve_backend(backend)
        if backend == "numba":
            from sgdnoise.sim.models import _mlp_numba

            return _mlp_numba.per_sample_gradients(self._kernel_spec(), self._check_w(w), x, T)
        N = x.shape[0]
        out = np.empty((N, self.num_params))
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            fp = self._forward(layers, x[start:stop])
            deltas = self._backward(layers, fp, T[start:stop])
            for sl, shape, a, delta in zip(self.layer_slices, self.layer_shapes, fp.a, deltas,
                                           strict=True):
                # write δ ⊗ a straight into the output block (a view), no temporary
                block = out[start:stop, sl].reshape(stop - start, *shape)
                np.multiply(delta[:, :, None], a[:, None, :], out=block)
        return out

    def _kernel_spec(self) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        widths = np.asarray(self.widths, dtype=np.int64)
        offsets = np.asarray([0] + [sl.stop for sl in self.layer_slices], dtype=np.int64)
        return (widths, offsets, int(self.bias), self.activation_function.code,
                get_loss(self.loss_name).code)

    @finite_result
    def loss_and_gradient(self, w: FloatArray, x: FloatArray, y: Any, *,
                          chunk: int = 4096) -> tuple[float, FloatArray]:
        r"""L = E_p ℓ_p and ∇L = E_p g_p, accumulated per layer as Σ_p δ_{l,p} a_{l,p}ᵀ / N (GEMMs).

        Computed in float64, or in float32 when ``w`` is a float32 array (then x and the targets
        are rounded to float32, every array and matrix product is float32, and the gradient is
        float32; the pointwise activation and loss functions are evaluated in float64 and their
        results rounded to float32).  The loss is returned as a Python float.

        References
        ----------
        Spec part A, "Dense-layer structure".
        """
        if isinstance(w, np.ndarray) and w.dtype == np.float32:
            layers, x, T = self._check_data_float32(w, x, y)
        else:
            layers, x, T = self._check_data(w, x, y)
        chunk = check_positive_int(chunk, "chunk")
        N = x.shape[0]
        total = 0.0
        grad = np.zeros(self.num_params, dtype=x.dtype)
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            fp = self._forward(layers, x[start:stop])
            total += float(_values(self.loss_name, fp.logits, T[start:stop]).sum())
            deltas = self._backward(layers, fp, T[start:stop])
            for sl, a, delta in zip(self.layer_slices, fp.a, deltas, strict=True):
                grad[sl] += (delta.T @ a).reshape(-1)
        return total / N, grad / N

    @finite_result
    def gradient(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096) -> FloatArray:
        """∇L = E_p g_p, shape (D,)."""
        return self.loss_and_gradient(w, x, y, chunk=chunk)[1]

    # ------------------------------------------------------------------ second order
    def _r_op(self, layers: list[FloatArray], x: FloatArray, T: FloatArray,
              V: FloatArray, *, per_sample: bool) -> FloatArray:
        r"""Pearlmutter's R-operator for k directions at once: R{g} = h v.

        ``V`` is (k, D).  Returns (k, n, D) per-sample products h_p v (``per_sample``) or the
        sample sums Σ_p h_p v, shape (k, D).
        """
        act = self.activation_function
        weights = self._split(layers)
        L = len(layers)
        k = V.shape[0]
        n = x.shape[0]
        Vl = [V[:, sl].reshape(k, *shape) for sl, shape in zip(self.layer_slices,
                                                                self.layer_shapes, strict=True)]
        Vw = self._split(Vl)
        fp = self._forward(layers, x)
        deltas = self._backward(layers, fp, T)
        # forward R-pass: R{a_l} (None for the input), R{s_l}
        Ra: list[FloatArray | None] = [None] * L
        Rs: list[FloatArray] = [np.empty(0)] * L
        for l in range(L):
            Rs_l = np.einsum("pi,koi->kpo", fp.a[l], Vl[l], optimize=True)
            if Ra[l] is not None:
                Rs_l += Ra[l] @ layers[l].T
            Rs[l] = Rs_l
            if l < L - 1:
                Rh = act.derivative(fp.s[l]) * Rs_l
                Ra[l + 1] = (np.concatenate([Rh, np.zeros((k, n, 1))], axis=2)
                             if self.bias else Rh)
        # backward R-pass: R{δ_l}
        Gz = _hessians(self.loss_name, fp.logits, T)
        Rd = np.einsum("pab,kpb->kpa", Gz, Rs[-1], optimize=True)
        Rdeltas: list[FloatArray] = [np.empty(0)] * L
        Rdeltas[-1] = Rd
        for l in range(L - 2, -1, -1):
            back = deltas[l + 1] @ weights[l + 1]
            Rd = (act.second_derivative(fp.s[l]) * back * Rs[l]
                  + act.derivative(fp.s[l]) * (Rd @ weights[l + 1]
                                               + np.einsum("po,koi->kpi", deltas[l + 1],
                                                           Vw[l + 1], optimize=True)))
            Rdeltas[l] = Rd
        # R{g_l} = R{δ_l} a_lᵀ + δ_l R{a_l}ᵀ
        if per_sample:
            out = np.empty((k, n, self.num_params))
            for l, sl in enumerate(self.layer_slices):
                blk = Rdeltas[l][:, :, :, None] * fp.a[l][None, :, None, :]
                if Ra[l] is not None:
                    blk += deltas[l][None, :, :, None] * Ra[l][:, :, None, :]
                out[:, :, sl] = blk.reshape(k, n, -1)
            return out
        out = np.empty((k, self.num_params))
        for l, sl in enumerate(self.layer_slices):
            blk = np.einsum("kpo,pi->koi", Rdeltas[l], fp.a[l], optimize=True)
            if Ra[l] is not None:
                blk += np.einsum("po,kpi->koi", deltas[l], Ra[l], optimize=True)
            out[:, sl] = blk.reshape(k, -1)
        return out

    def _sample_chunk(self, chunk: int, k: int) -> int:
        width = sum(self.widths) + self.num_layers
        return max(1, min(chunk, _WORK_FLOATS // max(1, k * width)))

    @finite_result
    def hvp(self, w: FloatArray, x: FloatArray, y: Any, v: FloatArray, *,
            chunk: int = 4096) -> FloatArray:
        r"""Exact Hessian-vector product H v, H = ∇²L = E_p h_p.

        Computed by Pearlmutter's R-operator (forward-mode differentiation of the backward
        pass along v), chunked over samples; exact up to round-off, no finite differences.

        Parameters
        ----------
        w, v : (D,) arrays
        x : (N, d_0) array
        y : labels or targets
        chunk : int
            Samples per pass.

        References
        ----------
        B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
        """
        layers, x, T = self._check_data(w, x, y)
        v = self._check_w(v, "v")
        chunk = check_positive_int(chunk, "chunk")
        N = x.shape[0]
        step = self._sample_chunk(chunk, 1)
        out = np.zeros(self.num_params)
        for start in range(0, N, step):
            stop = min(start + step, N)
            out += self._r_op(layers, x[start:stop], T[start:stop], v[None, :],
                              per_sample=False)[0]
        return out / N

    def _check_max_dim(self, max_dim: int) -> None:
        max_dim = check_positive_int(max_dim, "max_dim")
        if self.num_params > max_dim:
            raise ValueError(
                f"the network has D = {self.num_params} parameters > max_dim = {max_dim}; a dense "
                "D×D Hessian is for small networks (raise max_dim, or use hvp / layer_factors)"
            )

    @finite_result
    def hessian(self, w: FloatArray, x: FloatArray, y: Any, *, max_dim: int = 5000,
                chunk: int = 4096) -> FloatArray:
        r"""Dense Hessian H = ∇²L = E_p h_p, shape (D, D), for small networks.

        Column blocks of H are exact R-operator products H e_j (see :meth:`hvp`); the result is
        symmetrised.

        Parameters
        ----------
        max_dim : int
            Refuse (``ValueError``) when D > max_dim.

        References
        ----------
        Pearlmutter, Neural Computation 6 (1994); spec part A (objects: H = E_p h_p).
        """
        layers, x, T = self._check_data(w, x, y)
        self._check_max_dim(max_dim)
        chunk = check_positive_int(chunk, "chunk")
        D, N = self.num_params, x.shape[0]
        check_allocation(2 * D * D * 8, f"hessian: H ({D}x{D})")
        H = np.zeros((D, D))
        k = max(1, min(D, 256))
        step = self._sample_chunk(chunk, k)
        for j0 in range(0, D, k):
            j1 = min(j0 + k, D)
            for start in range(0, N, step):
                stop = min(start + step, N)
                H[j0:j1] += self._r_op(layers, x[start:stop], T[start:stop], _unit_rows(j0, j1, D),
                                       per_sample=False)
        H /= N
        return 0.5 * (H + H.T)

    @finite_result
    def per_sample_hessians(self, w: FloatArray, x: FloatArray, y: Any, *,
                            max_dim: int = 5000, max_entries: int = 1 << 27,
                            chunk: int = 4096) -> FloatArray:
        r"""Dense per-sample Hessians h_p = ∇²ℓ_p, shape (N, D, D): a reference for small sizes.

        Each row block is an exact per-sample R-operator product h_p e_j; symmetrised.

        Parameters
        ----------
        max_dim : int
            Refuse when D > max_dim.
        max_entries : int
            Refuse when N·D² > max_entries (default 2²⁷ floats, 1 GiB).

        References
        ----------
        Pearlmutter, Neural Computation 6 (1994); spec part A (objects: h_p = ∇²ℓ_p).
        """
        layers, x, T = self._check_data(w, x, y)
        self._check_max_dim(max_dim)
        max_entries = check_positive_int(max_entries, "max_entries")
        chunk = check_positive_int(chunk, "chunk")
        D, N = self.num_params, x.shape[0]
        if N * D * D > max_entries:
            raise ValueError(
                f"N·D² = {N * D * D} exceeds max_entries = {max_entries}; use fewer samples, "
                "layer_factors, or raise max_entries"
            )
        check_allocation(2 * N * D * D * 8, f"per_sample_hessians: h ({N}x{D}x{D})")
        h = np.empty((N, D, D))
        k = max(1, min(D, 64))
        step = max(1, min(self._sample_chunk(chunk, k), _WORK_FLOATS // max(1, k * D)))
        for j0 in range(0, D, k):
            j1 = min(j0 + k, D)
            for start in range(0, N, step):
                stop = min(start + step, N)
                prod = self._r_op(layers, x[start:stop], T[start:stop], _unit_rows(j0, j1, D),
                                  per_sample=True)
                h[start:stop, j0:j1, :] = prod.transpose(1, 0, 2)
        return 0.5 * (h + h.transpose(0, 2, 1))

    # ------------------------------------------------------------------ matrix-free curvature
    def curvature_operators(self, w: FloatArray, x: FloatArray, y: Any,
                            layer: int | str | None = None, *, block: int = 64,
                            chunk: int | None = None, backend: str = "numpy",
                            max_bytes: int | None = None) -> CurvatureOperators:
        r"""H, M = E_p[h_p²], Σ₁ (and C) as matrix-free D×D linear operators.

        ``layer=None``: the **whole network** — every layer, weights and biases, with the
        cross-layer blocks; D = :attr:`num_params` in the flat parameter order of :meth:`unpack`.
        Products are exact for every activation and loss:

        * H V by Pearlmutter's R-operator, k directions at once as GEMMs over the samples;
        * M V = E_p[h_p (h_p V)]: the per-sample product h_p v has layer blocks
          r_{l,p} a_{l,p}ᵀ + δ_{l,p} ρ_{l,p}ᵀ (r = R{δ_l}, ρ = R{a_l}), so a second R-operator
          pass applies h_p to it at O(Σ_l d_l) extra cost per sample — about two H-products,
          residual terms of smooth activations included;
        * Σ₁ V = E_p[g_p g_pᵀ V] − ḡḡᵀV with g_pᵀv = Σ_l δ_{l,p}ᵀ V_l a_{l,p}.

        K = E_p[κ_max(p) h_p] is None for the whole network: the whole-network h_p is not the
        Gauss–Newton matrix J_pᵀΛ_pJ_p even for ReLU (z is multilinear in the weights of
        different layers), so κ_max(p) has no closed form in the K×K output space.

        ``layer=l`` (an int or ``"layer<l>"``): the layer's weights and bias alone (D =
        d_{l+1}(d_l + bias)), from its Kronecker factors through
        :func:`sgdnoise.theory.kronecker_layer_operators`, K included.  For piecewise-linear
        activations (relu, identity: φ″ = 0) the factors are low-rank, G_{l,p} = B_pᵀ Λ_p B_p
        with B_p = ∂z/∂s_l (K × d_{l+1}) and Λ_p = ∂²ℓ_p/∂z∂zᵀ, so no N·d_{l+1}² array is
        stored; smooth activations need the dense G (N, d_{l+1}, d_{l+1}).  The layer's H, Σ₁
        and C are the (l, l) blocks of the whole network's; its M = E_p[(h_p^{(l,l)})²] is not
        the (l, l) block of the whole network's M, which adds Σ_{m≠l} h_p^{(l,m)} h_p^{(m,l)}.

        Per-sample quantities (activations, δ_l, φ′, φ″ terms, Λ_p, B factors) are computed once
        per call and cached; their bytes are estimated first.

        Parameters
        ----------
        w : (D_net,) array
        x : (N, d_0) array
        y : labels or targets
        layer : None, int or str
            None for the whole network, else a layer index (negative from the end) or name.
        block : int
            Largest number of directions multiplied at once (bounds temporary memory).
        chunk : int, optional
            Largest number of samples per pass (default: as many as keep each temporary
            within 2²³ floats, at most 4096).
        backend : {"numpy", "cupy", "auto"}
            Array module of the products (cupy: the cached factors live on the GPU).
        max_bytes : int, optional
            Refuse (``ValueError``, with the estimate) when the cache and temporaries would
            exceed this many bytes; default 80 % of the available memory.

        Returns
        -------
        CurvatureOperators
            ``H``, ``M``, ``Sigma1`` (and ``C(B, replacement=…)``), ``K`` (None for the whole
            network), ``g_mean``, ``num_samples``.

        References
        ----------
        Pearlmutter, Neural Computation 6 (1994) (R-operator); Schraudolph, Neural Computation 14
        (2002) (curvature matrix-vector products); spec part A, "Dense-layer structure";
        Zhang, Yang & Tu, arXiv:2602.05600.
        """
        from sgdnoise.sim.models import _mlp_operators

        _, x, T = self._check_data(w, x, y)
        w = self._check_w(w)
        block = check_positive_int(block, "block")
        if chunk is not None:
            chunk = check_positive_int(chunk, "chunk")
        if layer is None:
            return _mlp_operators.network_operators(self, w, x, T, block=block, chunk=chunk,
                                                    backend=backend, max_bytes=max_bytes)
        index = self.layer_index(layer)
        return _mlp_operators.layer_operators(self, w, x, y, T, index, block=block, chunk=chunk,
                                              backend=backend, max_bytes=max_bytes)

    # ------------------------------------------------------------------ Kronecker factors
    def layer_factors(self, w: FloatArray, x: FloatArray, y: Any, layer: int | str, *,
                      chunk: int = 4096,
                      backend: str = "numpy") -> tuple[FloatArray, FloatArray, FloatArray]:
        r"""Exact per-sample Kronecker factors (G, a, δ) of one dense layer.

        For layer l with s_l = W̃_l a_l the per-sample gradient and diagonal Hessian block are

        .. math:: g_p^{(l)} = \delta_p \otimes a_p, \qquad h_p^{(l,l)} = G_p \otimes a_p a_p^\top,

        (row-major vec(W̃_l)), with G_p = ∂²ℓ_p/∂s_l∂s_lᵀ from the Hessian backpropagation

        .. math::
            G_{L-1} = \nabla_z^2 \ell, \quad
            G_l = D_l W_{l+1}^\top G_{l+1} W_{l+1} D_l
                  + \mathrm{diag}\bigl(\varphi''(s_l)\circ W_{l+1}^\top\delta_{l+1}\bigr),

        D_l = diag(φ′(s_l)), W_{l+1} without its bias column, δ_l = D_l W_{l+1}ᵀ δ_{l+1}.
        So ``sgdnoise.theory.kronecker_hessians(G, a)`` is the layer's diagonal block of every
        h_p, and ``kronecker_layer_moments(G, a, delta)`` gives that layer's H, M and Σ₁.

        Parameters
        ----------
        w : (D,) array
        x : (N, d_0) array
        y : labels or targets
        layer : int or str
            Layer index (negative counts from the end) or name ``"layer<l>"``.
        chunk : int
            Samples per pass (numpy backend).
        backend : {"numpy", "numba", "auto"}

        Returns
        -------
        G : (N, d_{l+1}, d_{l+1}) array
            Symmetric output-side factors.
        a : (N, d_l + bias) array
            Layer inputs, with the bias 1 appended when ``bias``.
        delta : (N, d_{l+1}) array
            ∂ℓ_p/∂s_l.

        Raises
        ------
        ValueError
            For invalid input, and (as a ``NonFiniteResultError``, also a
            ``FloatingPointError``) when finite ``w`` and ``x`` overflow the forward or the
            Hessian backward pass, so that a factor would be inf or NaN.

        References
        ----------
        Spec part A, "Dense-layer structure"; Botev, Ritter & Barber, ICML 2017 (Hessian
        backpropagation); Zhang, Yang & Tu, arXiv:2602.05600.
        """
        layers, x, T = self._check_data(w, x, y)
        index = self.layer_index(layer)
        chunk = check_positive_int(chunk, "chunk")
        backend = _resolve_backend(backend)
        N, out_dim = x.shape[0], self.widths[index + 1]
        check_allocation(
            (N * out_dim * out_dim + 3 * min(N, chunk) * out_dim * out_dim) * 8,
            f"layer_factors: G ({N}x{out_dim}x{out_dim}) of layer {index}",
            hint="for wide layers pass low-rank factors G_p = J_pᵀ Λ_p J_p "
                 "(sgdnoise.theory.LowRankFactors) to sgdnoise.theory.kronecker_layer_operators, "
                 "or use MLP.curvature_operators")
        # finite w and x can still overflow the forward or the Hessian backward pass (e.g. very
        # large weights): compute silently, then refuse any non-finite factor by name
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if backend == "numba":
                from sgdnoise.sim.models import _mlp_numba

                factors = _mlp_numba.layer_factors(self._kernel_spec(), self._check_w(w), x, T,
                                                   index)
            else:
                factors = self._layer_factors_numpy(layers, x, T, index, chunk)
        for value, what in zip(factors, ("G_p = ∂²ℓ_p/∂s∂sᵀ", "a_p (layer input)",
                                         "δ_p = ∂ℓ_p/∂s"), strict=True):
            check_finite_result(value, "w and x", f"the layer factor {what}")
        return factors

    def _layer_factors_numpy(self, layers: list[FloatArray], x: FloatArray, T: Any,
                             index: int, chunk: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The numpy path of :meth:`layer_factors` (validated input, no finiteness check)."""
        act = self.activation_function
        weights = self._split(layers)
        L = self.num_layers
        N = x.shape[0]
        out_dim = self.widths[index + 1]
        G_all = np.empty((N, out_dim, out_dim))
        a_all = np.empty((N, self.widths[index] + int(self.bias)))
        d_all = np.empty((N, out_dim))
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            fp = self._forward(layers, x[start:stop])
            deltas = self._backward(layers, fp, T[start:stop])
            G = _hessians(self.loss_name, fp.logits, T[start:stop])
            for l in range(L - 2, index - 1, -1):
                W = weights[l + 1]
                d1 = act.derivative(fp.s[l])
                G = W.T @ (G @ W)
                G *= d1[:, :, None] * d1[:, None, :]
                diag = np.arange(W.shape[1])
                G[:, diag, diag] += act.second_derivative(fp.s[l]) * (deltas[l + 1] @ W)
            G_all[start:stop] = 0.5 * (G + G.transpose(0, 2, 1))
            a_all[start:stop] = fp.a[index]
            d_all[start:stop] = deltas[index]
        return G_all, a_all, d_all

    def layer_hessian_diagonals(self, w: FloatArray, x: FloatArray, y: Any, *,
                                chunk: int = 4096) -> list[tuple[FloatArray, FloatArray,
                                                                 FloatArray]]:
        r"""(diag G, a, δ) of every layer from one forward/backward pass.

        Only the diagonals of the factors G_p of :meth:`layer_factors` are kept, which is all
        that parameter-basis diagonals need (``theory.kronecker_hessian_diagonal(diag_G, a)``,
        ``theory.kronecker_gradient_variance(delta, a)``).  For piecewise-linear activations
        (φ″ = 0: relu, identity) and a loss whose logit Hessian has a square root — cross-entropy
        (diag q − qqᵀ = RᵀR with R = diag √q − √q qᵀ) and MSE (R = I) — the recursion runs on
        square-root factors,

        .. math:: R_{L-1} = R, \qquad R_l = (R_{l+1} W_{l+1}) \circ \varphi'(s_l), \qquad
                  \operatorname{diag} G_l = \textstyle\sum_c (R_l)_{c\cdot}^2 ,

        one GEMM per layer and chunk (K × d rows instead of d × d per sample).  Other
        combinations run the full recursion of :meth:`layer_factors` and keep the diagonals.

        Parameters
        ----------
        w : (D,) array
        x : (N, d_0) array
        y : labels or targets
        chunk : int
            Samples per pass.

        Returns
        -------
        list of (diag_G, a, delta), one per layer
            ``diag_G`` (N, d_{l+1}), ``a`` (N, d_l + bias), ``delta`` (N, d_{l+1}).

        References
        ----------
        Spec part A, "Dense-layer structure"; Dangel, Kunstner & Hennig, ICLR 2020 (BackPACK's
        symmetric factorisation of the Hessian backpropagation).
        """
        layers, x, T = self._check_data(w, x, y)
        chunk = check_positive_int(chunk, "chunk")
        act = self.activation_function
        weights = self._split(layers)
        L = self.num_layers
        N = x.shape[0]
        sqrt_path = self.activation in ("relu", "identity") and self.loss_name in (
            "cross_entropy", "mse")
        out = [(np.empty((N, self.widths[l + 1])), np.empty((N, self.widths[l] + int(self.bias))),
                np.empty((N, self.widths[l + 1]))) for l in range(L)]
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            fp = self._forward(layers, x[start:stop])
            deltas = self._backward(layers, fp, T[start:stop])
            n = stop - start
            if sqrt_path:
                K = self.widths[-1]
                if self.loss_name == "cross_entropy":
                    q = fp.logits - fp.logits.max(axis=1, keepdims=True)
                    np.exp(q, out=q)
                    q /= q.sum(axis=1, keepdims=True)
                    sq = np.sqrt(q)
                    R = -sq[:, :, None] * q[:, None, :]
                    R[:, np.arange(K), np.arange(K)] += sq
                else:
                    R = np.broadcast_to(np.eye(K), (n, K, K)).copy()
                factor = R
            else:
                G = _hessians(self.loss_name, fp.logits, T[start:stop])
            for l in range(L - 1, -1, -1):
                if l < L - 1:
                    W = weights[l + 1]
                    d1 = act.derivative(fp.s[l])
                    if sqrt_path:
                        factor = (factor.reshape(-1, W.shape[0]) @ W).reshape(n, -1, W.shape[1])
                        factor *= d1[:, None, :]
                    else:
                        G = W.T @ (G @ W)
                        G *= d1[:, :, None] * d1[:, None, :]
                        diag = np.arange(W.shape[1])
                        G[:, diag, diag] += act.second_derivative(fp.s[l]) * (deltas[l + 1] @ W)
                g_diag, a_out, d_out = out[l]
                if sqrt_path:
                    g_diag[start:stop] = np.einsum("pcj,pcj->pj", factor, factor)
                else:
                    g_diag[start:stop] = np.diagonal(G, axis1=1, axis2=2)
                a_out[start:stop] = fp.a[l]
                d_out[start:stop] = deltas[l]
        return out


__all__ = ["MLP", "ForwardPass"]
