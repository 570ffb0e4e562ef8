"""Pure forward/backward pairs: the arithmetic of every layer, simplest first.

Each ``*_forward`` returns ``(y, cache)`` and each ``*_backward`` takes the upstream
gradient ``dy`` and that cache and returns the gradients. Nothing is stored anywhere
else, nothing but an ``out=`` array (or ``col2im_add``'s target) is written in place,
and every function takes the array module ``xp`` (NumPy or CuPy) explicitly, so the same
code runs on the CPU and the GPU.

Names: ``dy`` is the upstream gradient, ``dx``/``dW``/``db`` the results; spatial sizes
are ``Hi, Wi`` (input) and ``Ho, Wo`` (output), ``K`` is the kernel size, so ``W``
always means a weight.
"""
from __future__ import annotations

from .threads import SERIAL, piece_count


# --------------------------------------------------------------------------- ReLU
def relu_forward(xp, x, out=None):
    """y = max(x, 0), elementwise. x: any shape. cache: y (y > 0 exactly where x > 0).
    out: the y to fill instead of a new one (``layers.ReLU`` hands each thread a slice)."""
    y = xp.maximum(x, 0, out=out)
    return y, y


def relu_backward(xp, dy, y, out=None):
    """dy, y: x's shape -> dx: x's shape, dy where x > 0, else 0 (the kink gets 0)."""
    return xp.multiply(dy, y > 0, out=out)


# --------------------------------------------------------------------------- Sigmoid
def sigmoid(xp, x):
    """sigma(x) = 1 / (1 + e^-x), computed from e^-|x| so it never overflows."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def sigmoid_forward(xp, x):
    """y = sigma(x). x: any shape. cache: y itself."""
    y = sigmoid(xp, x)
    return y, y


def sigmoid_backward(xp, dy, y):
    """dy, y: x's shape -> dx = dy * sigma'(x) = dy * y (1 - y), x's shape."""
    return dy * y * (1 - y)


# --------------------------------------------------------------------------- Dense
def dense_forward(xp, x, W, b, workers=SERIAL):
    """y = x W + b.  x: (N, Din), W: (Din, Dout), b: (Dout,) -> y: (N, Dout). cache: x.
    ``workers`` (here and below): the threads that share the products (``threads``)."""
    y = workers.matmul(xp, x, W)
    y += b
    return y, x


def dense_backward(xp, dy, x, W, workers=SERIAL, dW=None):
    """dy: (N, Dout) -> dx: (N, Din), dW: (Din, Dout), db: (Dout,).

    dx = dy Wᵀ; dW = xᵀ dy (summed over the batch by the product); db = sum_n dy.
    dW: an array to write dW into instead of a new one (the layer's grads).
    """
    return workers.matmul(xp, dy, W.T), workers.matmul(xp, x.T, dy, out=dW), dy.sum(axis=0)


# --------------------------------------------------------------------------- Weighted L1
def weighted_l1_forward(xp, h1, h2, alpha, b, workers=SERIAL, out=None):
    """The siamese join: z = |h1 - h2| alpha + b.

    h1, h2: (N, D) twin features; alpha: (D,); b: (1,) -> z: (N,) logits.
    cache: (s, a) with s = sign(h1 - h2) and a = |h1 - h2|, all backward needs.
    out: (s, a) arrays to fill instead of new ones (``layers.WeightedL1.forward_pairs``).
    """
    s, a = (None, None) if out is None else out
    a = xp.subtract(h1, h2, out=a)  # the difference d, for now
    s = xp.sign(a, out=s)  # not in place: NumPy's in-place sign runs ~9x slower
    xp.abs(a, out=a)
    return workers.matmul(xp, a, alpha) + b[0], (s, a)


def weighted_l1_backward(xp, dz, cache, alpha):
    """dz: (N,) -> dh1, dh2: (N, D), dalpha: (D,), db: (1,).

    dalpha = aᵀ dz; db = sum_n dz; dh1 = dz alpha sign(h1 - h2) = -dh2 (the kink h1 == h2
    gets 0).
    """
    s, a = cache
    dd = dz[:, None] * alpha[None, :] * s
    return dd, -dd, a.T @ dz, dz.sum(keepdims=True)


