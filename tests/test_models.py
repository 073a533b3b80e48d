"""The MAN networks and losses: shapes, rho, gradients, ablation variants, output heads, predictors, warp,
perceptual loss."""

import logging
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from talking_face.models import (
    VARIANTS,
    FlowPredictor,
    KeypointPredictor,
    MANGenerator,
    MultiScaleDiscriminator,
    model_config,
    rho_table,
    set_active_sources,
    warp,
)
from talking_face.models import losses
from talking_face.models.cam import CAMLayer
from talking_face.models.generator import composite
from talking_face.models.man import EfficientChannelAttention, PartialConv2d, TemporalBranch, man_blocks

torch.set_num_threads(2)


def conditioning(config, batch, seed=0):
    """Random conditioning with the shapes and value ranges the data loader gives."""
    gen = torch.Generator().manual_seed(seed)
    size, window = config.image_size, config.audio_window

    def one_hot():
        return F.one_hot(torch.randint(0, 256, (batch, window), generator=gen), 256).float()

    return {
        "source": torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
        "motion": torch.randn(batch, config.man.motion_channels, size, size, generator=gen),
        "eyes": torch.rand(batch, 1, size, size, generator=gen),
        "parts": torch.rand(batch, 1, size, size, generator=gen),
        "mel": torch.randn(batch, window, 256, generator=gen),
        "pitch": one_hot(),
        "energy": one_hot(),
        "mfcc": torch.randn(batch, window, 13, generator=gen),
        "visemes": torch.rand(batch, window, 13, generator=gen),
    }


def small(variant=None):
    """The CPU preset at 32x32 with thin channels: fast enough to build many times."""
    overrides = {"image_size": 32, "generator": {"base_channels": 8}, "discriminator": {"n_scales": 1}}
    return model_config("cpu", variant=variant, overrides=overrides)


def branch_kind(branch):
    """The feature-network type a built branch actually is."""
    if isinstance(branch, TemporalBranch):
        return "lstm" if isinstance(branch.encoder, torch.nn.LSTM) else "conv1d"
    if isinstance(branch.shared, PartialConv2d):
        return "partial_conv2d"
    return "conv2d_eca" if isinstance(branch.attention, EfficientChannelAttention) else "conv2d"


