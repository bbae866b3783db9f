"""The ResNet family (torchvision parameter names) and its stage-by-stage summary; torch lives here and in export."""
