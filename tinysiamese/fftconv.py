"""Convolution by the FFT: the same valid, stride-1 cross-correlation as ``ops.conv2d_*``,
with fewer multiplications for large kernels.

im2col (``ops.conv2d_forward``) is the readable reference and the exercises' path; this
module is the fast path for big kernels on big maps (``layers.Conv2D`` picks it by size,
see ``use_fft``). Both take the array module ``xp`` (NumPy or CuPy: ``xp.fft.rfft2``,
``irfft2`` and a batched complex ``matmul``) and keep the input's float dtype (float32 ->
complex64, float64 -> complex128), so float64 gradient checks run here too.

The math. A valid cross-correlation y[ho, wo] = sum_{i,j} w[i, j] x[ho + i, wo + j] equals
the *circular* cross-correlation of x with w zero-padded to a G1 x G2 grid, as long as no
index wraps: for ho <= Hi - K and i <= K - 1, ho + i <= Hi - 1 < G1. So any grid at least as
big as the input will do (``fft_grid`` rounds it up to a size with factors 2, 3 and 5 only,
where the FFT is fastest); the outputs past (Ho, Wo) hold wrapped-around sums and are cut.
The correlation theorem turns the circular correlation into a pointwise product of spectra,
    Y^(u, v) = conj(W^(u, v)) X^(u, v),
and the sum over input channels becomes, at each frequency, one matrix product:
    Y^[f, n] = sum_c conj(W^[f, c]) X^[c, n]       (Q, F, C) @ (Q, C, N) -> (Q, F, N)
with Q = G1 * (G2 // 2 + 1) frequencies (``rfft2`` keeps half of the last axis: the inputs
are real, so the other half is the complex conjugate).

Cost, per image: C forward FFTs, F inverse FFTs and C*F*Q complex multiply-adds, against
C*F*K*K*Ho*Wo real ones for im2col: the FFT wins when K*K is large beside the ~4x of a
complex product and the FFTs' log factor.
"""
from __future__ import annotations


def fast_size(n: int) -> int:
    """The smallest m >= n whose only prime factors are 2, 3 and 5 (the FFT's fast sizes)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fft_grid(Hi: int, Wi: int) -> tuple[int, int]:
    """The (G1, G2) grid of the circular correlation: at least the input, FFT-friendly."""
    return fast_size(Hi), fast_size(Wi)


def _spectrum(xp, a, grid):
    """a: (A, B, h, w) real -> (Q, A, B) complex: rfft2 on the zero-padded grid, with the
    Q = G1 * (G2 // 2 + 1) frequencies first, so that each frequency's (A, B) matrix is
    contiguous for the batched product."""
    s = xp.fft.rfft2(a, s=grid)  # (A, B, G1, G2 // 2 + 1), zero-padded at the high ends
    A, B = s.shape[:2]
    return xp.ascontiguousarray(s.reshape(A, B, -1).transpose(2, 0, 1))  # (Q, A, B)


def _signal(xp, spec, grid, h, w):
    """spec: (Q, A, B) complex -> (A, B, h, w) real: irfft2 on the grid, cut to h x w."""
    Q, A, B = spec.shape
    s = spec.transpose(1, 2, 0).reshape(A, B, grid[0], grid[1] // 2 + 1)  # (A, B, G1, G2r)
    return xp.fft.irfft2(s, s=grid)[:, :, :h, :w]


def conv2d_fft_forward(xp, x, W, b):
    """Valid, stride-1 cross-correlation through the FFT, as ``ops.conv2d_forward``.

    x: (N, C, Hi, Wi), W: (F, C, K, K), b: (F,) -> y: (N, F, Ho, Wo),
    y[n, f] = sum_{c,i,j} W[f, c, i, j] x[n, c, ho + i, wo + j] + b[f].
    Like the im2col path, y is an (N, F, Ho, Wo) view of channel-major (F, N, Ho, Wo)
    memory. cache: (Xs, Ws, x.shape, grid) with the spectra Xs = rfft2(x): (Q, C, N) and
    Ws = conj(rfft2(W)): (Q, F, C), which backward reuses instead of transforming again.
    """
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    grid = fft_grid(Hi, Wi)
    Xs = _spectrum(xp, x.transpose(1, 0, 2, 3), grid)  # (Q, C, N): channels as rows
    Ws = xp.conj(_spectrum(xp, W, grid))  # (Q, F, C): conj, since this is a correlation
    Ys = xp.matmul(Ws, Xs)  # (Q, F, N): per frequency, the channel-mixing product
    y = _signal(xp, Ys, grid, Ho, Wo)  # (F, N, Ho, Wo) view of the grid
    yt = xp.empty((F, N, Ho, Wo), dtype=x.dtype)
    xp.add(y, b[:, None, None, None], out=yt)  # the cut and the bias in one pass
    return yt.transpose(1, 0, 2, 3), (Xs, Ws, x.shape, grid)


def conv2d_fft_backward(xp, dy, cache, W):
    """dy: (N, F, Ho, Wo) -> dx: (N, C, Hi, Wi), dW: (F, C, K, K), db: (F,).

    dy is zero-padded onto the same grid (``rfft2(s=grid)`` pads), so its spectrum dYs is
    that of a circular correlation's output whose wrapped-around entries got no gradient.
    The adjoint of y = corr(x, w) is a circular *convolution*, and the spectra give
      dx = conv(dy, w):  dXs[c, n] = sum_f W^[c, f]ᵀ dYs[f, n]   (Q, C, F) @ (Q, F, N)
      dw = corr(dy, x):  dWs[f, c] = sum_n conj(dYs[f, n]) X^[c, n] = conj(dYs @ conj(Xs)ᵀ)
    then irfft2 and the cut: dx to (Hi, Wi) (no index wraps, the pad of w is zero there)
    and dW to (K, K). db[f] = sum of dy[:, f] over (N, Ho, Wo).
    """
    Xs, Ws, (N, C, Hi, Wi), grid = cache
    F, _, K, _ = W.shape
    dyt = dy.transpose(1, 0, 2, 3)  # (F, N, Ho, Wo); free when dy is channel-major already
    db = dyt.sum(axis=(1, 2, 3))
    dYs = _spectrum(xp, dyt, grid)  # (Q, F, N)
    Wt = xp.conj(Ws).transpose(0, 2, 1)  # (Q, C, F): W^ itself, transposed
    dx = _signal(xp, xp.matmul(Wt, dYs), grid, Hi, Wi)  # (C, N, Hi, Wi)
    # conj(dYs) @ Xsᵀ, per frequency (F, N) @ (N, C), written as one conj of a product
    dWs = xp.conj(xp.matmul(dYs, xp.conj(Xs).transpose(0, 2, 1)))  # (Q, F, C)
    dW = _signal(xp, dWs, grid, K, K)  # (F, C, K, K)
    dxt = xp.ascontiguousarray(dx)  # channel-major (C, N, Hi, Wi), like the im2col path
    return (dxt.transpose(1, 0, 2, 3), xp.ascontiguousarray(dW).astype(W.dtype, copy=False),
            db)
