"""The training modes of `keras_mlh.MLH`: MLH and the baselines it contains.

A mode says which hash branches the model has, whether they share a mixture
of hash experts, and the default weight of each loss term. The objective
(`keras_mlh.losses.MLHObjective`) decides from the branches and the weights
which terms run; nothing else does.
"""

import dataclasses

BRANCHES = ("center", "pairwise")


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
        if branch is None:  # the first branch
            return self.branches[0]
        if branch not in self.branches:
            raise ValueError(
                f"Mode {self.name!r} has branches {self.branches}; `{argument}` "
                f"must be one of them. Received: {argument}={branch!r}"
            )
        return branch


# The paper's best weights are 4/1/1 (with its 1/N center-loss normalization);
# with "sample_class", 0.25/1/2 won on the protocols' validation splits
# (+0.79 mAP points over 1/1/2 on average; benchmarks/README.md, "Tuning
# log"). The baselines zero what they lack. `csq` is CSQ (Yuan et al., CVPR
# 2020) as DeepHash-pytorch writes it: one hash layer, CSQ's per-bit loss.
_MLH_WEIGHTS = LossWeights(center=0.25, pairwise=1.0, mutual=2.0)
MODES = {
    mode.name: mode
    for mode in (
        Mode("mlh", BRANCHES, True, _MLH_WEIGHTS),
        Mode("center", ("center",), False, LossWeights(1.0, 0.0, 0.0)),
        Mode("pairwise", ("pairwise",), False, LossWeights(0.0, 1.0, 0.0)),
        Mode("mlh_no_moh", BRANCHES, False, _MLH_WEIGHTS),
        Mode("mlh_no_mutual", BRANCHES, True, _MLH_WEIGHTS.replace(mutual=0.0)),
        Mode("csq", ("csq",), False, LossWeights(0.0, 0.0, 0.0, csq=1.0)),
    )
}


def get_mode(name):
    if name not in MODES:
        raise ValueError(
            f"Unknown mode {name!r}; use one of {sorted(MODES)}. Received: mode={name!r}"
        )
    return MODES[name]
