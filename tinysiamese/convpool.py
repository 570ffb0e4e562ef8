"""A convolution and the max-pool after it as one matrix product: the first block's path.

``ops.conv2d_forward`` then ``ops.maxpool_forward`` write the conv's whole output, read it
back to pool it, and in backward write a gradient of that size again, three quarters of it
zeros. For the first block (one input channel: the images) that output is the biggest
array of the net (small's conv1: 64 x 32 x 48 x 48 floats, 19 MB; koch's: 604 MB at 128
pairs), and its product the thinnest (K*K = 25 rows), so those passes over memory cost
more than the product. Here the pool's window offsets come first instead.

The math. With a P x P pool, the output at window offset (a, b) of pooled pixel (hp, wp) is
    y[f, P hp + a, P wp + b] = sum_{c,i,j} W[f, c, i, j] x[c, P hp + a + i, P wp + b + j]
                             = sum_{c,s,t} W_ab[f, c, s, t] x[c, P hp + s, P wp + t]
with W_ab the kernel shifted by (a, b) into an S x S grid of zeros, S = K + P - 1. So all
P*P offsets are stride-P convolutions with S x S kernels that share one unfolding: the
S x S patches at stride P (``pool_patches``), and one product with the P*P shifted kernels
stacked (``shifted_kernels``),
    Y = W_stack @ patches      (F P P, C S S) @ (C S S, N Hp Wp) -> (F, P P, N Hp Wp)
gives each offset's outputs as one contiguous plane. The pool is then an elementwise max
over P*P planes (``pool_planes``), while a chunk of the batch is still in the cache, and
the full-size output never exists. The bias goes on after the max: max_k(Y_k + b) =
max_k(Y_k) + b, on 1 / P^2 of the values (rounding is monotone, so the max has the same
bits; only a tie that the rounding of Y_k + b would make can pick another offset).
The cost: (S / K)^2 more multiply-adds (1.44x for 5 x 5 kernels, 1.21x for 10 x 10), which
a thin, memory-bound product pays easily: forward + backward of small's conv1 and pool1,
13.6 -> 8.8 ms on 2 threads, koch's 197 -> 110 ms (``scripts/experiments/convpool_gain.py``).
With more input channels the gain shrinks (small's conv3 on im2col: 1.0-1.1x), and the
presets' other pooled blocks take the Fourier path, faster than either; so ``SiameseNet``
fuses the images' block only, the one block that never takes it (``fftconv.use_fft``).

Backward, with dY the pooled gradient routed to each window's arg-max plane (zero in the
other planes) and ``fold`` the sum of the shifted kernels' gradients back onto W:
    dW = fold(dY @ patchesᵀ),  db = sum of the pooled dy,
    dx = the patches' fold of W_stackᵀ @ dY (patches overlap, so their gradients add).
Both backends run it (NumPy and CuPy); the threads take whole chunks of the batch each.
"""
from __future__ import annotations

from .ops import conv_chunks
from .threads import SERIAL


def pool_patches(xp, x, K: int, size: int = 2, workers=SERIAL):
    """x: (N, C, Hi, Wi) -> patches: (C*S*S, N*Hp*Wp), S = K + size - 1,
    Hp = (Hi - K + 1) // size (the pool drops an odd edge), and likewise Wp.

    Row (c, s, t) holds x[n, c, size*hp + s, size*wp + t] for every pooled pixel
    (n, hp, wp): the S x S patches at stride ``size``, one strided slice copy per (s, t).
    The threads take a share of the images each.
    """
    N, C, Hi, Wi = x.shape
    S, Hp, Wp = K + size - 1, (Hi - K + 1) // size, (Wi - K + 1) // size
    xt = x.transpose(1, 0, 2, 3)  # (C, N, Hi, Wi): channels lead the rows
    patches = xp.empty((C, S, S, N, Hp, Wp), dtype=x.dtype)

    def part(a, b):
        for s in range(S):
            for t in range(S):
                patches[:, s, t, a:b] = xt[:, a:b, s : s + size * Hp : size,
                                           t : t + size * Wp : size]

    workers.split(part, N, elements=patches.size)
    return patches.reshape(C * S * S, N * Hp * Wp)


def shifted_kernels(xp, W, size: int = 2):
    """W: (F, C, K, K) -> (F*size*size, C*S*S): row (f, a, b) is W[f] placed at offset
    (a, b) of an S x S grid of zeros, so that its product with ``pool_patches`` gives the
    conv's outputs at window offset (a, b)."""
    F, C, K, _ = W.shape
    S = K + size - 1
    stack = xp.zeros((F, size, size, C, S, S), dtype=W.dtype)
    for a in range(size):
        for b in range(size):
            stack[:, a, b, :, a : a + K, b : b + K] = W
    return stack.reshape(F * size * size, C * S * S)


def fold_shifted(xp, G, W_shape, size: int = 2):
    """The adjoint of ``shifted_kernels``: G (F*size*size, C*S*S), a gradient with respect
    to the stacked kernels -> dW (F, C, K, K), each offset's window of it added up."""
    F, C, K, _ = W_shape
    S = K + size - 1
    G = G.reshape(F, size, size, C, S, S)
    dW = xp.zeros(W_shape, dtype=G.dtype)
    for a in range(size):
        for b in range(size):
            dW += G[:, a, b, :, a : a + K, b : b + K]
    return dW