def gan_step(generator, discriminator, cond, target):
    """One generator update against the discriminator, with the paper's generator losses."""
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.0, 0.9))
    out = generator(cond)
    fake = discriminator(out.image, cond["source"])
    real = discriminator(target, cond["source"])
    loss = (
        losses.generator_adversarial_loss(fake)
        + losses.cam_loss_generator(fake)
        + losses.feature_matching_loss(real, fake)
        + losses.reconstruction_loss(out.image, target, mouth_weight=2.0)
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_generator_and_discriminator_shapes_at_64():
    config = model_config("cpu")
    generator = MANGenerator(config.generator)
    discriminator = MultiScaleDiscriminator(config.discriminator)
    cond = conditioning(config.generator, batch=2)
    out = generator(cond)
    assert out.image.shape == (2, 3, 64, 64)
    assert out.image.abs().max() <= 1
    assert out.cam_logit.shape == (2, 2)
    assert out.attention.shape == (2, 1, 64, 64)
    scales = discriminator(out.image, cond["source"])
    assert len(scales) == config.discriminator.n_scales
    for index, scale in enumerate(scales):
        assert scale.patch.shape[:2] == (2, 1) and scale.cam_logit.shape == (2, 2)
        assert len(scale.features) == config.discriminator.n_layers + 1
        assert scale.features[0].shape[-1] == 64 // 2 ** (index + 1)
    assert scales[1].patch.shape[-1] < scales[0].patch.shape[-1]
    with pytest.raises(ValueError, match="too small"):
        discriminator(out.image[..., :16, :16], cond["source"][..., :16, :16])


def test_forward_at_256_cpu_channels_and_paper_preset():
    config = model_config("cpu", overrides={"image_size": 256})
    cond = conditioning(config.generator, batch=1)
    out = MANGenerator(config.generator)(cond)
    assert out.image.shape == (1, 3, 256, 256) and out.attention.shape == (1, 1, 256, 256)
    assert MultiScaleDiscriminator(config.discriminator)(out.image, cond["source"])[0].patch.shape[:2] == (1, 1)

    paper = model_config("paper")
    assert paper.generator.image_size == 256
    with torch.no_grad():
        cond = conditioning(paper.generator, batch=1)
        out = MANGenerator(paper.generator)(cond)
        scales = MultiScaleDiscriminator(paper.discriminator)(out.image, cond["source"])
    assert out.image.shape == (1, 3, 256, 256)
    assert len(scales) == paper.discriminator.n_scales


def test_rho_sums_to_one_and_changes_under_training():
    torch.manual_seed(0)
    config = small()
    generator = MANGenerator(config.generator)
    discriminator = MultiScaleDiscriminator(config.discriminator)
    before = rho_table(generator)
    assert len(before) >= 2 * len(config.generator.channel_multipliers)
    for weights in before.values():
        assert set(weights) == set(config.generator.man.enabled)
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
    cond = conditioning(config.generator, batch=2)
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    for _ in range(3):
        gan_step(generator, discriminator, cond, target)
    after = rho_table(generator)
    for name, weights in after.items():
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
    changes = [abs(after[n][s] - before[n][s]) for n in before for s in before[n]]
    assert max(changes) > 1e-4


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_ablation_variant_builds_runs_a_step_and_trains_every_active_branch(variant):
    torch.manual_seed(0)
    config = small(variant)
    generator = MANGenerator(config.generator)
    with torch.no_grad():
        trained_like(generator)  # the composite head's zero-initialised change passes no gradient on a first step
    discriminator = MultiScaleDiscriminator(config.discriminator)
    cond = {k: v for k, v in conditioning(config.generator, batch=2).items() if k in generator.conditioning_keys}
    loss = gan_step(generator, discriminator, cond, torch.rand(2, 3, 32, 32) * 2 - 1)
    assert torch.isfinite(loss)
    enabled = set(config.generator.man.enabled)
    for name, block in man_blocks(generator):
        assert set(block.branches) == enabled
        for source, branch in block.branches.items():
            assert branch_kind(branch) == config.generator.man.branches[source]
            for param_name, param in branch.named_parameters():
                assert param.grad is not None and param.grad.abs().sum() > 0, f"{name}.{source}.{param_name}"


def test_switching_a_source_off_changes_output_and_renormalizes_rho():
    torch.manual_seed(0)
    config = small()
    generator = MANGenerator(config.generator).eval()
    for _, block in man_blocks(generator):
        block.logits.data.normal_()
    with torch.no_grad():
        trained_like(generator)  # an untrained composite head returns the photo whatever its sources
    cond = conditioning(config.generator, batch=1)
    with torch.no_grad():
        full_output = generator(cond).image
        full_rho = rho_table(generator)
        for source in config.generator.man.enabled:
            rest = [s for s in config.generator.man.enabled if s != source]
            set_active_sources(generator, rest)
            reduced = generator(cond).image
            assert (reduced - full_output).abs().max() > 1e-4, source
            for name, weights in rho_table(generator).items():
                assert set(weights) == set(rest)
                assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
                kept = sum(full_rho[name][s] for s in rest)
                assert weights[rest[0]] == pytest.approx(full_rho[name][rest[0]] / kept, rel=1e-5)
        set_active_sources(generator, config.generator.man.enabled)
        assert torch.equal(generator(cond).image, full_output)
    with pytest.raises(ValueError, match="at least one"):
        set_active_sources(generator, [])


def test_generator_rejects_conditioning_of_the_wrong_size():
    config = small()
    generator = MANGenerator(config.generator)
    cond = conditioning(config.generator, batch=1)
    with pytest.raises(ValueError, match="mfcc"):
        generator({**cond, "mfcc": torch.randn(1, 13)})
    with pytest.raises(ValueError, match="source"):
        generator({**cond, "source": torch.randn(1, 3, 64, 64)})
    with pytest.raises(KeyError, match="pitch"):
        generator({k: v for k, v in cond.items() if k != "pitch"})


def test_the_default_adds_the_eyes_source_and_t3_all_flow_stays_the_papers_five_sources():
    default, paper = model_config("cpu").generator.man, model_config("paper", variant="t3_all_flow").generator.man
    assert default.enabled == ("image", "motion", "eyes", "mel", "pitch", "energy")
    assert model_config("cpu", variant="visemes").generator.man.enabled == (*default.enabled, "visemes")
    assert paper.enabled == ("image", "motion", "mel", "pitch", "energy") and paper.motion == "flow"
    for name in (name for name in VARIANTS if name.startswith("t3")):
        assert {"eyes", "visemes"}.isdisjoint(VARIANTS[name]["generator"]["man"]["enabled"])
    generator = MANGenerator(small().generator)
    assert "eyes" in generator.conditioning_keys
    for _, block in man_blocks(generator):
        assert block.branches["eyes"].shared.in_channels == 1
    assert "eyes" not in MANGenerator(small("t3_all_flow").generator).conditioning_keys


def test_config_presets_variants_and_errors():
    config = model_config("paper", variant="t3_no_pitch", overrides={"audio_window": 3})
    assert "pitch" not in config.generator.man.enabled
    assert config.generator.audio_window == config.keypoint.audio_window == config.flow.audio_window == 3
    heatmaps = model_config("cpu", variant="t3_all_heatmaps")
    assert heatmaps.generator.man.motion_channels == 15
    generator = MANGenerator({"image_size": 16, "seed_size": 4, "man": {"enabled": ["image", "mel"]}})
    assert generator.conditioning_keys == ("source", "mfcc", "mel", "parts")
    with pytest.raises(ValueError, match="variant"):
        model_config("cpu", variant="t9_nothing")
    with pytest.raises(ValueError, match="image_size"):
        model_config("cpu", overrides={"image_size": 48})
    with pytest.raises(ValueError, match="lstm"):
        model_config("cpu", overrides={"generator": {"man": {"branches": {"image": "lstm"}}}})
    with pytest.raises(ValueError, match="unknown setting"):
        model_config("cpu", overrides={"generator": {"base_chanels": 8}})


@pytest.mark.parametrize("size", [64, 96])
def test_predictor_output_shapes(size):
    config = model_config("cpu")
    frames = torch.rand(2, 15, size, size) * 2 - 1
    mel = torch.randn(2, config.keypoint.audio_window, 256)
    assert KeypointPredictor(config.keypoint)(frames, mel).shape == (2, 15, 96, 96)
    flow = FlowPredictor(config.flow)(frames, mel)
    assert flow.shape == (2, 2, size, size)
    with pytest.raises(ValueError, match="mel"):
        FlowPredictor(config.flow)(frames, mel[:, :2])


@pytest.mark.parametrize("kind", [KeypointPredictor, FlowPredictor])
def test_channels_last_predictor_weights_give_the_same_outputs_in_the_default_layout(kind):
    torch.manual_seed(0)
    config = model_config("cpu")
    predictor = kind(config.keypoint if kind is KeypointPredictor else config.flow).eval()
    with torch.no_grad():
        for zeros in (p for p in predictor.parameters() if not p.any()):  # the flow head starts at zero flow
            zeros.normal_(0.0, 0.1)
    frames, mel = torch.rand(1, 15, 64, 64) * 2 - 1, torch.randn(1, config.flow.audio_window, 256)
    with torch.no_grad():
        plain = predictor(frames, mel)
        fast = predictor.to(memory_format=torch.channels_last)(frames, mel)
    assert fast.is_contiguous()  # the generator's motion branches read it: channels-last slows them
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)
    assert plain.abs().max() > 1e-3  # not a trivially zero output


