"""Segmenters: semantic label maps for photos and static-camera videos (see base.py)."""
