"""The ccd daemon: lifecycle, socket and service-manager integration."""

from __future__ import annotations
