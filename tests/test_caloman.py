"""CaloMan: the autoencoder learns to reconstruct; the flow stage starts from it, keeps it frozen, and samples."""

from __future__ import annotations

import pytest
import torch

from caloforge.contract import build_model, from_dict, save_checkpoint, shippable
from caloforge.errors import CaloforgeError
from caloforge.evaluate.features import alpha_layers, compute_features
from caloforge.models import get_family
from caloforge.models.caloman.autoencoder import (
    drawn_square_sums,
    layer_moments,
    population_widths,
    share_divergence,
)
from caloforge.models.flows import shares, shower_condition
from caloforge.train import load_checkpoint, load_model, run_config_from_dict, train

TINY = {"latent": 4, "encoder": [64, 64], "decoder": [64, 64], "flow_transforms": 2, "flow_hidden": [32, 32],
        "layer_transforms": 2, "layer_hidden": [16]}
TRAIN = {"epochs": 1, "max_steps": 2, "batch_size": 64, "warmup_steps": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def coarse(rebinned_sample):
    """300 bundled Par04 showers rebinned to par04-coarse: (geometry, energies, showers, file)."""
    return rebinned_sample(300)


def test_layer_moments_are_the_evaluation_centres_and_widths(coarse):
    """The autoencoder's shape term uses the same centres and widths as ``caloforge evaluate``."""
    geometry, energies, showers, _ = coarse
    model = get_family("caloman").build(from_dict(get_family("caloman").config, TINY, "test"), geometry,
                                        get_family("caloman").fit(from_dict(get_family("caloman").config, TINY, "t"),
                                                                  geometry, energies, showers))
    clean = model.coding.cut(showers).double()
    moments = layer_moments(shares(clean, model.coding.layer_energies(clean), model.coding.voxel_layer),
                            model.positions.double(), model.coding.voxel_layer, geometry.n_layers)
    features = compute_features(geometry, [(energies.numpy(), clean.numpy())], model.coding.threshold)
    layers = alpha_layers(geometry)
    for column, name in enumerate(("ec_eta", "ec_phi", "width_eta", "width_phi")):
        assert torch.allclose(moments[:, layers, column], torch.from_numpy(getattr(features, name)).double(), atol=1e-3)


def test_population_widths_undo_the_narrowing_of_few_hits():
    """Hits drawn from a distribution of variance s^2 show on average s^2 (1 - sum w^2); fitted to the measured
    widths, the decoder's shares would be narrowed twice. Two equal hits: width times sqrt 2; one hit: kept."""
    positions = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    voxel_layer = torch.tensor([0, 0, 1, 1])
    two_hits = torch.tensor([[0.5, 0.5, 1.0, 0.0]])
    moments = layer_moments(two_hits, positions, voxel_layer, 2)
    widened = population_widths(moments, two_hits, voxel_layer, 2)
    assert torch.allclose(widened[0, 0], torch.tensor([0.0, 0.0, 2 ** 0.5, 0.0]), atol=2e-3)
    assert torch.equal(widened[0, 1], moments[0, 1]), "one hit: no spread to estimate"
    # many hits drawn from a fixed distribution: the widened width estimates its width without bias
    generator = torch.Generator().manual_seed(0)
    grid = torch.linspace(-3, 3, 601)  # fine enough that two hits rarely share a voxel
    density = torch.exp(-grid.square() / 2)
    exact = (density / density.sum() * grid.square()).sum().sqrt()
    draws = torch.multinomial(density.expand(4000, -1), 8, replacement=True, generator=generator)
    hits = torch.zeros(4000, 601).scatter_add_(1, draws, torch.full((4000, 8), 1 / 8))
    line = torch.stack([grid, torch.zeros_like(grid)], 1)
    measured = layer_moments(hits, line, torch.zeros(601, dtype=torch.long), 1)
    unbiased = population_widths(measured, hits, torch.zeros(601, dtype=torch.long), 1)
    assert measured[:, 0, 2].square().mean() < 0.92 * exact ** 2
    assert torch.isclose(unbiased[:, 0, 2].square().mean(), exact ** 2, rtol=0.03)


@pytest.mark.parametrize("hit_shape", [None, 1, 3])
def test_drawn_square_sums_predict_the_narrowing_of_the_drawn_hits(hit_shape):
    """The expected sum w^2 of hits drawn as ``decode_cut`` draws them (each voxel hit with p, holding share / p or
    the threshold plus a gamma excess of shape k) agrees with a direct draw; scattered energies narrow more, the
    more the smaller k."""
    generator = torch.Generator().manual_seed(0)
    shares = torch.rand(1, 40, generator=generator)
    shares = shares / shares.sum()
    probabilities = 0.5 + 0.5 * torch.rand(1, 40, generator=generator)
    thresholds = torch.full((1, 40), 0.002)
    voxel_layer = torch.zeros(40, dtype=torch.long)
    predicted = drawn_square_sums(shares, probabilities, thresholds, hit_shape, voxel_layer, 1)
    hit = torch.rand(50_000, 40, generator=generator) < probabilities
    mean = shares / probabilities
    if hit_shape is None:
        energy = mean.expand(50_000, -1)
    else:
        draws = -torch.rand(hit_shape, 50_000, 40, generator=generator).log().mean(0)
        energy = thresholds + (mean - thresholds) * draws
    weights = torch.where(hit, energy, 0.0)
    weights = weights / weights.sum(1, keepdim=True)
    drawn = weights.square().sum(1).mean()
    assert torch.isclose(predicted[0, 0], drawn, rtol=0.05)
    if hit_shape is not None:
        expected = drawn_square_sums(shares, probabilities, thresholds, None, voxel_layer, 1)[0, 0]
        exponential = drawn_square_sums(shares, probabilities, thresholds, 1, voxel_layer, 1)[0, 0]
        assert expected < predicted[0, 0] <= exponential and exponential > 1.5 * expected


def test_config_refuses_drawn_widths_without_a_hit_draw_to_widen_for():
    family = get_family("caloman")
    with pytest.raises(CaloforgeError, match="drawn_widths: needs hits and population_widths"):
        from_dict(family.config, {**TINY, "drawn_widths": True, "population_widths": True}, "test")
    with pytest.raises(CaloforgeError, match="latent_model 'diffusion'"):
        from_dict(family.config, {**TINY, "latent_model": "diffusion"}, "test")
    assert from_dict(family.config, {**TINY, "drawn_widths": True, "population_widths": True, "hits": True},
                     "test").drawn_widths
    with pytest.raises(CaloforgeError, match="drawn_moments: needs hits, and replaces population_widths"):
        from_dict(family.config, {**TINY, "hits": True, "drawn_moments": True, "population_widths": True}, "test")
    with pytest.raises(CaloforgeError, match="counted_hits: needs hits"):
        from_dict(family.config, {**TINY, "counted_hits": True}, "test")
    deposits = {**TINY, "hits": True, "hit_energy": "deposits"}
    with pytest.raises(CaloforgeError, match="'deposits' and drawn_widths"):
        from_dict(family.config, {**deposits, "drawn_widths": True, "population_widths": True}, "test")
    with pytest.raises(CaloforgeError, match="hit_deposit -1"):
        from_dict(family.config, {**deposits, "hit_deposit": -1}, "test")
    config = from_dict(family.config, {**deposits, "hit_deposit": 12.0}, "test")
    assert (config.hit_shape_k, config.hit_deposit_mev) == (1, 12.0)
    assert from_dict(family.config, {**TINY, "hits": True, "hit_energy": "gamma"}, "test").hit_deposit_mev is None


@pytest.mark.parametrize("hit_energy", ["exponential", "deposits"])
def test_drawn_moments_pass_those_of_a_drawn_shower_straight_through_to_the_shares(coarse, hit_energy):
    """The moment term's value is that of the showers sampling would draw (the hit counts from the fitted law, the
    hit energies from the config's law), its gradient that of the decoder's shares: it vanishes when the drawn
    moments meet Geant4's on average."""
    geometry, energies, showers, _ = coarse
    family = get_family("caloman")
    config = from_dict(family.config, {**TINY, "hits": True, "moment_weight": 1.0, "drawn_moments": True,
                                       "counted_hits": True, "hit_energy": hit_energy}, "test")
    model = family.build(config, geometry, family.fit(config, geometry, energies, showers))
    energies, showers = energies[:32], showers[:32]
    clean, layers = model.coding.cut(showers), model.coding.noisy_layer_energies(showers)
    context = shower_condition(energies, layers)
    with torch.no_grad():
        y = model.coding.encode(clean, model.coding.layer_energies(clean))
        _, hit_logits = model.autoencoder.decode(model.autoencoder.encode(y, context), context)
    decoder_shares = model.coding.layer_shares(y).requires_grad_()
    torch.manual_seed(0)
    through, filled = model.drawn_moments_through(model.moments(decoder_shares), y, hit_logits, layers, energies)
    torch.manual_seed(0)
    drawn = model.drawn_showers(y, hit_logits, layers, energies)
    drawn_moments = model.moments(shares(drawn, model.coding.layer_energies(drawn), model.coding.voxel_layer))
    assert filled.float().mean() > 0.5 and torch.allclose(through[filled], drawn_moments[filled], atol=1e-4)
    assert not torch.allclose(through[filled], model.moments(decoder_shares)[filled])
    (gradient,) = torch.autograd.grad(through.sum(), decoder_shares)
    (expected,) = torch.autograd.grad(model.moments(decoder_shares).sum(), decoder_shares)
    assert torch.equal(gradient, expected)


def test_autoencoder_reconstructs_better_after_a_few_steps(coarse):
    geometry, energies, showers, _ = coarse
    family = get_family("caloman")
    config = from_dict(family.config, TINY, "test")
    torch.manual_seed(0)
    model = family.build(config, geometry, family.fit(config, geometry, energies, showers))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    clean = model.coding.cut(showers[:128])
    layers = model.coding.layer_energies(clean)
    y, context = model.coding.encode(clean, layers), shower_condition(energies[:128], layers)
    target = shares(clean, layers, model.coding.voxel_layer)

    def errors() -> tuple[float, float]:
        """(squared error of the logit shares, divergence of the energy shares)"""
        with torch.no_grad():
            reconstruction, _ = model.autoencoder.decode(model.autoencoder.encode(y, context), context)
            return (float((reconstruction - y).square().mean()),
                    float(share_divergence(target, model.coding.layer_shares(reconstruction))))

    before = errors()
    for _ in range(30):
        optimizer.zero_grad()
        model(energies[:128], showers[:128]).backward()
        optimizer.step()
    after = errors()
    weighted = [error + config.share_weight * divergence for error, divergence in (before, after)]
    assert after[1] < 0.6 * before[1] and weighted[1] < 0.7 * weighted[0]


def test_flow_stage_starts_from_the_frozen_autoencoder_and_samples(coarse, tmp_path):
    geometry, energies, _, data = coarse
    torch.manual_seed(0)
    run = {"family": "caloman", "geometry": "par04-coarse", "data": {"train": data}, "train": TRAIN}
    autoencoder = train(run_config_from_dict({**run, "model": TINY}), tmp_path / "ae", progress=False)
    with pytest.raises(CaloforgeError, match="autoencoder-stage"):
        load_model(autoencoder)[0].sample(energies[:4])
    final = train(run_config_from_dict({**run, "model": {**TINY, "stage": "flow"},
                                        "train": {**TRAIN, "init_from": str(autoencoder)}}), tmp_path / "flow",
                  progress=False)
    before, after = load_checkpoint(autoencoder).model, load_checkpoint(final).model
    assert all(torch.equal(before[key], after[key]) for key in before if key.startswith("autoencoder."))
    assert not any(key.startswith(("latent_flow.", "layer_flow.")) for key in before), "flows: flow stage only"
    assert any(key.startswith("latent_flow.") for key in after) and any(k.startswith("layer_flow.") for k in after)
    model, _ = load_model(final)
    with torch.no_grad():
        showers = model.sample(energies[:50], torch.Generator().manual_seed(0))
    assert showers.shape == (50, geometry.n_voxels) and torch.isfinite(showers).all() and (showers >= 0).all()
    # shipped, the flow stage leaves its encoder behind (sampling decodes latent points) and samples the same;
    # the autoencoder stage keeps it (the flow stage starts from it)
    shipped = shippable(load_checkpoint(final))
    assert not any(key.startswith("autoencoder.encoder.") for key in shipped.model)
    assert any(key.startswith("autoencoder.encoder.") for key in shippable(load_checkpoint(autoencoder)).model)
    with torch.no_grad():
        again = build_model(shipped).sample(energies[:50], torch.Generator().manual_seed(0))
    assert torch.equal(showers, again)


@pytest.fixture(scope="module")
def flow_run(coarse, tmp_path_factory):
    """A tiny flow-stage run (step 2) on its autoencoder-stage run (step 1): the start of the optional stages."""
    *_, data = coarse
    folder = tmp_path_factory.mktemp("caloman")
    torch.manual_seed(0)
    run = {"family": "caloman", "geometry": "par04-coarse", "data": {"train": data}, "train": TRAIN}
    autoencoder = train(run_config_from_dict({**run, "model": TINY}), folder / "ae", progress=False)
    return train(run_config_from_dict({**run, "model": {**TINY, "stage": "flow"},
                                       "train": {**TRAIN, "init_from": str(autoencoder)}}), folder / "flow",
                 progress=False)


def test_zero_epochs_reissue_the_starting_weights_under_a_new_sampling_law(coarse, flow_run, tmp_path):
    """``train.epochs: 0``: model.pt holds init_from's weights as they were, under the run's config (here CaloMan's
    hit-energy law); without init_from there is nothing to re-issue."""
    *_, data = coarse
    run = {"family": "caloman", "geometry": "par04-coarse", "data": {"train": data},
           "model": {**TINY, "stage": "flow", "hit_energy": "deposits", "hit_deposit": 9.0}}
    path = train(run_config_from_dict({**run, "train": {**TRAIN, "epochs": 0, "init_from": str(flow_run)}}),
                 tmp_path / "zero", progress=False)
    (model, _), (start, _) = load_model(path), load_model(flow_run)
    assert model.hit_deposit == 9.0 and start.hit_deposit is None
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), start.state_dict().values()))
    with pytest.raises(CaloforgeError, match="epochs 0 re-issues"):
        train(run_config_from_dict({**run, "train": {**TRAIN, "epochs": 0}}), tmp_path / "none", progress=False)


