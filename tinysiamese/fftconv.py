"""Convolution through the Fourier domain: the same valid, stride-1 cross-correlation as
``ops.conv2d_*``, with fewer multiplications for big kernels on many channels.

im2col (``ops.conv2d_forward``) is the readable reference and the exercises' path; this
module is the fast path (``layers.Conv2D`` picks it by size, see ``use_fft``). Both
take the array module ``xp`` (NumPy or CuPy) and keep the input's float dtype (float32 ->
complex64, float64 -> complex128), so float64 gradient checks run here too.

The math. A valid cross-correlation y[ho, wo] = sum_{i,j} w[i, j] x[ho + i, wo + j] equals
the *circular* cross-correlation of x with w zero-padded to a G1 x G2 grid, as long as no
index wraps: for ho <= Hi - K and i <= K - 1, ho + i <= Hi - 1 < G1. So the input's own
size is grid enough (``fft_grid``); the outputs past (Ho, Wo) would hold wrapped-around
sums and are never computed. The correlation theorem turns the circular correlation into
a pointwise product of spectra,
    Y^(u, v) = conj(W^(u, v)) X^(u, v),
and the sum over input channels becomes, at each frequency, one matrix product:
    Y^[f, n] = sum_c conj(W^[f, c]) X^[c, n]       (Q, F, C) @ (Q, C, N) -> (Q, F, N)
with Q = G1 * (G2 // 2 + 1) frequencies (the real DFT keeps half of the last axis: the
signals are real, so the other half is the complex conjugate).

The transforms. ``xp.fft.rfft2`` pays a fixed cost per 2-D transform that, on grids of
10 to 50 pixels and thousands of transforms, costs more than the products above. So the
DFTs are written as matrix products instead (``dft_matrices``): along the rows, then down
the columns, which skips the zero padding and the cut outputs for free. On the CPU they run
a cache-sized slab of signals at a time, both products and the reordering between them
while the slab is in the cache, a share of the slabs on each thread; on a GPU the whole
batch is one slab. ``xp.fft.rfft2`` and ``irfft2`` are their reference in the tests.

Cost, per image: the transforms of C inputs and F outputs and C*F*Q complex multiply-adds,
against C*F*K*K*Ho*Wo real ones for im2col: the Fourier path wins when K*K is large beside
the ~4x of a complex product, and the channels many enough to pay for the transforms.
"""
from __future__ import annotations

import math

from .threads import SERIAL, piece_count

FFT_CHUNK_BYTES = 256 * 2**20  # a chunk's spectra: big products, bounded memory
SLAB_BYTES = 2**19  # a slab of one transform's spectra stays in a core's cache (L2)
FFT_COST = 1.5  # measured, see use_fft


def fft_grid(Hi: int, Wi: int) -> tuple[int, int]:
    """The (G1, G2) grid of the circular correlation: the input itself, the smallest on
    which no index of a valid output wraps (the DFT by matrices has no favourite sizes)."""
    return Hi, Wi


def dft_madds(N: int, C: int, F: int, K: int, Hi: int, Wi: int) -> int:
    """Multiply-adds of the DFTs of one forward + backward, in real GEMM terms: x and dx
    (N C of Hi x Wi), y and dy (N F of Ho x Wo), W and dW (F C of K x K), each a product
    along the rows (real: 2 h w G2r) and one down the columns (complex: 4 G1 h G2r)."""
    G1, G2 = fft_grid(Hi, Wi)
    G2r = G2 // 2 + 1
    both = lambda h, w: 2 * (2 * h * w * G2r + 4 * G1 * h * G2r)  # noqa: E731 (there, back)
    return N * C * both(Hi, Wi) + N * F * both(Hi - K + 1, Wi - K + 1) + F * C * both(K, K)