def pool_planes(xp, planes, y, arg):
    """planes: (F, k, m), the conv's outputs at each of k window offsets -> fills y (F, m)
    with their max and arg (F, m) uint8 with the offset holding it, the first on ties (only
    a strictly greater value moves it), as ``ops.maxpool_forward`` picks it."""
    y[...], arg[...] = planes[:, 0], 0
    greater = xp.empty(y.shape, dtype=bool)
    for k in range(1, planes.shape[1]):
        xp.greater(planes[:, k], y, out=greater)
        # k grows, so "arg = k where greater" is max(arg, k * greater): no masked write
        xp.maximum(arg, greater.view(xp.uint8) * xp.uint8(k), out=arg)
        xp.maximum(y, planes[:, k], out=y)


def conv_pool_forward(xp, x, W, b, size=2, max_cols_bytes=8 * 2**20, workers=SERIAL):
    """maxpool(conv(x)) in one product per chunk of the batch.

    x: (N, C, Hi, Wi), W: (F, C, K, K), b: (F,) -> y: (N, F, Hp, Wp), the same values as
    ``ops.maxpool_forward(ops.conv2d_forward(x, W, b), size)`` (up to the product's
    rounding), as an (N, F, Hp, Wp) view of channel-major memory like a conv's output.
    cache: (patches, arg, chunks, x.shape, size, workers): the patches (kept: they are
    (S / K)^2 / size^2 of the conv output's size), each pooled pixel's arg-max offset
    (F, N, Hp, Wp) uint8, and the chunks of the batch (``ops.conv_chunks``, by the
    product's output: size*size planes of F channels).
    """
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Hp, Wp = (Hi - K + 1) // size, (Wi - K + 1) // size
    patches = pool_patches(xp, x, K, size, workers)
    stack = shifted_kernels(xp, W, size)
    yt = xp.empty((F, N, Hp, Wp), dtype=x.dtype)  # channel-major
    arg = xp.empty((F, N, Hp, Wp), dtype=xp.uint8)
    # chunks by the product's output, F * size^2 rows of Hp * Wp values a sample
    chunks = conv_chunks((N, F * size * size, Hp, Wp), 1, max_cols_bytes, x.dtype.itemsize,
                         workers.pieces)

    def forward_chunks(first, stop, matmul):
        for s, e in chunks[first:stop]:
            m = (e - s) * Hp * Wp
            planes = matmul(xp, stack, patches[:, s * Hp * Wp : e * Hp * Wp])
            y_chunk = yt[:, s:e].reshape(F, m)
            pool_planes(xp, planes.reshape(F, size * size, m), y_chunk,
                        arg[:, s:e].reshape(F, m))
            y_chunk += b[:, None]  # after the max: a quarter of the adds

    workers.share(forward_chunks, len(chunks))
    cache = (patches, arg, chunks, x.shape, size, workers)
    return yt.transpose(1, 0, 2, 3), cache


def conv_pool_backward(xp, dy, cache, W, need_dx=True):
    """dy: (N, F, Hp, Wp), the gradient at the pooled output -> dx: (N, C, Hi, Wi),
    dW: (F, C, K, K), db: (F,).

    Each pooled pixel's gradient goes to its arg-max plane only: dY[f, k] = dy * (arg == k),
    one chunk of the batch at a time. Then dW = fold(dY @ patchesᵀ) (``fold_shifted``),
    db[f] = the sum of dy[:, f] (each window passes its gradient to one output), and, with
    need_dx, dx adds W_stackᵀ @ dY back onto the patches it came from. need_dx=False (the
    images' layer) returns dx = None.
    """
    patches, arg, chunks, (N, C, Hi, Wi), size, workers = cache
    F, _, K, _ = W.shape
    Hp, Wp = arg.shape[2], arg.shape[3]
    S, planes = K + size - 1, size * size
    stack = shifted_kernels(xp, W, size) if need_dx else None
    dyt = dy.transpose(1, 0, 2, 3)  # (F, N, Hp, Wp); free when dy is channel-major already
    dxt = xp.zeros((C, N, Hi, Wi), dtype=dy.dtype) if need_dx else None  # channel-major
    def backward_chunks(first, stop, matmul):  # -> (G, db) summed over its chunks
        G, db = xp.zeros((F * planes, C * S * S), dtype=dy.dtype), xp.zeros(F, dtype=dy.dtype)
        for s, e in chunks[first:stop]:
            m = (e - s) * Hp * Wp
            d, a = dyt[:, s:e].reshape(F, m), arg[:, s:e].reshape(F, m)
            dY = xp.empty((F, planes, m), dtype=dy.dtype)
            for k in range(planes):
                xp.multiply(d, a == k, out=dY[:, k])
            dY = dY.reshape(F * planes, m)
            G += matmul(xp, dY, patches[:, s * Hp * Wp : e * Hp * Wp].T)
            db += d.sum(axis=1)
            if need_dx:  # a chunk adds into its own samples of dx only
                _fold_patches(matmul(xp, stack.T, dY), dxt[:, s:e], S, size, Hp, Wp)
        return G, db

    G, db = workers.share_sums(backward_chunks, len(chunks))  # in a fixed order
    dx = dxt.transpose(1, 0, 2, 3) if need_dx else None
    return dx, fold_shifted(xp, G, W.shape, size), db


def _fold_patches(dpatches, dxt, S, size, Hp, Wp):
    """The adjoint of ``pool_patches`` for one chunk: dxt (C, n, Hi, Wi) += the patches'
    gradients dpatches (C*S*S, n*Hp*Wp), one strided slice-add per patch offset (s, t)."""
    C, n = dxt.shape[:2]
    dpatches = dpatches.reshape(C, S, S, n, Hp, Wp)
    for s in range(S):
        for t in range(S):
            dxt[:, :, s : s + size * Hp : size, t : t + size * Wp : size] += dpatches[:, s, t]
