"""Command-line tools around the project (run from the checkout root, e.g.
`python -m scripts.gpu_check`); nothing imports them."""
