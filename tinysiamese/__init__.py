"""tinysiamese: siamese convolutional networks for one-shot recognition, from scratch.

A NumPy/CuPy implementation of Koch, Zemel & Salakhutdinov (2015), "Siamese Neural
Networks for One-shot Image Recognition", trained on Omniglot.

Read the code in this order (each module is one concept):

1. ``backend``    the array module (NumPy or CuPy) and dtype, passed in, never global
2. ``ops``        pure forward/backward pairs: ReLU, sigmoid, dense, weighted L1,
                  max-pool, then im2col/col2im and the convolution
3. ``layers``     thin classes over the ops: params, grads and one cache each
4. ``losses``     binary cross-entropy from logits, the L2 penalty
5. ``gradcheck``  finite-difference proof of every backward pass
6. ``model``      the siamese net and its presets
7. ``optim``      momentum SGD with per-layer schedules
8. ``omniglot``, ``mnist``, ``download``, ``distort``, ``pairs``, ``oneshot``,
   ``baselines``  the data: archives, splits, distorted pairs, one-shot trials
9. ``checkpoint``, ``train``  saving, resuming and the training loop
10. ``plots``, ``cli``        pictures and the command line
"""

__version__ = "0.1.0"
