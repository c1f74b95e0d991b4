"""The HSF model: generated weights of the target's shapes, a torchsde latent SDE, an nflows flow,
and clear errors before anything is learned or for a wrong input size."""

import pytest
import torch
from nflows.flows import Flow

from avalanche_hsf.models import hsf_model
from avalanche_hsf.models.hsf import HSFTarget
from tests.helpers import tiny_hsf_model as make_model


def test_generated_parameters_match_the_target():
    model = make_model()
    model.add_task(0)
    params = model.hnet.unflatten(model.generate(0))
    assert {n: p.shape for n, p in params.items()} == {n: p.shape for n, p in model.target.named_parameters()}
    assert model.compression_ratio == pytest.approx(
        sum(p.numel() for p in model.hnet.parameters()) / sum(p.numel() for p in model.target.parameters()))


def test_sde_goes_through_torchsde_and_is_stochastic():
    torch.manual_seed(0)
    target = HSFTarget(6, 2, hidden=16, latent_dim=4, max_diffusion=0.5, sde_samples=8)
    z0 = torch.randn(5, 4)
    target.train()
    assert not torch.equal(target.evolve(z0), target.evolve(z0))  # Brownian noise
    target.eval()
    assert target.evolve(z0).shape == (8, 5, 4)  # K paths at evaluation
    deterministic = HSFTarget(6, 2, hidden=16, latent_dim=4, use_sde=False)
    assert torch.equal(deterministic.evolve(z0)[0], z0)


def test_flow_log_prob_comes_from_nflows_and_prefers_its_own_samples():
    torch.manual_seed(0)
    target = HSFTarget(6, 2, hidden=16, latent_dim=4)
    assert isinstance(target.flow, Flow)
    with torch.no_grad():
        samples = target.flow.sample(500)
        assert target.log_prob(samples).mean() > target.log_prob(samples + 4.0).mean() + 1.0


def test_class_il_evaluation_before_learning_uses_the_untrained_network_over_every_class():
    torch.manual_seed(0)
    model = make_model(num_outputs=10, infer_task=True)
    model.eval()
    logits = model(torch.randn(3, 1, 8, 8))
    assert logits.shape == (3, 10) and (logits > -1e3).all()  # no class masked out
    assert model.inferred_tasks.tolist() == [0, 0, 0] and model.learned_tasks == []


def test_mismatched_input_shape_is_a_clear_error():
    model = make_model()
    with pytest.raises(ValueError, match="expects 64"):
        model(torch.randn(3, 1, 28, 28), torch.zeros(3, dtype=torch.long))


def test_hsf_model_routes_options_to_target_and_hypernetwork():
    model = hsf_model((1, 8, 8), 3, hidden=16, latent_dim=4, hnet_hidden=8, infer_task=True)
    assert (model.target.in_features, model.target.num_outputs, model.target.latent_dim) == (64, 3, 4)
    assert model.infer_task and model.hnet.net[0].out_features == 8
    with pytest.raises(TypeError, match="unknown option 'latent'"):
        hsf_model((1, 8, 8), 3, latent=4)


@pytest.mark.parametrize("unit_init, low, high", [(True, 0.5, 2.0), (False, 0.02, 0.3)])
def test_generated_weights_start_at_the_targets_own_scale(unit_init, low, high):
    """With unit_init a fresh hypernetwork generates each layer at about the spread the target's own
    initialisation gives it; PyTorch's default init of the hypernetwork starts them far smaller."""
    torch.manual_seed(0)
    model = hsf_model((1,), 3, hidden=64, latent_dim=32, head_hidden=64, hnet_hidden=256, unit_init=unit_init)
    model.add_task(0)
    generated = model.hnet.unflatten(model.generate(0).detach())
    for name, parameter in model.target.named_parameters():
        if name.endswith("weight") and parameter.numel() >= 64:
            ratio = (generated[name].std() / parameter.std()).item()
            assert low < ratio < high, (name, ratio)


def test_encoder_layers_sets_the_encoders_hidden_layers_and_the_generated_shapes_follow():
    target = HSFTarget(6, 2, hidden=16, latent_dim=4, encoder_layers=3)
    linears = [m for m in target.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 16), (16, 16), (16, 16), (16, 4)]
    model = hsf_model((6,), 2, hidden=16, latent_dim=4, encoder_layers=3)
    model.add_task(0)
    generated = model.hnet.unflatten(model.generate(0))
    assert generated["encoder.1.4.weight"].shape == (16, 16)
    with pytest.raises(ValueError, match="encoder_layers must be at least 1"):
        HSFTarget(6, 2, encoder_layers=0)


def test_embedding_init_previous_starts_a_new_task_where_the_last_one_is():
    torch.manual_seed(0)
    model = hsf_model((6,), 2, hidden=16, latent_dim=4, embedding_init="previous")
    model.add_task(0)
    with torch.no_grad():
        model.task_embeddings["0"].add_(1.0)  # as if task 0 had trained it
    model.add_task(1)
    assert torch.equal(model.task_embeddings["1"], model.task_embeddings["0"])
    assert model.task_embeddings["1"] is not model.task_embeddings["0"]  # a copy: training one leaves the other
    randomly = hsf_model((6,), 2, hidden=16, latent_dim=4)
    randomly.add_task(0)
    randomly.add_task(1)
    assert not torch.equal(randomly.task_embeddings["1"], randomly.task_embeddings["0"])
    with pytest.raises(ValueError, match="embedding_init must be one of"):
        hsf_model((6,), 2, embedding_init="zeros")


def test_frozen_features_trains_only_the_hypernetworks_last_layer_and_the_embedding():
    torch.manual_seed(0)
    model = hsf_model((6,), 2, hidden=16, latent_dim=4, frozen_features=True)
    model.add_task(0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model(torch.randn(8, 6), 0).pow(2).mean().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"hnet.net.4.weight", "hnet.net.4.bias", "task_embeddings.0"}
