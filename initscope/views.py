"""What the right side of the app can show: names shared by the app, scenes and tests."""

VIEWS = ("activation", "preactivation", "gradient", "weight_gradient", "channel_mean",
         "phase", "spectrum", "meters", "spp")
VIEW_TITLES = {
    "activation": "Activations",
    "preactivation": "Pre-activations",
    "gradient": "Gradients w.r.t. activations",
    "weight_gradient": "Weight gradients",
    "channel_mean": "Channel means (each unit over the batch and pixels)",
    "phase": "Phase diagram",
    "spectrum": "Jacobian spectrum",
    "spp": "Signal propagation",
    "meters": "Transformer meters",
}
