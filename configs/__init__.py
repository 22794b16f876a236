"""Presets shipped with imputebench (YAML files in this folder); see training.yaml."""
