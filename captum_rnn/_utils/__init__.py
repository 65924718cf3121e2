"""Shared plumbing under every subpackage: the gradient context, target resolution,
safe JSON reading, seeding and state preservation. Imports nothing else of captum_rnn."""
