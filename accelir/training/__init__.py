"""Training the restoration zoo: patch pools of degraded, block-coded photographs (``pool``),
the optimisation loop (``loop``) and validation against naive baselines (``validate``)."""
