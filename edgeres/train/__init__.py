"""`edgeres finetune`: a product's own classes, trained through the exact preprocessing the deployed model sees.

dataset (listing, reading check, stratified split) -> sampling (class balance) -> augment (RGB augmentation,
then the one encoder build evaluates with, camera frames included) -> policy (head, freezing, optimiser) ->
trainer (epochs, early stop, resume) -> checkpoints (atomic) -> report (finetune.json, CSVs, curves).
"""