def weighted_l1_backward_pairs(xp, dz, cache, alpha, first, second, n_rows, workers=SERIAL):
    """weighted_l1_backward when the twins are rows of one feature matrix h (M, D):
    h1 = h[first], h2 = h[second], first, second: (P,) -> dh (M, D), dalpha (D,), db (1,).

    A row in k pairs gets the sum of its k gradients: with T = S1 - S2 (M, P), one-hot
    S1[m, p] = [first_p == m] and S2 likewise, dh_m = sum_p T[m, p] dz_p alpha s_p with
    s = sign(h1 - h2), i.e. dh = ((T diag(dz)) s) ⊙ alpha: one product over the pairs, and
    no (P, D) gradient per pair is made. It runs alike on NumPy and CuPy and beats
    ``np.add.at``.
    """
    s, a = cache
    rows = xp.arange(n_rows)[:, None]
    T = (rows == first).astype(dz.dtype) - (rows == second).astype(dz.dtype)  # (M, P)
    T *= dz  # column p times dz_p
    dh = workers.matmul(xp, T, s)
    dh *= alpha
    return dh, workers.matmul(xp, a.T, dz), dz.sum(keepdims=True)


# --------------------------------------------------------------------------- Max-pool
def maxpool_forward(xp, x, size=2, out=None):
    """Non-overlapping max-pool with window and stride ``size``.

    x: (N, C, Hi, Wi) -> y: (N, C, Ho, Wo), Ho = Hi // size (odd edges are dropped).
    The max is taken over the size*size strided slices x[..., i::s, j::s], one
    elementwise maximum per window offset (no copy of the windows is made).
    cache: (arg, x.shape, channel_major): arg (N, C, Ho, Wo) uint8, the offset i*size + j
    of each window's arg-max, the first in row-major order on ties. It is a quarter of y's
    bytes at float32 and size 2, so the input itself need not be kept for backward.
    out: (y, arg) arrays to fill instead of new ones (``layers.MaxPool2D`` hands each
    thread its slice of the channels).
    """
    Ho, Wo = x.shape[2] // size, x.shape[3] // size
    if size == 2:
        return _maxpool2_forward(xp, x, Ho, Wo, out)
    slices = [x[:, :, i : i + Ho * size : size, j : j + Wo * size : size]
              for i in range(size) for j in range(size)]
    if out is None:
        y, arg = slices[0].copy(order="K"), xp.zeros(slices[0].shape, dtype=xp.uint8)
    else:
        y, arg = out
        y[...], arg[...] = slices[0], 0
    greater = xp.empty(y.shape, dtype=bool)
    for k, xs in enumerate(slices[1:], start=1):
        # Only a strictly greater value moves the arg-max, so on ties the first one stays;
        # k grows, so "arg = k where greater" is max(arg, k * greater) (no masked write).
        xp.greater(xs, y, out=greater)
        xp.maximum(arg, greater.view(xp.uint8) * xp.uint8(k), out=arg)
        xp.maximum(y, xs, out=y)
    return y, (arg, x.shape, is_channel_major(x))


def _maxpool2_forward(xp, x, Ho, Wo, out=None):
    """maxpool_forward for 2 x 2 windows, as a tree: the max of each horizontal pair (one
    pass over x), then of each vertical pair of those (a pass over half of it), instead of
    four passes over strided quarters. Strict comparisons keep the first arg-max in
    row-major order: the left of a pair on ties, then the upper row (offset 2i + j)."""
    shape, layout = x.shape, is_channel_major(x)
    x = x[:, :, : 2 * Ho, : 2 * Wo]  # (N, C, 2Ho, 2Wo): the odd edges dropped
    left, right = x[..., 0::2], x[..., 1::2]  # (N, C, 2Ho, Wo) each
    h = xp.maximum(left, right)  # the max of each horizontal pair
    j = right > left  # which of the pair holds it: 1 only if strictly greater
    top, bottom = h[:, :, 0::2], h[:, :, 1::2]  # (N, C, Ho, Wo) each
    y, arg = (None, None) if out is None else out
    y = xp.maximum(top, bottom, out=y)
    i = bottom > top
    # j of the winning row, where(i, j_bottom, j_top), as bit operations: a where() over
    # strided booleans costs several times the rest of the pool
    j_top, j_bottom = j[:, :, 0::2], j[:, :, 1::2]
    pick = xp.bitwise_xor(j_top, j_bottom, out=None if arg is None else arg.view(bool))
    pick &= i
    pick ^= j_top
    arg = pick.view(xp.uint8)
    arg += i.view(xp.uint8) * xp.uint8(2)
    return y, (arg, shape, layout)


