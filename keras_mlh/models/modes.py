"""The training modes of `keras_mlh.MLH`: MLH and the baselines it contains.

A mode says which hash branches the model has, whether they share a mixture
of hash experts, and the default weight of each loss term. The objective
(`keras_mlh.losses.MLHObjective`) decides from the branches and the weights
which terms run; nothing else does.
"""

import dataclasses

BRANCHES = ("center", "pairwise")
# The `csq` baseline's single branch, trained with CSQ's own loss.
CSQ_BRANCH = "csq"


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the three MLH loss terms (and CSQ's); 0 switches a term off.

    Attributes:
        center: weight of the center loss `L_C`.
        pairwise: weight of the DPSH pairwise loss `L_P`.
        mutual: weight of the cosine mutual loss `L_M`.
        csq: weight of CSQ's loss (`CSQHashLoss`), the `csq` baseline's only
            term; 0 in every MLH mode.
    """

    center: float
    pairwise: float
    mutual: float
    csq: float = 0.0

    def __post_init__(self):
        for name in ("center", "pairwise", "mutual", "csq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not float(value) >= 0:
                raise ValueError(
                    f"Loss weights must be >= 0. Received: {name}_weight={value!r}"
                )
            object.__setattr__(self, name, float(value))

    def replace(self, center=None, pairwise=None, mutual=None):
        """These weights with the given ones (not `None`) replaced."""
        return LossWeights(
            self.center if center is None else center,
            self.pairwise if pairwise is None else pairwise,
            self.mutual if mutual is None else mutual,
            self.csq,
        )


@dataclasses.dataclass(frozen=True)
class Mode:
    """One training configuration of `MLH`.

    Attributes:
        name: the `mode` argument of `MLH`.
        branches: hash branches, a tuple of `"center"` and/or `"pairwise"`,
            or `("csq",)`.
        uses_moh: whether the branches share a `MixtureOfHashExperts`
            (otherwise each branch has its own `HashLayer`).
        weights: default `LossWeights`; a baseline zeroes what it lacks.
    """

    name: str
    branches: tuple
    uses_moh: bool
    weights: LossWeights

    def check_branch(self, branch=None, argument="retrieval_branch"):
        """`branch` checked against the mode's; `None` gives the first one."""
        if branch is None:
            return self.branches[0]
        if branch not in self.branches:
            raise ValueError(
                f"Mode {self.name!r} has branches {self.branches}; `{argument}` "
                f"must be one of them. Received: {argument}={branch!r}"
            )
        return branch


# The paper's best weights are 4/1/1 (with its 1/N center-loss normalization).
# With the default "sample_class" normalization, 1/1/2 was best on a hold-out
# of the MNIST-5k database (benchmarks/results/tuning.md), where every mode
# scores 0.98-0.99. On validation splits of the harder protocols (small
# training set, pseudo-unseen classes, multi-label composites; 16/32/64 bits,
# 3 paired seeds, the test queries unused) a lighter center loss, 0.25/1/2,
# raised MLH by +0.79 mAP points on average over the 10 cells and lost more
# than 0.05 in one only (-0.26 +- 0.37, small-train at 16 bits); 0.5/1/2
# gained +0.48, and 0.1/1/2 lost 0.16 on the 32-bit cells
# (benchmarks/results/protocols_validation.md). The baselines
# zero what they lack; a single-loss model is the same under Adam whatever
# its weight. `csq` is CSQ (Yuan et al., CVPR 2020) as its paper and the
# DeepHash-pytorch code write it: one hash layer, CSQ's per-bit loss.
_MLH_WEIGHTS = LossWeights(center=0.25, pairwise=1.0, mutual=2.0)
MODES = {
    mode.name: mode
    for mode in (
        Mode("mlh", BRANCHES, True, _MLH_WEIGHTS),
        Mode("center", ("center",), False, LossWeights(1.0, 0.0, 0.0)),
        Mode("pairwise", ("pairwise",), False, LossWeights(0.0, 1.0, 0.0)),
        Mode("mlh_no_moh", BRANCHES, False, _MLH_WEIGHTS),
        Mode("mlh_no_mutual", BRANCHES, True, _MLH_WEIGHTS.replace(mutual=0.0)),
        Mode("csq", (CSQ_BRANCH,), False, LossWeights(0.0, 0.0, 0.0, csq=1.0)),
    )
}


def get_mode(name):
    """The `Mode` called `name`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in MODES:
        raise ValueError(
            f"Unknown mode {name!r}; use one of {sorted(MODES)}. Received: mode={name!r}"
        )
    return MODES[name]
