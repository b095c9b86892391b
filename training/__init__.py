"""Training: corpora and their protocols, the manifest, dataset and sampler, the experiment
config, the evaluation loop and the trainer (`run_loso`)."""
