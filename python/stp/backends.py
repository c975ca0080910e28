"""What a run samples, verifies and trains with: one bundle, built from the config.

Self-play, evaluation, the final re-training and the pipeline around them take one `Backends`
and never build a sampler, a verifier or a trainer themselves, so there is one place where the
production backends are chosen (`Backends.from_config`) and one object a test replaces to run the
whole system with a scripted sampler or a stand-in trainer. A bundle holds factories, not live
objects: each stage opens what it needs for as long as it needs it (the sampler of one model,
the verifier of one check configuration) and closes it, so the accelerator and the checker pool
are held only while used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stp.model.training import TrainFn

if TYPE_CHECKING:
    from stp.config import STPConfig
    from stp.model.config import ModelConfig, TrainerConfig
    from stp.model.training import TrainResult
    from stp.model.types import Sampler
    from stp.verify import Verifier

# model (a Hub id, local or gs:// directory) -> a sampler of it
SamplerFactory = Callable[[str], "Sampler"]
# a check configuration (profile, cache, pool; the run's config with those set) -> a verifier
VerifierFactory = Callable[["STPConfig"], "Verifier"]


@dataclass(frozen=True)
class Backends:
    sampler: SamplerFactory
    verifier: VerifierFactory
    train: TrainFn

    @classmethod
    def from_config(cls, cfg: STPConfig) -> Backends:
        """The production bundle: `sampler.backend` (vLLM or transformers) under the run's
        model and sampler settings, the configured verifier pool, and Levanter training."""
        model_cfg, sampler_cfg = cfg.model, cfg.sampler

        def sampler(model: str) -> Sampler:
            from stp.model.sampling import make_sampler

            return make_sampler(model, model_cfg, sampler_cfg)

        return cls(sampler=sampler, verifier=production_verifier, train=production_train)


def production_verifier(cfg: STPConfig) -> Verifier:
    """`stp.verify.make_verifier`, looked up when called (imports the pool only when used)."""
    from stp.verify import make_verifier

    return make_verifier(cfg)


def production_train(base_model: str, examples_path: str, out_dir: str,
                     trainer_cfg: TrainerConfig, model_cfg: ModelConfig, *,
                     learning_rate: float | None = None, min_steps: int | None = None,
                     epochs: float | None = None, max_steps: int | None = None) -> TrainResult:
    """`train_weighted` after the accelerator hand-off from sampling (`stp.model.phases`): every
    training stage (Stage 1, a self-play round, the re-training) starts from a released device."""
    from stp.model.phases import release_for_training
    from stp.model.training import train_weighted

    release_for_training()
    return train_weighted(base_model, examples_path, out_dir, trainer_cfg, model_cfg,
                          learning_rate=learning_rate, min_steps=min_steps, epochs=epochs,
                          max_steps=max_steps)
