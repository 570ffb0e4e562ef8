"""tinysiamese: siamese convolutional networks for one-shot recognition, from scratch.

A NumPy/CuPy implementation of Koch, Zemel & Salakhutdinov (2015), "Siamese Neural
Networks for One-shot Image Recognition", trained on Omniglot.

Read the code in this order (each module is one concept):

1. ``backend``, ``threads``
                  the array module (NumPy or CuPy) and dtype, passed in, never global,
                  and the threads for the elementwise work NumPy runs on one core and
                  for the matrix products
2. ``ops``, ``fftconv``, ``convpool``
                  pure forward/backward pairs: ReLU, sigmoid, dense, weighted L1,
                  max-pool, then im2col/col2im and the convolution; the same
                  convolution through the Fourier domain, with fewer multiplications;
                  a convolution and its max-pool as one product (the images' block)
3. ``layers``     thin classes over the ops: params, grads and one cache each
4. ``losses``     binary cross-entropy from logits, the one-shot softmax of a group batch
5. ``gradcheck``  finite-difference proof of every backward pass
6. ``config``     the settings, one frozen dataclass per concern, and the presets
7. ``model``      the siamese net: twin encoders, one weighted-L1 join
8. ``optim``      momentum SGD with per-layer schedules, the running weight average
9. ``archive``, ``pixels``, ``characters``, ``omniglot``, ``download``, ``mnist``
                  the data: a zip or a folder, the ink convention, sets of characters
                  and the paper's splits, the archives, MNIST
10. ``distort``, ``batches``, ``pairs``, ``groups``
                  affine distortions, epochs planned from (seed, epoch), the two loaders
11. ``trials``, ``lake_runs``, ``oneshot``, ``baselines``
                  one-shot trials, Lake's 20 runs, the evaluator, the baselines
12. ``steps``, ``files``, ``checkpoint``, ``runfolder``, ``train``
                  one training step, atomic writes, checkpoints, the run folder, the loop
13. ``images``, ``folders``, ``folderdata``, ``similarity``, ``cluster``, ``clustermetrics``,
    ``outputs``   a user's images: one file, folders and their classes, training on them,
                  every pair from embeddings, spectral clustering and its scores, the files
14. ``drawing``, ``plots``, ``cli``
                  pictures, the command line
"""

__version__ = "0.1.0"
