"""Acquisition (引流): sources, channel live codes, staff rotation, customer groups and group codes,
QR images and posters, spend and acquisition cost. See docs/acquisition.md."""
