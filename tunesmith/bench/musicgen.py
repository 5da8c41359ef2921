"""A MusicGen-small-sized model timed on this CPU, for `tunesmith bench song`'s side-by-side figure.

Built from the published architecture of facebook/musicgen-small (a T5-base text encoder, a 24-layer decoder of
width 1024 over 4 EnCodec codebooks of 2,048 codes at 50 frames a second, a 32 kHz EnCodec decoder) with random
weights: the same compute as the real model, no download. Sampled as its model card does (top-k 250, classifier-
free guidance 3: two sequences a step). Needs the optional `transformers` package (`pip install tunesmith[bench]`).
"""

from __future__ import annotations

import time
from typing import Any

from tunesmith.errors import DependencyError

FRAME_RATE = 50  # EnCodec 32 kHz frames (decoder steps) per second of audio
SAMPLE_RATE = 32000
PROMPT_TOKENS = 12  # "lo-fi hip hop beat with mellow piano" is about this many T5 tokens


def build(*, layers: int = 24, width: int = 1024, seed: int = 0) -> Any:
    """MusicgenForConditionalGeneration with MusicGen-small's shape (``layers``/``width``: smaller for tests)."""
    try:
        import torch
        from transformers import (
            EncodecConfig,
            MusicgenConfig,
            MusicgenDecoderConfig,
            MusicgenForConditionalGeneration,
            T5Config,
        )
    except ImportError as exc:
        raise DependencyError(f"the MusicGen comparison needs transformers ({exc}); pip install "
                              "'tunesmith[bench]', or run the bench with --no-musicgen") from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # its start/pad token 2048 sits past the 2,048 codes, as published
    torch.manual_seed(seed)
    text = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    audio = EncodecConfig(sampling_rate=SAMPLE_RATE, audio_channels=1, num_filters=64, hidden_size=128,
                          upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, target_bandwidths=[2.2],
                          normalize=False, use_causal_conv=False, num_lstm_layers=2)
    decoder = MusicgenDecoderConfig(vocab_size=2048, num_hidden_layers=layers, hidden_size=width,
                                    num_attention_heads=16, ffn_dim=4 * width, num_codebooks=4, audio_channels=1)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    return MusicgenForConditionalGeneration(config).eval()


def time_generation(model: Any, seconds: float = 5.0) -> dict[str, float]:
    """Generate ``seconds`` of audio once (after a short warm-up); wall and CPU seconds, music per CPU second."""
    import torch

    steps = round(seconds * FRAME_RATE) + model.config.decoder.num_codebooks - 1  # the codebook delay
    ids = torch.randint(5, 32000, (1, PROMPT_TOKENS))
    mask = torch.ones_like(ids)
    sampling = {"do_sample": True, "top_k": 250, "guidance_scale": 3.0}
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, **sampling)
        started, cpu = time.perf_counter(), time.process_time()
        audio = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, **sampling)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    made = audio.shape[-1] / SAMPLE_RATE
    return {"musicgen_seconds_of_music": round(made, 3), "musicgen_wall_seconds": round(wall, 3),
            "musicgen_cpu_seconds": round(cpu, 3), "musicgen_steps": steps,
            "musicgen_music_per_cpu_second": made / cpu, "musicgen_x_real_time": made / wall}
