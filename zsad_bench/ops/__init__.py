"""Primitives the methods share (and third-party detectors may use): anomaly-map operations, prompt
ensembles and their per-class cache, learned prompts, the segmentation losses, augmentation and the
reader of the official checkpoints.

A method imports from here, never from another method.
"""