def stage_run(data, model: dict, init_from, steps: int, folder):
    """A tiny run of an optional stage (``model["stage"]``) from ``init_from``: ``steps`` steps at lr 3e-3, without
    weight averaging, so that a few steps show."""
    torch.manual_seed(0)
    config = run_config_from_dict({"family": "caloman", "geometry": "par04-coarse", "data": {"train": data},
                                   "model": model, "train": {**TRAIN, "epochs": 50, "max_steps": steps, "lr": 3e-3,
                                                             "ema_decay": 0.0, "init_from": str(init_from)}})
    return train(config, folder / f"{model['stage']}-{steps}", progress=False)


def training_loss(path, energies, showers) -> float:
    """The loss a checkpoint's stage trains by, on the given showers (noise drawn from a fixed seed)."""
    model, _ = load_model(path)
    torch.manual_seed(1)
    with torch.no_grad():
        return float(model(energies, showers))


def test_latent_stage_learns_a_flowmatch_latent_model_alone_and_samples_reproducibly(coarse, flow_run, tmp_path):
    """``latent_model: flowmatch`` replaces the coupling flow by a velocity network; the latent stage trains it
    alone on the frozen latent of a flow-stage run (its flow-matching loss falls, nothing else moves), and sampling
    integrates it, the same for the same seed."""
    geometry, energies, showers, data = coarse
    model_config = {**TINY, "stage": "latent", "latent_model": "flowmatch", "match_width": 32, "match_depth": 2,
                    "match_steps": 3}

    def latent_loss(path) -> float:
        model, _ = load_model(path)
        coding = model.coding
        clean = coding.cut(showers[:256])
        layers = coding.layer_energies(clean)
        context = shower_condition(energies[:256], layers)
        torch.manual_seed(1)
        with torch.no_grad():
            z = model.autoencoder.encode(coding.encode(clean, layers), context)
            return float(sum(model.latent_flow.loss(z, context) for _ in range(20)) / 20)

    untrained, trained = (stage_run(data, model_config, flow_run, steps, tmp_path) for steps in (1, 80))
    assert latent_loss(trained) < 0.8 * latent_loss(untrained)
    before, after = load_checkpoint(flow_run).model, load_checkpoint(trained).model
    assert all(torch.equal(before[key], after[key]) for key in after if not key.startswith("latent_flow."))
    assert not any(key.startswith("latent_flow.blocks.") for key in after), "no coupling flow"
    model, _ = load_model(trained)
    with torch.no_grad():
        drawn = model.sample(energies[:30], torch.Generator().manual_seed(0))
        again = model.sample(energies[:30], torch.Generator().manual_seed(0))
        other = model.sample(energies[:30], torch.Generator().manual_seed(1))
    assert drawn.shape == (30, geometry.n_voxels) and torch.isfinite(drawn).all() and (drawn >= 0).all()
    assert torch.equal(drawn, again) and not torch.equal(drawn, other)
    # its ODE solver is a sampling option (caloforge generate --sampler/--steps); a coupling flow takes none
    with torch.no_grad():
        euler = model.sample(energies[:30], torch.Generator().manual_seed(0), sampler="ddim", steps=2)
    assert torch.isfinite(euler).all() and not torch.equal(drawn, euler)
    with pytest.raises(CaloforgeError, match="takes no sampling options"):
        load_model(flow_run)[0].sample(energies[:4], steps=2)


