"""The training modes of `keras_mlh.MLH`: MLH and its baselines (Keras-free)."""

import dataclasses

BRANCHES = ("center", "pairwise")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the center, pairwise, mutual (and CSQ's) loss terms; 0 is off."""

    center: float
    pairwise: float
    mutual: float
    csq: float = 0.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not float(value) >= 0:
                raise ValueError(
                    f"Loss weights must be >= 0. Received: {field.name}_weight={value!r}"
                )
            object.__setattr__(self, field.name, float(value))

    def replace(self, **weights):
        """A copy with the weights given and not `None` replaced."""
        given = {k: v for k, v in weights.items() if v is not None}
        return dataclasses.replace(self, **given)


@dataclasses.dataclass(frozen=True)
class Mode:
    """One configuration of `MLH`: its `branches`, whether they share a
    `MixtureOfHashExperts` (else a `HashLayer`) and its default weights."""

    name: str
    branches: tuple
    uses_moh: bool
    weights: LossWeights

    def check_branch(self, branch=None, argument="retrieval_branch"):
        """`branch`, or the first branch for `None`; a `ValueError` if unknown."""
        if branch is None:
            return self.branches[0]
        if branch not in self.branches:
            raise ValueError(
                f"Mode {self.name!r} has branches {self.branches}; `{argument}` "
                f"must be one of them. Received: {argument}={branch!r}"
            )
        return branch


# The paper's 4/1/1 goes with its 1/N center-loss normalization; 0.25/1/2 with
# "sample_class" won on the protocols' validation splits (benchmarks/README.md,
# "Tuning log"). `csq` is CSQ (CVPR 2020) as DeepHash-pytorch writes it.
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
    """The `Mode` called `name`; a `ValueError` naming the modes otherwise."""
    if name not in MODES:
        raise ValueError(f"Unknown mode {name!r}; use one of {sorted(MODES)}.")
    return MODES[name]