def is_channel_major(x) -> bool:
    """True when x (N, C, H, W) is a view of (C, N, H, W) memory (a conv's output)."""
    return x.ndim == 4 and x.shape[0] > 1 and x.strides[1] > x.strides[0]


def empty_nchw(xp, shape, dtype, channel_major: bool):
    """An uninitialised (N, C, H, W) array, a view of (C, N, H, W) memory if channel_major."""
    N, C, H, W = shape
    if channel_major:
        return xp.empty((C, N, H, W), dtype=dtype).transpose(1, 0, 2, 3)
    return xp.empty(shape, dtype=dtype)


def maxpool_backward(xp, dy, cache, size=2, out=None):
    """dy: (N, C, Ho, Wo) -> dx: (N, C, Hi, Wi).

    Each window's gradient goes to its one arg-max element (``arg``, the first in
    row-major order on ties); every other element and the dropped odd edge get 0. Each
    window offset k writes its strided slice of dx once, dy * (arg == k), in place, so no
    zero-filled dx and no temporary the size of dx are made. dx has the memory layout
    the input had (channel-major after a conv), so conv backward reads it without a copy.
    out: the dx to fill instead of a new one.
    """
    arg, (N, C, Hi, Wi), channel_major = cache
    Ho, Wo = arg.shape[2], arg.shape[3]
    dx = empty_nchw(xp, (N, C, Hi, Wi), dy.dtype, channel_major) if out is None else out
    dx[:, :, Ho * size :] = 0  # the odd edges that no window covers
    dx[:, :, :, Wo * size :] = 0
    for i in range(size):
        for j in range(size):
            window = (slice(None), slice(None), slice(i, i + Ho * size, size),
                      slice(j, j + Wo * size, size))
            xp.multiply(dy, arg == i * size + j, out=dx[window])
    return dx


# --------------------------------------------------------------------------- im2col
def im2col(xp, x, K):
    """Unfold every K x K patch of x into a column, for a valid, stride-1 convolution.

    x: (N, C, Hi, Wi) -> cols: (C*K*K, N*Ho*Wo) with Ho = Hi - K + 1, Wo = Wi - K + 1.
    Row (c, i, j) holds x[n, c, ho + i, wo + j] for every output position (n, ho, wo).
    Built with K*K slice copies (one per kernel offset), never a loop over pixels.
    """
    N, C, Hi, Wi = x.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    xt = x.transpose(1, 0, 2, 3)  # (C, N, Hi, Wi): a view; channels lead the rows
    cols = xp.empty((C, K, K, N, Ho, Wo), dtype=x.dtype)
    for i in range(K):
        for j in range(K):
            cols[:, i, j] = xt[:, :, i : i + Ho, j : j + Wo]
    return cols.reshape(C * K * K, N * Ho * Wo)


def col2im(xp, dcols, x_shape, K):
    """The adjoint of im2col: add every column back onto the patch it came from.

    dcols: (C*K*K, N*Ho*Wo) -> dx: (N, C, Hi, Wi). A pixel that sits in several patches
    receives the sum of their gradients: one slice-add per kernel offset.
    """
    N, C, Hi, Wi = x_shape
    dxt = xp.zeros((C, N, Hi, Wi), dtype=dcols.dtype)
    col2im_add(xp, dcols, dxt, K)
    return dxt.transpose(1, 0, 2, 3)  # (N, C, Hi, Wi) view of channel-major memory


def col2im_add(xp, dcols, dxt, K):
    """col2im in place: dxt += col2im(dcols), with dxt channel-major (C, N, Hi, Wi).

    dxt may be a slice of a bigger array (a chunk of the batch): conv2d_backward adds each
    chunk's patches straight into its part of dx, with no temporary image and no copy.
    """
    C, N, Hi, Wi = dxt.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    dcols = dcols.reshape(C, K, K, N, Ho, Wo)
    for i in range(K):
        for j in range(K):
            dxt[:, :, i : i + Ho, j : j + Wo] += dcols[:, i, j]


