"""The trained fixture really is trained: it names the obvious photographs correctly."""

import torch

from edgeres.frames.images import imagenet_batch
from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0

# ImageNet-1k indices: 285 Egyptian cat, 281 tabby, 282 tiger cat; 967 espresso; 657 missile, 744 projectile.
EXPECTED = {"chelsea": {281, 282, 285}, "coffee": {967}, "rocket": {657, 744}}


def test_trained_fixture_classifies_real_photographs(real_images):
    model = load_efficientnet_lite0()
    batch = torch.from_numpy(imagenet_batch(real_images[name] for name in EXPECTED))
    with torch.inference_mode():
        top1 = model(batch).argmax(dim=1).tolist()
    for (name, allowed), predicted in zip(EXPECTED.items(), top1, strict=True):
        assert predicted in allowed, f"{name}: predicted class {predicted}"