def test_predictors_learn_from_mse():
    torch.manual_seed(0)
    config = model_config("cpu")
    predictor = KeypointPredictor(config.keypoint)
    frames, mel = torch.rand(2, 15, 64, 64), torch.randn(2, config.keypoint.audio_window, 256)
    target = torch.zeros(2, 15, 96, 96)
    target[:, :, 40:56, 30:66] = 1.0
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-3)
    first = None
    for _ in range(5):
        loss = losses.predictor_loss(predictor(frames, mel), target)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first


def test_composite_head_starts_as_the_photo_with_a_mask_in_unit_range():
    torch.manual_seed(0)
    config = small()
    assert config.generator.output == "composite"
    generator = MANGenerator(config.generator)
    cond = conditioning(config.generator, batch=2)
    with torch.no_grad():
        out = generator(cond)
    assert out.mask.shape == (2, 1, 32, 32) and out.motion.shape == (2, 2, 32, 32)
    assert out.painted.shape == (2, 3, 32, 32)
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert torch.equal(out.motion, torch.zeros_like(out.motion))  # a zero motion field at the start
    assert torch.allclose(out.painted, cond["source"].clamp(-1, 1), atol=1e-6)  # no change painted yet
    assert torch.allclose(out.image, cond["source"], atol=1e-5)  # the start is the photo


