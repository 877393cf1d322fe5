"""What the right side of the app can show: names shared by the app, scenes and tests."""

VIEWS = ("activation", "preactivation", "gradient", "weight_gradient", "phase", "spectrum",
         "spp")
VIEW_TITLES = {
    "activation": "Activations",
    "preactivation": "Pre-activations",
    "gradient": "Gradients w.r.t. activations",
    "weight_gradient": "Weight gradients",
    "phase": "Phase diagram",
    "spectrum": "Jacobian spectrum",
    "spp": "Signal propagation",
}
