"""Datasets for the course: synthetic lab scenes, LabPicsV1, SA-1B, and the record they share."""

from .record import SegmentationRecord, check_mask, check_masks

__all__ = ["SegmentationRecord", "check_mask", "check_masks"]