def trained_like(generator: MANGenerator) -> None:
    """Random, non-zero weights in the composite head, as after training."""
    head = generator.composite_head
    for conv in (head.to_motion, head.to_mask, head.to_change):
        torch.nn.init.normal_(conv.weight, std=0.5)


def trained_like_generator(variant=None) -> tuple:
    """A small composite generator (seed 0) whose head has trained-like weights, and its configuration."""
    torch.manual_seed(0)
    config = small(variant)
    generator = MANGenerator(config.generator)
    with torch.no_grad():
        trained_like(generator)
    return config, generator


def test_composite_equals_the_warped_source_where_the_mask_is_zero():
    config, generator = trained_like_generator()
    with torch.no_grad():
        cond = conditioning(config.generator, batch=2)
        out = generator(cond)
        assert 0 <= out.mask.min() and out.mask.max() <= 1 and out.mask.std() > 0.01
        limit = config.generator.motion_limit * 32
        assert 0.5 < out.motion.abs().max() <= limit  # the motion moves pixels, within its tanh bound
        assert (out.motion.abs() <= out.mask * limit + 1e-6).all()  # and only as far as the mask is on
        assert (out.painted - warp(cond["source"], out.motion)).abs().max() > 0.1  # a change is painted
    # Where the mask is on, the painted pixels show; where it is off, the warped source.
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 20:, 8:24] = 1.0
    mixed = composite(out.painted, mask, warp(cond["source"], out.motion))
    assert torch.equal(mixed[..., 20:, 8:24], out.painted[..., 20:, 8:24])
    assert torch.allclose(mixed[..., :20, :], warp(cond["source"], out.motion)[..., :20, :], atol=1e-6)
    assert (mixed - cond["source"]).abs().max() > 0.1  # the warp did move the source


def test_where_the_mask_is_off_the_photo_is_kept_pixel_for_pixel():
    config, generator = trained_like_generator()
    with torch.no_grad():
        generator.composite_head.to_mask.bias.fill_(-100.0)  # the mask off everywhere (sigmoid underflows to 0)
        cond = conditioning(config.generator, batch=2)
        out = generator(cond)
    assert torch.equal(out.mask, torch.zeros_like(out.mask))
    assert torch.equal(out.motion, torch.zeros_like(out.motion))  # no sub-pixel resampling of a still photo
    assert torch.equal(warp(cond["source"], out.motion), cond["source"])  # bit for bit
    assert torch.allclose(out.image, cond["source"], atol=1e-6)


def test_the_moving_parts_cap_the_mask_and_keep_the_photo_elsewhere():
    config, generator = trained_like_generator()
    assert generator.limits_mask  # the default: mask_region "parts"
    cond = conditioning(config.generator, batch=2)
    cond["parts"] = torch.zeros(2, 1, 32, 32)
    cond["parts"][..., 18:28, 8:24] = 1.0  # a mouth
    with torch.no_grad():
        capped = generator(cond)
        free = MANGenerator(replace(config.generator, mask_region="anywhere"))
        free.load_state_dict(generator.state_dict())
        uncapped = free(cond)
    outside = cond["parts"] == 0
    assert (uncapped.mask[outside] > 0.05).any()  # free, the mask opens on the hair and the cheeks
    assert torch.equal(capped.mask[outside], torch.zeros_like(capped.mask[outside]))
    assert torch.equal(capped.image[outside.expand_as(capped.image)], cond["source"][outside.expand_as(capped.image)])
    inside = cond["parts"] == 1
    assert torch.equal(capped.mask[inside], uncapped.mask[inside])  # the parts themselves are not touched
    with pytest.raises(ValueError, match="parts"):
        generator({key: value for key, value in cond.items() if key != "parts"})
    with pytest.raises(ValueError, match="mask_region"):
        model_config("cpu", overrides={"generator": {"mask_region": "hair"}})