# --------------------------------------------------------------------------- Conv2D
def conv_chunks(x_shape, K, max_cols_bytes, itemsize, at_least=1):
    """Split the batch into chunks whose im2col buffer stays under ``max_cols_bytes``.

    Returns a list of (start, stop) sample ranges, of sizes within one of each other. A
    small buffer (a few MB) stays in the CPU's cache between the unfolding copy and the
    matrix product that reads it, which is faster than one huge buffer in main memory (the
    paper's conv2 on 256 images would need 5.6 GB at once) and bounds memory for any batch.
    at_least: the number of threads that take whole chunks (``Workers.pieces``): the count
    is made a multiple of it (up to one chunk a sample), so that each thread unfolds and
    folds as many as the others, even where one chunk would fit: on small maps the copies,
    not the products, take most of a conv's time (small's conv4 backward in the training
    step, 2 threads: 2.4 -> 1.7 ms).
    """
    N, C, Hi, Wi = x_shape
    per_sample = C * K * K * (Hi - K + 1) * (Wi - K + 1) * itemsize
    step = max(1, min(N, int(max_cols_bytes // max(per_sample, 1))))
    count = piece_count(N, step, at_least)  # near-equal chunks: threads share them evenly
    bounds = [N * k // count for k in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def conv2d_forward(xp, x, W, b, max_cols_bytes=8 * 2**20, workers=SERIAL):
    """Valid, stride-1 cross-correlation, as every framework's "convolution".

    x: (N, C, Hi, Wi), W: (F, C, K, K), b: (F,) -> y: (N, F, Ho, Wo),
    y[n, f] = sum_{c,i,j} W[f, c, i, j] x[n, c, ho + i, wo + j] + b[f].
    As one matrix product per chunk of samples, (F, C*K*K) @ (C*K*K, n*Ho*Wo), so that
    BLAS does the arithmetic. cache: (x, max_cols_bytes, workers); backward unfolds x
    again.
    """
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    W2 = W.reshape(F, C * K * K)
    # The result is filled in channel-major memory (F, N, Ho, Wo) and returned as an
    # (N, F, Ho, Wo) view: elementwise layers keep that layout, and the next im2col and
    # this layer's backward then read it without a transposing copy.
    yt = xp.empty((F, N * Ho * Wo), dtype=x.dtype)  # column n*Ho*Wo + ho*Wo + wo
    chunks = conv_chunks(x.shape, K, max_cols_bytes, x.dtype.itemsize, workers.pieces)

    def forward_chunks(first, stop, matmul):
        for s, e in chunks[first:stop]:  # the chunk's columns of y are a view: written there
            y_chunk = yt[:, s * Ho * Wo : e * Ho * Wo]
            matmul(xp, W2, im2col(xp, x[s:e], K), out=y_chunk)
            y_chunk += b[:, None]  # while the chunk is still in the cache

    workers.share(forward_chunks, len(chunks))  # independent chunks: threads may share them
    return yt.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3), (x, max_cols_bytes, workers)


def conv2d_backward(xp, dy, cache, W, need_dx=True):
    """dy: (N, F, Ho, Wo) -> dx: (N, C, Hi, Wi), dW: (F, C, K, K), db: (F,).

    With Y = W2 · cols:  dW2 = dY · colsᵀ (each filter sees every patch),
    dcols = W2ᵀ · dY, and dx = col2im(dcols) (patches overlap, so their gradients add);
    db[f] = sum of dY[:, f] over (N, Ho, Wo), since b[f] is added at every output position.
    need_dx=False skips dcols and col2im and returns dx = None: a first layer's input is
    the data, whose gradient nothing needs (dW and db are the same either way).
    """
    x, max_cols_bytes, workers = cache
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    W2 = W.reshape(F, C * K * K)
    dyt = dy.transpose(1, 0, 2, 3)  # (F, N, Ho, Wo); free when dy is channel-major already
    dxt = xp.zeros((C, N, Hi, Wi), dtype=x.dtype) if need_dx else None  # channel-major
    chunks = conv_chunks(x.shape, K, max_cols_bytes, x.dtype.itemsize, workers.pieces)

    def backward_chunks(first, stop, matmul):  # -> (dW2, db) summed over its chunks
        dW2, db = xp.zeros_like(W2), xp.zeros(F, dtype=dy.dtype)
        for s, e in chunks[first:stop]:
            dy2 = dyt[:, s:e].reshape(F, (e - s) * Ho * Wo)
            dW2 += matmul(xp, dy2, im2col(xp, x[s:e], K).T)
            db += dyt[:, s:e].sum(axis=(1, 2, 3))
            if need_dx:  # a chunk adds into its own samples of dx only
                col2im_add(xp, matmul(xp, W2.T, dy2), dxt[:, s:e], K)
        return dW2, db

    dW2, db = workers.share_sums(backward_chunks, len(chunks))  # in a fixed order
    return (dxt.transpose(1, 0, 2, 3) if need_dx else None), dW2.reshape(W.shape), db