def test_layers_stage_trains_flow_1_alone(coarse, flow_run, tmp_path):
    """The layers stage trains flow 1 on from a flow-stage run: its NLL of Geant4's layer energies falls, and no
    other weight moves (the latent density and the decoder learnt on Geant4's layer energies stay valid)."""
    geometry, energies, showers, data = coarse
    untrained, trained = (stage_run(data, {**TINY, "stage": "layers"}, flow_run, steps, tmp_path) for steps in (1, 60))
    nll = [training_loss(path, energies[:256], showers[:256]) for path in (untrained, trained)]
    assert nll[1] < nll[0] - 0.05
    before, after = load_checkpoint(flow_run).model, load_checkpoint(trained).model
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith("layer_flow.") for key in changed)
    with torch.no_grad():
        drawn = load_model(trained)[0].sample(energies[:20], torch.Generator().manual_seed(0))
    assert drawn.shape == (20, geometry.n_voxels) and torch.isfinite(drawn).all() and (drawn >= 0).all()


def test_layers_stage_replaces_flow_1_by_a_flow_matcher(coarse, flow_run, tmp_path):
    """``layer_model: flowmatch``: the layers stage trains a velocity network for the layer energies anew in place
    of a flow-stage run's MAF (its flow-matching loss falls, nothing outside flow 1 moves), and sampling integrates
    its ODE, the same for the same seed. Its student stage has no MAF blocks to distil and is refused."""
    geometry, energies, showers, data = coarse
    model = {**TINY, "stage": "layers", "layer_model": "flowmatch", "layer_width": 32, "layer_depth": 2,
             "layer_steps": 3}
    untrained, trained = (stage_run(data, model, flow_run, steps, tmp_path) for steps in (1, 60))
    losses = [training_loss(path, energies[:256], showers[:256]) for path in (untrained, trained)]
    assert losses[1] < losses[0] - 0.05
    before, after = load_checkpoint(flow_run).model, load_checkpoint(trained).model
    assert any(key.startswith("layer_flow.network.") for key in after)
    assert not any(key.startswith("layer_flow.flow.") for key in after)
    assert all(torch.equal(before[key], tensor) for key, tensor in after.items() if not key.startswith("layer_flow."))
    sampler, _ = load_model(trained)
    with torch.no_grad():
        layers = sampler.sample_layers(energies[:20], torch.Generator().manual_seed(0))
        drawn = sampler.sample(energies[:20], torch.Generator().manual_seed(0))
        again = sampler.sample(energies[:20], torch.Generator().manual_seed(0))
    assert layers.shape == (20, geometry.n_layers) and torch.isfinite(layers).all() and (layers >= 0).all()
    assert drawn.shape == (20, geometry.n_voxels) and torch.isfinite(drawn).all() and torch.equal(drawn, again)
    with pytest.raises(CaloforgeError, match="needs layer_model 'flow'"):
        from_dict(get_family("caloman").config, {**model, "stage": "student"}, "test")
    with pytest.raises(CaloforgeError, match="layer_model 'coupling'"):
        from_dict(get_family("caloman").config, {**TINY, "layer_model": "coupling"}, "test")