def test_the_viseme_source_changes_the_mouth_and_nothing_outside_the_moving_parts():
    config, generator = trained_like_generator("visemes")
    cond = conditioning(config.generator, batch=1)
    cond["parts"] = torch.zeros(1, 1, 32, 32)
    cond["parts"][..., 18:28, 8:24] = 1.0  # a mouth
    shut, wide = torch.zeros(1, 5, 13), torch.zeros(1, 5, 13)
    shut[..., 1] = 1.0  # p/b/m, openness 0
    wide[..., 9], wide[..., 12] = 1.0, 1.0  # an open vowel, openness 1
    with torch.no_grad():
        said_p, said_a = (generator({**cond, "visemes": visemes}).image for visemes in (shut, wide))
    inside = cond["parts"].expand_as(said_p) == 1
    assert (said_p - said_a)[inside].abs().max() > 0.01  # what is said reaches the mouth
    assert torch.equal(said_p[~inside], said_a[~inside])  # and nothing else
    assert torch.equal(said_p[~inside], cond["source"][~inside])
    without = MANGenerator(small().generator)
    assert "visemes" in generator.conditioning_keys and "visemes" not in without.conditioning_keys
    with pytest.raises(KeyError, match="visemes"):
        generator({key: value for key, value in cond.items() if key != "visemes"})


def test_direct_head_paints_every_pixel_and_is_chosen_by_model_output():
    config = model_config("cpu", overrides={"image_size": 32, "output": "direct", "generator": {"base_channels": 8}})
    assert config.generator.output == "direct"
    generator = MANGenerator(config.generator)
    assert not hasattr(generator, "composite_head")
    with torch.no_grad():
        out = generator(conditioning(config.generator, batch=1))
    assert torch.equal(out.image, out.painted) and torch.equal(out.mask, torch.ones_like(out.mask))
    assert torch.equal(out.motion, torch.zeros_like(out.motion))
    with pytest.raises(ValueError, match="output"):
        model_config("cpu", overrides={"output": "blend"})


def test_mask_losses_prefer_a_small_smooth_mask():
    small_blob, big_blob = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    small_blob[..., 10:14, 5:11] = 1.0
    big_blob[..., 4:14, 2:14] = 1.0
    assert losses.mask_sparsity_loss(small_blob) < losses.mask_sparsity_loss(big_blob)
    assert losses.mask_sparsity_loss(big_blob, free=big_blob) == 0  # free on the moving parts (features.parts)
    assert losses.mask_sparsity_loss(big_blob, free=small_blob) < losses.mask_sparsity_loss(big_blob)
    assert losses.motion_magnitude_loss(torch.full((1, 2, 8, 8), -1.5)) == 1.5  # mean |shift| in pixels
    speckle = (torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    assert losses.mask_smoothness_loss(small_blob) < losses.mask_smoothness_loss(speckle) / 3
    assert losses.mask_smoothness_loss(torch.full((1, 1, 16, 16), 0.3)) == 0


def test_mouth_motion_loss_is_zero_for_the_warp_that_moves_the_lips_into_place():
    # A lip point at pixel (9, 5) in the source is at (9, 7) in the frame: the backward warp that draws it
    # there reads the source 2 pixels up (-2 in y) at the frame's point.
    size = 16
    source = torch.zeros(1, 1, size, size)
    source[..., 5, 9] = 1.0
    to_units = lambda xy: (2 * torch.tensor(xy, dtype=torch.float32) + 1) / size - 1  # grid_sample units
    points = to_units([[9.0, 7.0]])[None]  # [B, P, 2]
    shifts = (2 * torch.tensor([[[0.0, -2.0]]]) / size)  # displacements in grid_sample units
    right = torch.zeros(1, 2, size, size)
    right[:, 1] = -2.0
    assert warp(source, right)[0, 0, 7, 9] == 1.0
    assert losses.mouth_motion_loss(right, points, shifts) == 0
    wrong = torch.zeros(1, 2, size, size)  # the photo's mouth left as it is
    assert losses.mouth_motion_loss(wrong, points, shifts) == pytest.approx(1.0)  # (|0| + |2|) / 2 pixels


def test_warp_zero_flow_is_identity_and_constant_flow_shifts():
    image = torch.rand(2, 3, 20, 24)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 20, 24)), image, atol=1e-5)
    flow = torch.zeros(2, 2, 20, 24)
    flow[:, 0], flow[:, 1] = 3.0, -2.0
    shifted = warp(image, flow)
    # out(y, x) = image(y - 2, x + 3) wherever that lies inside the image
    assert torch.allclose(shifted[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)


def test_flow_reconstruction_loss_prefers_the_true_flow():
    previous = F.avg_pool2d(torch.rand(1, 3, 36, 36), 3, stride=1, padding=1)
    following = torch.roll(previous, shifts=2, dims=-1)  # content moved 2 px right: flow (2, 0)
    flow = torch.zeros(1, 2, 36, 36)
    flow[:, 0] = 2.0
    true_loss = losses.flow_reconstruction_loss(previous, following, flow)
    assert true_loss < losses.flow_reconstruction_loss(previous, following, torch.zeros_like(flow)) / 5


def test_reconstruction_loss_weights_the_lower_half():
    target = torch.zeros(1, 3, 8, 8)
    upper, lower = target.clone(), target.clone()
    upper[..., :4, :] = 1.0
    lower[..., 4:, :] = 1.0
    assert losses.reconstruction_loss(upper, target, 5.0) == losses.reconstruction_loss(upper, target, 0.0)
    assert losses.reconstruction_loss(lower, target, 5.0) > losses.reconstruction_loss(lower, target, 0.0)


def test_adversarial_and_cam_losses_reward_a_correct_discriminator():
    torch.manual_seed(0)
    discriminator = MultiScaleDiscriminator({"n_scales": 2, "n_layers": 2, "base_channels": 8})
    source = torch.rand(2, 3, 32, 32)
    real, fake = discriminator(source, source), discriminator(torch.zeros_like(source), source)
    for mode in losses.ADVERSARIAL_MODES:
        right = losses.discriminator_adversarial_loss(real, fake, mode)
        wrong = losses.discriminator_adversarial_loss(fake, real, mode)
        assert torch.isfinite(right) and torch.isfinite(wrong)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.0, 0.9))
    start = None
    for _ in range(5):
        real, fake = discriminator(source, source), discriminator(torch.zeros_like(source), source)
        loss = losses.discriminator_adversarial_loss(real, fake) + losses.cam_loss_discriminator(real, fake)
        start = start if start is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < start
    with pytest.raises(ValueError, match="mode"):
        losses.generator_adversarial_loss(fake, mode="wgan")


