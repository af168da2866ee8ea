"""What the GPU check runs and how big: its models, the two Compares, input sizes, repetitions, time limits.

FULL is sized for one H200 within BUDGET_S of wall time (the issue's 8 minutes), estimated step by step:
writing the fakes ~20 s (all 14 took 15 s on one core of the development machine), the GPU tests ~80 s (each
model in fp32 on the CPU as the reference, then on the GPU three ways), the benchmark ~180 s (14 models at two
sizes: 5 warm-up and 20 timed runs of each, interleaved with the plain model, and 20 batches of 8; then the
three-model Compare, in-process and served), the five-model Compare ~40 s and torch.compile ~100 s (one
model at one input shape, so that it compiles once). The steps run in that order, each in a process of its
own under its own limit, and none starts past the budget: what would not fit is reported as not run.

DRY runs the same steps on the CPU with small models at tiny sizes, and torch.compile switched off
(TORCH_COMPILE_DISABLE=1: the --compile plumbing runs, nothing compiles), in well under a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

BUDGET_S = 480  # 8 minutes of wall time on an H200, everything included

RESNET50_SPEEDUP_TARGET = 3.0  # each ResNet-50 model against its plain fp32 eager time
COMPARE3_TARGET_MS = 150.0  # a warm three-model Compare of the 1024x768 photo, end to end
COMPARE5_TARGET_MS = 300.0  # the warm five-model "Same backbone, different decoder" preset

# Host synchronisations per prediction: one (the mask's download) for every model, but OneFormer, whose
# post-processing in transformers reads one value back (README, Performance).
EXPECTED_HOST_SYNCS = {"oneformer_swin_tiny_ade": 2}

COMPARE3_PRESET = "FCN vs DeepLabV3 (same ResNet-50) + a fast model"  # the Compare tab's default
COMPARE5_PRESET = "Same backbone, different decoder: VOC"


@dataclass(frozen=True)
class Plan:
    """Everything that decides what the check runs. `models` are benchmarked and tested one by one; the
    Compares run their presets' models; `compile_models` are benchmarked again with torch.compile."""

    name: str
    device: str
    models: tuple[str, ...]
    compare3: tuple[str, ...]
    compare5: tuple[str, ...]
    compile_models: tuple[str, ...]
    sizes: str  # bench --sizes; torch.compile is measured at the first of them
    repeat: int
    batch: int
    warmup: int | None = None  # None: bench's default (5 on a GPU)
    compare_size: str | None = None  # None: the photo as it is, 1024x768
    served: bool = True  # also time the Compares through the running app (needs gradio)
    compile_disabled: bool = False
    budget_s: int = BUDGET_S
    limits_s: dict[str, int] = field(default_factory=dict)  # per step; the budget bounds them all

    def all_models(self) -> list[str]:
        """Every model any step needs, each once, in order."""
        return list(dict.fromkeys((*self.models, *self.compare3, *self.compare5, *self.compile_models)))


FULL = Plan(
    name="full",
    device="cuda",
    models=(
        "fcn_resnet50", "deeplabv3_resnet50", "fcn_resnet101", "lraspp_mobilenet_v3_large",  # torchvision
        "fcn_r50_d8_voc", "pspnet_r50_d8_voc", "deeplabv3_r50_d8_voc", "deeplabv3plus_r50_d8_voc",
        "upernet_r50_voc",  # mmseg zoo layout, our modules
        "segformer_b0_ade", "oneformer_swin_tiny_ade",  # transformers (tiny random configurations)
        "smp_segformer_b0_ade", "smp_upernet_convnext_tiny",  # smp-hub (small random encoders)
        "enet_camvid",  # native: its real published weights, where the shared data folder has them
    ),
    compare3=(),  # filled from the presets below
    compare5=(),
    compile_models=("fcn_resnet50",),
    sizes="native,1024",
    repeat=20,
    batch=8,
    limits_s={"fakes": 120, "gpu-tests": 180, "bench": 240, "bench-compare5": 120, "bench-compile": 200},
)

DRY = Plan(
    name="dry-run",
    device="cpu",
    models=("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v2", "smp_segformer_b0_ade", "enet_camvid"),
    compare3=("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v2", "smp_segformer_b0_ade"),
    compare5=("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v2", "smp_segformer_b0_ade", "deeplabv3_mobilevit_small",
              "segformer_b0_ade"),
    compile_models=("deeplabv3_mobilenet_v2",),
    sizes="64",
    repeat=2,
    batch=2,
    warmup=1,
    compare_size="128x96",
    served=False,
    compile_disabled=True,
    budget_s=240,
    limits_s={"fakes": 60, "gpu-tests": 90, "bench": 60, "bench-compare5": 60, "bench-compile": 60},
)


def full_plan() -> Plan:
    from ..catalog import presets

    chosen = presets()
    return replace(FULL, compare3=tuple(chosen[COMPARE3_PRESET]["models"]),
                   compare5=tuple(chosen[COMPARE5_PRESET]["models"]))


def choose(dry_run: bool, models: list[str] | None = None) -> Plan:
    """The plan to run; `models` (from --models) replaces its per-model list, the Compares stay."""
    plan = DRY if dry_run else full_plan()
    return replace(plan, models=tuple(models)) if models else plan