def test_decoder_stage_trains_the_decoder_alone_on_the_frozen_latent(coarse, flow_run, tmp_path):
    geometry, energies, _, data = coarse
    flow = flow_run
    run = {"family": "caloman", "geometry": "par04-coarse", "data": {"train": data}, "train": TRAIN}
    decoder = train(run_config_from_dict({**run, "model": {**TINY, "stage": "decoder"},
                                          "train": {**TRAIN, "max_steps": 5, "init_from": str(flow)}}),
                    tmp_path / "decoder", progress=False)
    before, after = load_checkpoint(flow).model, load_checkpoint(decoder).model
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith("autoencoder.decoder.") for key in changed)
    with torch.no_grad():
        showers = load_model(decoder)[0].sample(energies[:20], torch.Generator().manual_seed(0))
    assert showers.shape == (20, geometry.n_voxels) and torch.isfinite(showers).all()
    # a student started from both runs (train.init_from, a list: the later overrides) works with the new decoder
    student = train(run_config_from_dict({**run, "model": {**TINY, "stage": "student"},
                                          "train": {**TRAIN, "init_from": [str(flow), str(decoder)]}}),
                    tmp_path / "student", progress=False)
    student_weights = load_checkpoint(student).model
    assert all(torch.equal(student_weights[key], after[key]) for key in changed)


