"""Tuning experiment: MLH with its center branch on CSQ's per-bit loss.

Issue 22 asks why CSQ beats `center` on real photographs: the loss's form
(MDSH's softmax over the classes' centers against CSQ's per-bit binary
cross-entropy to the image's own center) is the first suspect. This runs
`benchmarks/protocols.py` with `MLHObjective`'s center term swapped for
`CSQHashLoss` (same centers, same quantization weight), and labels the rows'
setting `center_loss='csq'`; every other argument is protocols.py's.

    python benchmarks/center_loss_form.py --protocols fashion-cifar --modes mlh \
        --bits 32 --validation 1000 --name fashion_tuning --set center_weight=1.0

The form is not an `MLH` option: it tied `csq` on validation but did not
beat it (benchmarks/README.md, "Fashion-MNIST tuning log").
"""

import sys

import protocols

import keras_mlh.losses.mlh_objective as objective
from keras_mlh.losses.center_hash_loss import CSQHashLoss


def csq_form(centers, quantization_weight=1e-4, reduction="none", **_):
    """`CSQHashLoss` in place of `CenterHashLoss` (its other options unused)."""
    return CSQHashLoss(
        centers, quantization_weight=quantization_weight, reduction=reduction
    )


def main(argv=None):
    objective.CenterHashLoss = csq_form
    parse = protocols.parse_args

    def parse_args(argv=None):
        args = parse(argv)
        args.setting = ", ".join(filter(None, ["center_loss='csq'", args.setting]))
        return args

    protocols.parse_args = parse_args
    return protocols.main(argv)


if __name__ == "__main__":
    sys.exit(main())
