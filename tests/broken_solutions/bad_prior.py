"""Broken on purpose (assignment 2): the KL to a Laplace prior uses |mean| for E|w|."""

import math

import torch

SCALE = 1 / math.sqrt(2)


def log_prior(w):
    return -math.log(2 * SCALE) - w.abs() / SCALE


def kl_penalty(mean, log_sigma):
    neg_entropy = -0.5 * math.log(2 * math.pi * math.e) - log_sigma
    return neg_entropy + math.log(2 * SCALE) + torch.abs(mean) / SCALE  # bug: E|w| is not |mean|