def test_encoder_stage_learns_an_encoder_back_for_a_shipped_file(coarse, tmp_path):
    """A shipped flow-stage file has no encoder; the encoder stage learns one against its frozen decoder, changes
    nothing else, so the file samples as before, and reconstructs most of the way back to the original encoder."""
    geometry, energies, showers, data = coarse
    run = {"family": "caloman", "geometry": "par04-coarse", "data": {"train": data}}
    fast = {**TRAIN, "epochs": 20, "lr": 3e-3, "ema_decay": 0.0}
    torch.manual_seed(0)
    autoencoder = train(run_config_from_dict({**run, "model": TINY, "train": {**fast, "max_steps": 80}}),
                        tmp_path / "ae", progress=False)
    flow = train(run_config_from_dict({**run, "model": {**TINY, "stage": "flow"},
                                       "train": {**TRAIN, "init_from": str(autoencoder)}}), tmp_path / "flow",
                 progress=False)
    shipped = tmp_path / "shipped.pt"
    save_checkpoint(shipped, shippable(load_checkpoint(flow)))
    assert not any(key.startswith("autoencoder.encoder.") for key in load_checkpoint(shipped).model)

    def encoder_run(steps: int):
        torch.manual_seed(1)
        config = run_config_from_dict({**run, "model": {**TINY, "stage": "encoder"},
                                       "train": {**fast, "max_steps": steps, "init_from": str(shipped)}})
        return train(config, tmp_path / f"encoder-{steps}", progress=False)

    def reconstruction_error(path) -> float:
        """The autoencoder's loss less its latent penalty, on 128 showers."""
        model, _ = load_model(path)
        coding, autoencoder = model.coding, model.autoencoder
        clean = coding.cut(showers[:128])
        layers = coding.layer_energies(clean)
        y, context = coding.encode(clean, layers), shower_condition(energies[:128], layers)
        with torch.no_grad():
            reconstruction, _ = autoencoder.decode(autoencoder.encode(y, context), context)
            divergence = share_divergence(shares(clean, layers, coding.voxel_layer), coding.layer_shares(reconstruction))
            return float((reconstruction - y).square().mean() + model.share_weight * divergence)

    learnt_run = encoder_run(80)
    original, untrained, learnt = (reconstruction_error(path) for path in (flow, encoder_run(1), learnt_run))
    assert learnt < untrained - 0.5 * (untrained - original)
    # against the shipped file's weights: it ships masked weights packed, so their masked-out entries read zero
    before, after = load_model(shipped)[0].state_dict(), load_checkpoint(learnt_run).model
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith("autoencoder.encoder.") for key in changed)
    with torch.no_grad():
        drawn = load_model(learnt_run)[0].sample(energies[:20], torch.Generator().manual_seed(0))
        again = load_model(shipped)[0].sample(energies[:20], torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)