def use_fft(N: int, C: int, F: int, K: int, Hi: int, Wi: int) -> bool:
    """Whether ``method="auto"`` takes the Fourier path: x (N, C, Hi, Wi), W (F, C, K, K).

    A count of the multiply-adds of forward + backward on each path:
      im2col:  3 N C F K² Ho Wo        three real GEMMs (y, dW, dx)
      Fourier: 3 N C F Q · 4           three complex products, Q = Hi (Wi // 2 + 1)
             + the DFTs by matrices    of x, W, y, dy, dx and dW (``dft_madds``)
    and the Fourier path when FFT_COST times its count is the smaller. FFT_COST = 1.5,
    what a Fourier multiply-add costs in GEMM ones (small complex products, transposes),
    was fitted to ``scripts/conv_crossover.py`` (docs/benchmarks.md, "The crossover"): it
    picks the faster path for seven of the eight convs of small and koch (conv1, with one
    input channel, stays on im2col). Small's conv4 on 4 x 4 maps stays on im2col too,
    though the Fourier path has become 13% faster there (2.3 against 2.7 ms): its count
    ties with the tiny preset's conv3, and the tiny preset's convs must stay on im2col at
    any N, which tests/test_golden.py needs (it pins tiny runs bit for bit).
    """
    Ho, Wo = Hi - K + 1, Wi - K + 1
    direct = 3 * N * C * F * K * K * Ho * Wo
    Q = Hi * (Wi // 2 + 1)
    spectral = 12 * N * C * F * Q + dft_madds(N, C, F, K, Hi, Wi)
    return FFT_COST * spectral < direct


def dft_matrices(xp, G1: int, G2: int, h: int, w: int, dtype, conj: bool = False,
                 memo: dict | None = None):
    """The real DFT on a G1 x G2 grid of an h x w signal, and its inverse cut to h x w, as
    matrices, so that every transform is a matrix product (BLAS, all cores, any backend).

    Returns (Ew, Eh, Dh, Dw), with G2r = G2 // 2 + 1 and t = 2 pi:
      Ew (w, 2 G2r) real:   columns 2v, 2v+1 = cos, -sin (t n v / G2): x @ Ew is the
                            rfft along a row, its (re, im) pairs side by side (complex view)
      Eh (G1, h) complex:   e^(-i t u m / G1): the DFT down the columns
      Dh (h, G1) complex:   e^(+i t u m / G1) / G1: the inverse down the columns, cut to h
      Dw (2 G2r, w) real:   rows 2v, 2v+1 = c_v cos, -c_v sin (t v n / G2), c_v = 2 / G2
                            (1 / G2 for v = 0 and the Nyquist bin): Re sum over the whole
                            spectrum from its stored half, the inverse rfft cut to w.
    Zero padding is free: the rows and columns of the padding are simply left out.
    conj=True: every exponent's sign flipped (+sin for -sin, e^(+i..) for e^(-i..)), which
    conjugates both transforms at no cost: for a real signal the DFT with the matrices
    conjugated is the conjugate of its DFT, and the inverse with them, the signal of the
    conjugated spectrum (see ``_spectrum`` and ``_signal``).
    memo: a dict that keeps the matrices once made: a layer (``layers.Conv2D``) hands its
    own, since it transforms the same sizes at every step (~0.1 ms a set to make).
    """
    key = (G1, G2, h, w, xp.dtype(dtype).str, conj)
    if memo is not None and key in memo:
        return memo[key]
    real = xp.dtype(dtype).type
    cplx = xp.result_type(real, xp.complex64)
    G2r = G2 // 2 + 1
    v = xp.arange(G2r, dtype=xp.float64)
    n = xp.arange(w, dtype=xp.float64)
    sign = 1.0 if conj else -1.0  # the sign of the forward transform's exponent
    angle = 2 * math.pi * n[:, None] * v[None, :] / G2  # (w, G2r)
    Ew = xp.stack([xp.cos(angle), sign * xp.sin(angle)], axis=-1).reshape(w, 2 * G2r)
    c = xp.full(G2r, 2.0 / G2)
    c[0] = 1.0 / G2
    if G2 % 2 == 0:
        c[-1] = 1.0 / G2  # the Nyquist bin stands for itself alone
    Dw = xp.stack([c[:, None] * xp.cos(angle.T), sign * c[:, None] * xp.sin(angle.T)], axis=1)
    u = xp.arange(G1, dtype=xp.float64)
    m = xp.arange(h, dtype=xp.float64)
    Eh = xp.exp(sign * 2j * math.pi * u[:, None] * m[None, :] / G1)  # (G1, h)
    Dh = xp.exp(-sign * 2j * math.pi * m[:, None] * u[None, :] / G1) / G1  # (h, G1)
    matrices = (Ew.astype(real), Eh.astype(cplx), Dh.astype(cplx),
                Dw.reshape(2 * G2r, w).astype(real))
    if memo is not None:
        memo[key] = matrices
    return matrices


def _slab_rows(xp, R: int, row_bytes: int, at_least: int = 1) -> int:
    """How many of a transform's R signals one slab takes: on the CPU, as many as keep the
    slab's spectra (``row_bytes`` each) in a core's cache, in near-equal slabs, as many for
    each of ``at_least`` threads (``Workers.pieces``); all R on a GPU, which wants few, big
    kernels."""
    if xp.__name__ != "numpy":
        return R
    return -(-R // piece_count(R, SLAB_BYTES // row_bytes, at_least))


def _spectrum(xp, a, grid, conj=False, workers=SERIAL, memo=None):
    """a: (A, B, h, w) real -> (Q, A, B) complex, the rfft2 of each (h, w) zero-padded to
    the grid, with the Q = G1 * (G2 // 2 + 1) frequencies first (u-major, as rfft2 lays
    them out), so that each frequency's (A, B) matrix is contiguous for the batched
    product. Two matrix products: along the rows (real), then down the columns (complex),
    a slab of the A * B signals at a time: the slab's row spectra are reordered for the
    second product while they are still in the cache, and that product writes straight
    into its columns of the result, so no spectrum-sized array is made but the result.
    The slabs are independent: the threads may take a share each (``Workers.share``).
    conj=True: the conjugate spectrum instead, for free (``dft_matrices``, with ``memo``).
    """
    A, B, h, w = a.shape
    G1, G2 = grid
    G2r = G2 // 2 + 1
    Ew, Eh, _, _ = dft_matrices(xp, G1, G2, h, w, a.dtype, conj, memo)
    R = A * B
    signals = a.reshape(R, h * w)
    out = xp.empty((G1, G2r, R), dtype=Eh.dtype)
    by_v = out.transpose(1, 0, 2)  # (G2r, G1, R): a view, the column products' output
    step = _slab_rows(xp, R, h * G2r * Eh.itemsize, workers.pieces)

    def slabs(first, stop, matmul):
        for r in range(first * step, min(stop * step, R), step):
            e = min(r + step, R)
            rows = matmul(xp, signals[r:e].reshape((e - r) * h, w), Ew)  # along the rows
            rows = rows.view(Eh.dtype).reshape(e - r, h, G2r)  # (re, im) pairs: complex
            cols = xp.ascontiguousarray(rows.transpose(2, 1, 0))  # (G2r, h, e - r)
            matmul(xp, Eh, cols, out=by_v[:, :, r:e])  # (G1, h) @ each (h, e - r)

    workers.share(slabs, -(-R // step))
    return out.reshape(G1 * G2r, A, B)


def _signal(xp, spec, grid, h, w, dtype, out=None, conj=False, workers=SERIAL, memo=None):
    """spec: (Q, A, B) complex -> (A, B, h, w) real, contiguous: the irfft2 on the grid,
    cut to its first h x w values (only those rows and columns are computed). As
    ``_spectrum`` backwards, a slab of the A * B signals at a time: down the columns,
    reordered in the cache, then along the rows straight into the output. ``out``, a
    C-contiguous (A, B, h, w) array, receives the result instead of a new one. conj=True:
    the signal of conj(spec), with no conjugated copy made (``dft_matrices``)."""
    Q, A, B = spec.shape
    G1, G2 = grid
    G2r = G2 // 2 + 1
    _, _, Dh, Dw = dft_matrices(xp, G1, G2, h, w, dtype, conj, memo)
    R = A * B
    by_v = spec.reshape(G1, G2r, R).transpose(1, 0, 2)  # (G2r, G1, R): each v's columns
    if out is None:
        out = xp.empty((A, B, h, w), dtype=Dw.dtype)
    rows_out = out.reshape(R * h, w)
    step = _slab_rows(xp, R, h * G2r * spec.itemsize, workers.pieces)

    def slabs(first, stop, matmul):
        for r in range(first * step, min(stop * step, R), step):
            e = min(r + step, R)
            cols = matmul(xp, Dh, by_v[:, :, r:e])  # (G2r, h, e - r): down the columns
            rows = xp.ascontiguousarray(cols.transpose(2, 1, 0))  # (e - r, h, G2r)
            real = rows.view(Dw.dtype).reshape((e - r) * h, 2 * G2r)  # (re, im) side by side
            matmul(xp, real, Dw, out=rows_out[r * h : e * h])  # along the rows, real

    workers.share(slabs, -(-R // step))
    return out


def _signal_into(xp, spec, grid, target, conj=False, workers=SERIAL, memo=None):
    """target[...] = the signal of spec, for target (A, B, h, w): written in place when
    target is contiguous (the batch in one chunk), which saves a copy of the output."""
    h, w = target.shape[2:]
    out = target if target.flags.c_contiguous else None
    signal = _signal(xp, spec, grid, h, w, target.dtype, out, conj, workers, memo)
    if out is None:
        target[...] = signal


def fft_chunks(x_shape, F: int, max_bytes: int, itemsize: int):
    """Split the batch so that one chunk's spectra stay under ``max_bytes``: a list of
    (start, stop) sample ranges. A sample's spectra in flight are its input's (C channels,
    kept for backward) and its output's (F), at most 2 max(C, F) Hi (Wi // 2 + 1) complex
    values, so a batch of any size (an evaluation's thousands of images) needs bounded
    memory."""
    N, C, Hi, Wi = x_shape
    per_sample = 2 * max(C, F) * Hi * (Wi // 2 + 1) * 2 * itemsize
    step = max(1, min(N, int(max_bytes // per_sample)))
    return [(s, min(s + step, N)) for s in range(0, N, step)]


def conv2d_fft_forward(xp, x, W, b, max_bytes=FFT_CHUNK_BYTES, workers=SERIAL, memo=None):
    """Valid, stride-1 cross-correlation in the Fourier domain, as ``ops.conv2d_forward``.

    x: (N, C, Hi, Wi), W: (F, C, K, K), b: (F,) -> y: (N, F, Ho, Wo),
    y[n, f] = sum_{c,i,j} W[f, c, i, j] x[n, c, ho + i, wo + j] + b[f].
    Like the im2col path, y is an (N, F, Ho, Wo) view of channel-major (F, N, Ho, Wo)
    memory, and the batch is done in chunks (``fft_chunks``, under ``max_bytes``).
    cache: (chunks, Ws, x.shape, grid, workers, memo): each chunk's (start, stop, Xs) with
    its input spectrum Xs = rfft2(x[start:stop]): (Q, C, n), and Ws = conj(rfft2(W)):
    (Q, F, C), which backward reuses instead of transforming again. ``workers``: threads
    that share the transforms' slabs and the products (``threads.Workers``); ``memo``: the
    layer's dict of DFT matrices (``dft_matrices``), or None to make them afresh.
    """
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    grid = fft_grid(Hi, Wi)
    # (Q, F, C), conjugated, since this is a correlation
    Ws = _spectrum(xp, W, grid, conj=True, workers=workers, memo=memo)
    yt = xp.empty((F, N, Ho, Wo), dtype=x.dtype)  # channel-major
    chunks = []
    for s, e in fft_chunks(x.shape, F, max_bytes, x.dtype.itemsize):
        Xs = _spectrum(xp, x[s:e].transpose(1, 0, 2, 3), grid, workers=workers, memo=memo)
        Ys = workers.matmul(xp, Ws, Xs)  # (Q, F, n): per frequency, the channel-mixing product
        # + b: a constant added to every pixel is the frequency (0, 0) alone, times the
        # grid's size (the inverse divides by it), so no pass over y is needed for it
        Ys[0] += (b * (grid[0] * grid[1]))[:, None]
        _signal_into(xp, Ys, grid, yt[:, s:e], workers=workers, memo=memo)  # (F, n, Ho, Wo)
        chunks.append((s, e, Xs))
    return yt.transpose(1, 0, 2, 3), (chunks, Ws, x.shape, grid, workers, memo)


def conv2d_fft_backward(xp, dy, cache, W, need_dx=True):
    """dy: (N, F, Ho, Wo) -> dx: (N, C, Hi, Wi), dW: (F, C, K, K), db: (F,).

    dy is zero-padded onto the same grid (``_spectrum`` pads), so its spectrum dYs is that
    of a circular correlation's output whose wrapped-around entries got no gradient.
    The adjoint of y = corr(x, w) is a circular *convolution*, and the spectra give
      dx = conv(dy, w):  dXs[c, n] = sum_f W^[f, c] dYs[f, n] = conj(Wsᵀ Ds)[c, n]
      dw = corr(x, dy):  dWs[f, c] = sum_n conj(dYs[f, n]) X^[c, n] = (Ds Xsᵀ)[f, c]
    with Ws = conj(W^) from forward and Ds = conj(dYs), both made conjugate by the DFT
    matrices (``dft_matrices``), so no spectrum is ever conjugated by a copy; the dx
    product is (Q, C, F) @ (Q, F, n) on a transposed view of Ws, the dW one (Q, F, n) @
    (Q, n, C). Then irfft2 and the cut: dx to (Hi, Wi) (no index wraps, the pad of w is
    zero there) and dW to (K, K). db[f] = sum of dy[:, f] over (N, Ho, Wo), which is the
    frequency (0, 0) of dy's spectrum summed over the batch: read there, with no pass over
    dy. need_dx=False: dx = None, as in ``ops.conv2d_backward``.
    """
    chunks, Ws, (N, C, Hi, Wi), grid, workers, memo = cache
    F, _, K, _ = W.shape
    dyt = dy.transpose(1, 0, 2, 3)  # (F, N, Ho, Wo); free when dy is channel-major already
    db = xp.zeros(F, dtype=dy.dtype)
    dxt = xp.empty((C, N, Hi, Wi), dtype=dy.dtype) if need_dx else None  # channel-major
    dWs = None  # sum over the chunks of Ds @ Xsᵀ: (Q, F, C)
    for s, e, Xs in chunks:
        Ds = _spectrum(xp, dyt[:, s:e], grid, True, workers, memo)  # (Q, F, n): conj(dYs)
        db += Ds[0].real.sum(axis=1)  # the sums of dy, real at frequency (0, 0)
        if need_dx:  # the signal of conj(Wsᵀ Ds) = dXs, read through conjugated matrices
            dXs_conj = workers.matmul(xp, Ws.transpose(0, 2, 1), Ds)  # (Q, C, n)
            _signal_into(xp, dXs_conj, grid, dxt[:, s:e], True, workers, memo)
        part = workers.matmul(xp, Ds, Xs.transpose(0, 2, 1))  # per frequency (F, n) @ (n, C)
        dWs = part if dWs is None else dWs + part
    dW = _signal(xp, dWs, grid, K, K, W.dtype, workers=workers, memo=memo)  # (F, C, K, K)
    dx = dxt.transpose(1, 0, 2, 3) if need_dx else None  # channel-major, like im2col's
    return dx, dW, db
