"""Deployment artefacts: add-in and Teams manifests, icons, and the packaged task-pane assets."""