def test_student_stage_distils_flow_1_alone_and_ships_without_its_teacher(coarse, flow_run, tmp_path):
    geometry, energies, showers, data = coarse
    flow = flow_run
    first, trained = (stage_run(data, {**TINY, "stage": "student"}, flow, steps, tmp_path) for steps in (1, 40))
    loss = [training_loss(path, energies[:128], showers[:128]) for path in (first, trained)]
    assert loss[1] < 0.5 * loss[0]
    before, after = load_checkpoint(flow).model, load_checkpoint(trained).model
    assert all(torch.equal(before[key], after[key]) for key in before), "only the student learns"
    shipped = shippable(load_checkpoint(trained))
    assert any(key.startswith("layer_student.") for key in shipped.model)
    assert not any(key.startswith(("layer_flow.flow.", "autoencoder.encoder.")) for key in shipped.model)
    model, _ = load_model(trained)
    with torch.no_grad():
        drawn = model.sample(energies[:50], torch.Generator().manual_seed(0))
        again = build_model(shipped).sample(energies[:50], torch.Generator().manual_seed(0))
    assert drawn.shape == (50, geometry.n_voxels) and torch.isfinite(drawn).all() and torch.equal(drawn, again)

    # shipped beside the flow-stage file, the student stores only what it learnt and reads the rest from that file
    folder = tmp_path / "shipped"
    folder.mkdir()
    save_checkpoint(folder / "flow.pt", shippable(load_checkpoint(flow)))
    save_checkpoint(folder / "student.pt", shippable(load_checkpoint(trained), base=folder / "flow.pt"))
    own = torch.load(folder / "student.pt", weights_only=True)["model"]
    assert own and all(key.startswith(("layer_student.", "layer_flow.")) for key in own)
    assert set(own) < set(shipped.model)
    with torch.no_grad():
        beside = load_model(folder / "student.pt")[0].sample(energies[:50], torch.Generator().manual_seed(0))
    assert torch.equal(drawn, beside)
    moved = tmp_path / "moved.pt"
    (folder / "student.pt").rename(moved)
    with pytest.raises(CaloforgeError, match="flow.pt, which must sit beside it"):
        load_checkpoint(moved)
    moved.rename(folder / "student.pt")
    save_checkpoint(folder / "flow.pt", shippable(load_checkpoint(flow), half=True))
    with pytest.raises(CaloforgeError, match="not the file it was exported against"):
        load_checkpoint(folder / "student.pt")

    # a base whose flow 1 changed kind (a flow matcher, stage layers) still serves it: the base's weights the
    # student has no place for are not read
    matcher = stage_run(data, {**TINY, "stage": "layers", "layer_model": "flowmatch", "layer_width": 32,
                               "layer_depth": 2}, flow, 1, tmp_path)
    save_checkpoint(folder / "matcher.pt", shippable(load_checkpoint(matcher)))
    save_checkpoint(folder / "student.pt", shippable(load_checkpoint(trained), base=folder / "matcher.pt"))
    assert not any(key.startswith("layer_flow.network.") for key in load_checkpoint(folder / "student.pt").model)
    with torch.no_grad():
        on_matcher = load_model(folder / "student.pt")[0].sample(energies[:50], torch.Generator().manual_seed(0))
    assert torch.equal(drawn, on_matcher)


