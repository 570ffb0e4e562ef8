"""tinysiamese: siamese convolutional networks for one-shot recognition, from scratch.

A NumPy/CuPy implementation of Koch, Zemel & Salakhutdinov (2015), "Siamese Neural
Networks for One-shot Image Recognition", trained on Omniglot.

Read the code in this order (each module is one concept):

1. ``backend``    the array module (NumPy or CuPy) and dtype, passed in, never global
2. ``ops``        pure forward/backward pairs: ReLU, sigmoid, dense, weighted L1,
                  max-pool, then im2col/col2im and the convolution
3. ``layers``     thin classes over the ops: params, grads and one cache each
4. ``losses``     binary cross-entropy from logits, the one-shot softmax of a group batch
5. ``gradcheck``  finite-difference proof of every backward pass
6. ``model``      the siamese net and its presets
7. ``optim``      momentum SGD with per-layer schedules
8. the data, each module one step from the files to the batches and the trials:
   ``archive``    a zip or its unzipped folder, read alike; ``DataError``
   ``pixels``     the ink convention: PNG -> uint8 ink -> float strokes = 1
   ``characters`` ``CharacterSet``, the paper's sets, turned and mirrored characters
   ``omniglot``   where the archives live, reading a split, the decoded-array cache
   ``download``, ``mnist``, ``distort``  getting the archives, MNIST, affine distortions
   ``batches``    epochs planned from (seed, epoch), prepared in a background thread
   ``pairs``, ``groups``  the two training loaders: independent pairs, group batches
   ``trials``, ``lake_runs``  one-shot trials: within-alphabet, Lake's 20 runs
   ``oneshot``, ``baselines``  the evaluator (views, ensembles, Wilson) and the baselines
9. ``files``, ``checkpoint``, ``train``  atomic writes, saving and resuming, the loop
10. ``drawing``, ``plots``, ``cli``     drawing helpers, pictures, the command line
"""

__version__ = "0.1.0"