def test_cam_layer_shapes():
    features, logit, attention = CAMLayer(8)(torch.randn(2, 8, 5, 7))
    assert features.shape == (2, 8, 5, 7) and logit.shape == (2, 2) and attention.shape == (2, 1, 5, 7)


def test_partial_conv_ignores_pixels_outside_the_mask():
    conv = PartialConv2d(3, 4, 3, padding=1)
    mask = torch.ones(1, 1, 10, 10)
    mask[..., :, 5:] = 0
    x = torch.randn(1, 3, 10, 10)
    other = x.clone()
    other[..., :, 5:] = torch.randn(1, 3, 10, 5)
    out, new_mask = conv(x, mask)
    assert torch.equal(out, conv(other, mask)[0])
    assert new_mask[..., :, :6].all() and not new_mask[..., :, 6:].any()


def test_perceptual_loss_is_off_with_a_warning_without_weights(tmp_path, caplog):
    image = torch.rand(1, 3, 32, 32)
    with caplog.at_level(logging.WARNING):
        loss = losses.PerceptualLoss(None)
        missing = losses.PerceptualLoss(tmp_path / "vgg19.pth")
    assert not loss.enabled and not missing.enabled
    assert "perceptual loss is off" in caplog.text and "vgg19.pth" in caplog.text
    assert loss(image, torch.zeros_like(image)).item() == 0.0


def test_perceptual_loss_with_a_saved_state_dict(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vgg19.pth"
    state = {f"features.{k}": v for k, v in losses._vgg19_features().state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full VGG19 state_dict also has the classifier
    torch.save(state, path)
    perceptual = losses.PerceptualLoss(path)
    assert perceptual.enabled
    image = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    target = torch.rand(1, 3, 32, 32) * 2 - 1
    assert perceptual(target, target).item() == 0.0
    loss = perceptual(image, target)
    loss.backward()
    assert loss.item() > 0 and image.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in perceptual.parameters())

    broken = tmp_path / "broken.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, broken)
    with pytest.raises(ValueError, match="broken.pth"):
        losses.PerceptualLoss(broken)