def test_hit_head_is_fitted_and_decides_which_voxels_are_lit(coarse):
    geometry, energies, showers, _ = coarse
    family = get_family("caloman")
    config = from_dict(family.config, {**TINY, "hits": True}, "test")
    fitted = family.fit(config, geometry, energies, showers)
    torch.manual_seed(0)
    model = family.build(config, geometry, fitted)
    model(energies[:64], showers[:64]).backward()
    last = model.autoencoder.decoder[-1]
    assert last.bias.grad[geometry.n_voxels:].abs().sum() > 0, "the hit logits are fitted"

    sampler = family.build(from_dict(family.config, {**TINY, "hits": True, "stage": "flow"}, "test"), geometry, fitted)
    sampler.load_state_dict(model.state_dict(), strict=False)  # the autoencoder; the flows are the sampler's own
    allowed = torch.arange(geometry.n_voxels) % 2 == 0
    with torch.no_grad():  # every other voxel is hit for sure, the rest never
        sampler.autoencoder.decoder[-1].bias[geometry.n_voxels:] = torch.where(allowed, 50.0, -50.0)
        lit = sampler.sample(energies[:20], torch.Generator().manual_seed(0)) > 0
    drawn_layers = sampler.coding.layer_energies((lit & allowed).float()) > 0
    refused_lit = sampler.coding.layer_energies((lit & ~allowed).float()) > 0
    assert drawn_layers.float().mean() > 0.5
    assert not (refused_lit & drawn_layers).any(), "where drawn hits pass the threshold, only they are lit"
    with torch.no_grad():
        sampler.autoencoder.decoder[-1].bias[geometry.n_voxels:] = -50.0
        refused = sampler.sample(energies[:20], torch.Generator().manual_seed(0))
    assert (sampler.coding.layer_energies(refused) > 0).float().mean() > 0.5, \
        "a layer none of whose drawn hits passes the threshold keeps its expected shares, not nothing"
