"""The blocks kzoo's networks are made of, one kind per module, each declaring its
activation slots (a ``kzoo.placement.BlockSlots``) next to its code, so a new kind of
block brings its own slots and the placement mechanism needs no edit:

- ``residual``: post- and pre-activation basic and bottleneck blocks (CIFAR ResNets,
  Wide ResNets, ResNeXts), with dropout, grouped convolutions and stochastic depth;
- ``keras_resnet``: keras.applications' ResNet v1 and v2 bottlenecks (ImageNet);
- ``merge_run``: the two-line merge-and-run block (DFN-MR);
- ``inception``: EraseReLU's CIFAR Inception module;
- ``single``: a module with a single activation (plain, VGG- and residual-style nets).

``conv_bn`` holds the convolution and batch normalisation they share, ``stems`` the
CIFAR stem.
"""
