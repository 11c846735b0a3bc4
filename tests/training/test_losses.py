import torch

from medsam.training.losses import dice_bce_loss, dice_loss


def test_dice_loss_values():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, :4] = 1
    perfect = (target * 2 - 1) * 50
    assert dice_loss(perfect, target) < 1e-4
    assert dice_loss(-perfect, target) > 0.99
    logits = torch.zeros(1, 1, 8, 8)  # p = 0.5 everywhere: 1 - 2*16 / (64/4 + 32)
    assert torch.isclose(dice_loss(logits, target[:1]), torch.tensor(1 - 32 / 48), atol=1e-5)


def test_dice_bce_is_an_unweighted_sum_with_gradients():
    logits = torch.randn(3, 1, 16, 16, requires_grad=True)
    target = (torch.rand(3, 1, 16, 16) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    total = dice_bce_loss(logits, target)
    assert torch.isclose(total, bce + dice_loss(logits, target))
    total.backward()
    assert logits.grad.abs().sum() > 0
